"""The imaging conditions every benchmark simulates: 64×64 frames of 100 nm, σ 106–115 nm,
2000–2500 photons, 20 background photons, the official training-set recipe."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstorm.config import resolve_camera  # noqa: E402

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
