"""The imaging conditions every benchmark simulates: 64×64 frames of 100 nm, σ 106–115 nm,
2000–2500 photons, 20 background photons, the official training-set recipe."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstorm.config import resolve_camera  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SNAKEFILE = REPO / "workflow" / "Snakefile"
#: Picasso's own virtual environment (independent.py makes it; Picasso pins pandas < 3, so it cannot share ours)
PICASSO_VENV = REPO / "build" / "picasso-venv"
PICASSO_PYTHON = PICASSO_VENV / "bin" / "python"

STRUCTURES = {
    "uniform": {"type": "uniform"},
    "filaments": {
        "type": "filaments", "n_filaments": 8, "filament_length_nm": 10000,
        "persistence_length_nm": 4000, "width_nm": 12, "path": None,
    },
}  # fmt: skip


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB, from /proc/self/status VmHWM.

    Not ``getrusage().ru_maxrss``: Linux carries that across exec, so a child started by a large parent
    reports at least the parent's size at the fork."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dataset(camera: str = "epfl2016", structure: str = "uniform", background_variation: float = 0.0) -> dict:
    """A resolved dataset config (as the rules pass it to the library)."""
    return {
        "name": "bench",
        "seed": 0,
        "pixel_size_nm": 100,
        "frame_size_px": [64, 64],
        "camera": resolve_camera({"preset": camera}),
        "psf": {"model": "integrated_gaussian", "sigma_nm": [106, 115], "cutoff_sigma": 4},
        "photophysics": {
            "photons": {"distribution": "uniform", "low": 2000, "high": 2500, "mean": 2250, "std": 250},
            "mean_on_frames": 1.0,
        },
        "background": {"photons_per_px": 20, "variation": background_variation, "length_scale_nm": 3000},
        "structure": STRUCTURES[structure],
        "training_set": {
            "densities": [6], "frames": 40, "upsampling_factor": 8, "patch_size_px": 26,
            "patches_per_frame": 500, "max_patches": 10000, "min_emitters": 7,
            "heatmap_sigma_px": 1, "weighting_factor": 100,
        },
    }  # fmt: skip


def child_table(script: str, flag: str, title: str, header: list[str], arg: str | None = None) -> None:
    """Run ``script flag ARG`` in a fresh process (so its peak memory is its own; ARG is ``arg``, or else a
    temporary folder for its files) and print its last output line, tab-separated values, as a one-row
    Markdown table under ``title``."""
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, script, flag, arg or out], check=True, capture_output=True, text=True)
    values = result.stdout.strip().splitlines()[-1].split("\t")
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| " + " | ".join(values) + " |")


def run_workflow(work: Path, config: dict, log, *targets: str, keep_going: bool = False) -> float:
    """The real workflow on ``config`` (written to ``work``/config.yaml) in the folder ``work``, 2 cores, its
    output into the open file ``log``; returns the wall time in seconds. Raises on failure unless
    ``keep_going`` (then the caller reads what was made)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    t0 = time.perf_counter()
    cmd = [str(SNAKEMAKE), *targets, "-s", str(SNAKEFILE), "-d", str(work), "--cores", "2",
           "--configfile", str(work / "config.yaml"), *(["--keep-going"] if keep_going else [])]  # fmt: skip
    subprocess.run(cmd, check=not keep_going, stdout=log, stderr=subprocess.STDOUT,
                   env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    return time.perf_counter() - t0


def stack_peaks(model, tif: Path, threshold: float) -> dict:
    """The peaks of ``model`` (dstorm.model.modelfile.LoadedModel) on every frame of the stack ``tif`` above
    ``threshold`` × its weighting factor, without drift correction: frame (from 1), x/y in nm, peak value."""
    import numpy as np
    import tifffile

    from dstorm.localization import find_peaks

    u, weight = model.upsampling_factor, float(model.info["weighting_factor"])
    pixel = float(model.info["pixel_size_nm"])
    frames = tifffile.imread(tif).astype(np.float32)
    found = {"frame": [], "xy": [], "peak": []}
    for start in range(0, len(frames), 16):
        peaks = find_peaks(model.predict(frames[start : start + 16]), upsampling_factor=u, threshold=threshold * weight)
        found["frame"].append(peaks.index.numpy() + start + 1)
        found["xy"].append(np.column_stack([peaks.x_px.numpy(), peaks.y_px.numpy()]) * pixel)
        found["peak"].append(peaks.peak.numpy())
    return {k: np.concatenate(v) for k, v in found.items()}


def score_peaks(found: dict, weighting_factor: float, gt, grid, tolerance_nm: float = 250.0) -> list[dict]:
    """``found`` (:func:`stack_peaks`) scored against the ground truth ``gt`` (a ThunderSTORM table, as read by
    pandas) at each fixed threshold of ``grid`` (× the weighting factor): a row per threshold with the Jaccard
    index, RMSE and efficiency (dstorm.training.threshold_curve)."""
    import numpy as np

    from dstorm.training import threshold_curve

    return threshold_curve(found["frame"], found["xy"], found["peak"], weighting_factor, gt["frame"].to_numpy(),
                           gt[["x [nm]", "y [nm]"]].to_numpy(np.float64), tolerance_nm, grid=tuple(grid))  # fmt: skip
