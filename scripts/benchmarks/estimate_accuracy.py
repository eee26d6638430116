"""Accuracy of the condition estimator on simulations with known truth.

Usage:  .venv/bin/python scripts/benchmarks/estimate_accuracy.py [--frames 300] [--densities 0.5,1,2,4,6]
        [--cameras epfl2016,scmos_typical,zerocostdl4mic] [--shared ../shared/data]

For each camera preset and density: 64×64 frames of 100 nm pixels, uniform emitters, σ 106–115 nm,
2000–2500 photons, 20 background photons per pixel (±20 % smooth variation), single-frame blinking. Prints a
Markdown table of truth and estimate with the relative (absolute for the offset, ± its bootstrap standard
error) error; a `*` marks an error
beyond the target (σ 10 %, median photons 20 %, background 15 %, offset 2 ADU, gain 15 %, density 25 %).
Photons and background are compared in photo-electrons (what the data show; the QE is not identifiable).
--typed model tells the estimator the camera type, --typed camera the whole camera (its preset), as a user
who knows them would. With --shared, also estimates ../shared/data/thunderstorm_demo1 (ThunderSTORM's simulation) and prints
what it finds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset  # noqa: E402
from dstorm.estimation.conditions import estimate_conditions  # noqa: E402
from dstorm.estimation.run import typed_camera  # noqa: E402
from dstorm.simulation.simulate import Simulator  # noqa: E402

TARGETS = {"sigma": 0.10, "photons": 0.20, "background": 0.15, "offset": 2.0, "gain": 0.15, "density": 0.25}


def condition(camera: str, density: float, frames: int, seed: int, typed: str = "") -> tuple[dict, dict, float]:
    ds = dataset(camera, "uniform", background_variation=0.2)
    ds["seed"] = seed
    sim = Simulator(ds)
    rngs = sim.streams("estimate-accuracy", camera, str(density))
    drawn = sim.draw(rngs, density=density, n_frames=frames)
    stack = np.concatenate(list(sim.frames(drawn, frames, rngs["camera"])))
    cam = ds["camera"]
    qe = cam["quantum_efficiency"]
    truth = {
        "model": cam["model"],
        "sigma": 110.5,
        "photons": 2250 * qe,
        "background": float(drawn.background.mean()) * qe + cam.get("spurious_charge_e", 0.0),
        "offset": cam["baseline_adu"] - 0.5,
        "gain": (cam.get("em_gain", 1.0) if cam["model"] == "emccd" else 1.0) / cam["e_per_adu"],
        "density": len(drawn.events) / frames / (64 * 64 * 0.01),
    }
    t0 = time.perf_counter()
    known = {}
    if typed == "model":
        known = {"camera_model": cam["model"]}
    elif typed == "camera":  # the whole camera, as `camera: {preset: ...}` in a config; photons then count photons
        known = typed_camera({"preset": camera}) | {"quantum_efficiency": 1.0}
    est = estimate_conditions(stack, pixel_size_nm=100, seed=seed, **known)
    seconds = time.perf_counter() - t0
    v = est.values
    found = {
        "model": v["camera_model"],
        "sigma": v["psf_sigma_nm"],
        "photons": v["photons_median"],
        "background": v["background_photons_per_px"],
        "offset": v["offset_adu"],
        "gain": v["gain_adu_per_e"],
        "density": v["density_per_um2"],
        "warnings": len(est.warnings),
        "spots": est.diagnostics["quality"]["spots_fitted"],
        "offset_se": est.errors.get("offset_adu", float("nan")),
    }
    return truth, found, seconds


def cell(key: str, truth: dict, found: dict) -> str:
    t, f = truth[key], found[key]
    if not np.isfinite(f):
        return f"{t:.4g} / – *"
    err = f - t if key == "offset" else (f - t) / t
    bad = abs(err) > TARGETS[key]
    text = f"{err:+.1f} ± {found['offset_se']:.1f} ADU" if key == "offset" else f"{100 * err:+.0f} %"
    return f"{t:.4g} / {f:.4g} ({text}){' *' if bad else ''}"


def shared_demo(folder: Path) -> None:
    from dstorm.estimation.run import estimate_dataset

    path = folder / "thunderstorm_demo1" / "ArtificialDataset_demo1.tif"
    if not path.is_file():
        print(f"\n{path} not found; skipped")
        return
    doc, _ = estimate_dataset([str(path)], pixel_size_nm=100, max_frames=1000, given={}, seed=0)
    print(f"\n### {path.name} (ThunderSTORM: σ 106–115 nm, 2000–2500 photons, offset 50)\n")
    for key, value in doc["values"].items():
        se = doc["standard_errors"].get(key)
        print(f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}", f"± {se:.2g}" if se else "")
    for w in doc["warnings"]:
        print(f"- warning: {w}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--densities", default="0.5,1,2,4,6")
    ap.add_argument("--cameras", default="epfl2016,scmos_typical,zerocostdl4mic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--typed", choices=["model", "camera"], default="", help="give the estimator the camera type, or the whole camera")
    ap.add_argument("--shared", type=Path, default=None, help="the shared data folder (../shared/data)")
    args = ap.parse_args()
    print(f"{args.frames} frames of 64×64 px per condition; truth / estimate (error); * beyond the target\n")
    print("| camera | density /µm² | type | σ nm | median photons (e⁻) | background e⁻/px | offset ADU | gain ADU/e⁻ | density /µm² | spots | warnings | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for camera in args.cameras.split(","):
        for density in (float(d) for d in args.densities.split(",")):
            truth, found, seconds = condition(camera, density, args.frames, args.seed, args.typed)
            kind = found["model"] + ("" if found["model"] == truth["model"] else " *")
            cells = " | ".join(cell(k, truth, found) for k in ("sigma", "photons", "background", "offset", "gain", "density"))
            print(f"| {camera} | {density:g} | {kind} | {cells} | {found['spots']} | {found['warnings']} | {seconds:.1f} |", flush=True)
    if args.shared is not None:
        shared_demo(args.shared)


if __name__ == "__main__":
    main()
