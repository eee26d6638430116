# Config validation, output lists and input/param functions. No lambdas in rules; the library in
# scripts/dstorm does the work, and only its stdlib-only config module is imported here.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "..", "scripts"))

from dstorm.config import (  # noqa: E402
    ConfigError,
    acquisition_names,
    check_config,
    dataset_config,
    density_label,
    model_density,
)

validate(config, "../schemas/config.schema.yaml")
try:
    check_config(config, base_dir=os.getcwd())
except ConfigError as err:
    raise WorkflowError(str(err))

DATASETS = list(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS) or "(?!)",
    density=r"[0-9][0-9.e+-]*",
    acquisition=r"(?!density_)[A-Za-z0-9][A-Za-z0-9_-]*",


def simulated_acquisition_outputs():
    return [
        f"results/simulate/{d}/{a}/{f}"
        for d in DATASETS
        for a in acquisition_names(config, d, "simulate")
        for f in ("frames.tif", "ground_truth.csv")
    ]


def training_densities(dataset):
    """Density labels of a dataset's training sets (none for a dataset with a given model file)."""
    ts = config["datasets"][dataset].get("training_set")
    return [density_label(x) for x in ts["densities"]] if ts else []


RECONSTRUCTION_FILES = (
    "super_resolution.tif",
    "super_resolution.png",
    "widefield.tif",
    "widefield.png",
    "localizations.csv",
    "rendered.tif",
    "rendered.png",
    "reconstruction.json",
)


def all_outputs():
    files = []
    for d in DATASETS:
        for x in training_densities(d):
            files += [
                f"results/simulate/{d}/density_{x}/{f}"
                for f in ("frames.tif", "ground_truth.csv", "patches.npz")
            ]
            files += [
                f"results/train/{d}/density_{x}/{f}"
                for f in ("model.pt", "history.csv", "history.png")
            ]
    for d in DATASETS:
        save = config["datasets"][d]["reconstruction"]["save_predictions"]
        for a in acquisition_names(config, d):
            files += [f"results/reconstruct/{d}/{a}/{f}" for f in RECONSTRUCTION_FILES]
            files += [f"results/reconstruct/{d}/{a}/predictions.tif"] if save else []
    return files + simulated_acquisition_outputs()


def get_acquisition_frames(wildcards):
    """A simulated acquisition's frames.tif, or the user's TIFF."""
    acq = config["datasets"][wildcards.dataset]["acquisitions"][wildcards.acquisition]
    if "simulate" in acq:
        return (
            f"results/simulate/{wildcards.dataset}/{wildcards.acquisition}/frames.tif"
        )
    return acq["path"]


def get_acquisition_model(wildcards):
    """The dataset's model file, or the model of the chosen training density (see config/README.md)."""
    ds = config["datasets"][wildcards.dataset]
    if ds.get("model"):
        return ds["model"]
    density = model_density(config, wildcards.dataset, wildcards.acquisition)
    return (
        f"results/train/{wildcards.dataset}/density_{density_label(density)}/model.pt"
    )


def get_pixel_size(wildcards):
    return config["datasets"][wildcards.dataset]["pixel_size_nm"]


def get_reconstruction_options(wildcards):
    return dict(config["datasets"][wildcards.dataset]["reconstruction"])


def get_dataset(wildcards):
    """The dataset's resolved config (camera preset filled in), a plain dict for the script."""
    return dataset_config(config, wildcards.dataset)


def get_training_density(wildcards):
    """The configured density whose label is the `density` wildcard."""
    ts = config["datasets"][wildcards.dataset].get("training_set") or {"densities": []}
    for x in ts["densities"]:
        if density_label(x) == wildcards.density:
            return float(x)
    raise WorkflowError(
        f"datasets.{wildcards.dataset}.training_set.densities has no density {wildcards.density} "
        f"(configured: {training_densities(wildcards.dataset)})"
    )


def get_training_recipe(wildcards):
    """The dataset's training recipe (schema defaults filled in), checked against the density."""
    get_training_density(wildcards)
    return dict(config["datasets"][wildcards.dataset]["training"])


def get_seed(wildcards):
    return config["datasets"][wildcards.dataset]["seed"]


def get_simulated_acquisition(wildcards):
    acq = config["datasets"][wildcards.dataset]["acquisitions"].get(
        wildcards.acquisition, {}
    )
    if "simulate" not in acq:
        raise WorkflowError(
            f"datasets.{wildcards.dataset}.acquisitions.{wildcards.acquisition} is not a simulated acquisition"
        )
    return acq["simulate"]


def get_structure_table(wildcards):
    """The ThunderSTORM CSV a `table` structure samples from (an input, so edits trigger reruns)."""
    structure = config["datasets"][wildcards.dataset]["structure"]
    return [structure["path"]] if structure["type"] == "table" else []


def get_camera_maps(wildcards):
    camera = config["datasets"][wildcards.dataset].get("camera", {})
    return [camera[k] for k in ("read_noise_map", "offset_map") if camera.get(k)]
