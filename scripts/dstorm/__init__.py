"""Deep-STORM pipeline library: simulation, training, reconstruction and evaluation.

Each stage lives in its own subpackage and imports only what its rule's conda env holds: simulation and
evaluation use numpy, scipy, tifffile and pandas; only the model, training and reconstruction code import
torch and Lightning. The library never imports snakemake; the entry scripts in scripts/ do that.
"""

__version__ = "0.1.0"
