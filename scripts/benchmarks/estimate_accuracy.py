"""Accuracy of the condition estimator on simulations with known truth.

Usage:  .venv/bin/python scripts/benchmarks/estimate_accuracy.py [--frames 300] [--densities 0.5,1,2,4,6]
        [--cameras epfl2016,scmos_typical,zerocostdl4mic] [--shared ../shared/data] [--repeats N]

For each camera preset and density: 64×64 frames of 100 nm pixels, uniform emitters, σ 106–115 nm,
2000–2500 photons, 20 background photons per pixel (±20 % smooth variation), single-frame blinking. Prints a
Markdown table of truth and estimate with the relative (absolute for the offset, ± its bootstrap standard
error) error; a `*` marks an error
beyond the target (σ 10 %, median photons 20 %, background 15 %, offset 2 ADU, gain 15 %, density 25 %).
Photons and background are compared in photo-electrons (what the data show; the QE is not identifiable).
--typed model tells the estimator the camera type, --typed camera the whole camera (its preset), as a user
who knows them would. --repeats N estimates each condition from N independent simulations (seeds
seed … seed + N − 1) instead and prints, per error, its mean ± standard deviation over them (the offset's
with the mean reported standard error, to check that it is honest) and in how many of them a target was
missed: the estimator's bias and spread rather than one draw. --memory SIZE also times one 500-frame stack of SIZE × SIZE px (2/µm², read from a TIFF as
the workflow does) and gives its peak memory, in a fresh process. With --shared, also estimates ../shared/data/thunderstorm_demo1 (ThunderSTORM's simulation) and prints
what it finds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import child_table, dataset, peak_rss_mib  # noqa: E402
from dstorm.cameras import adu_per_electron, mean_offset_adu  # noqa: E402
from dstorm.estimation.conditions import estimate_conditions  # noqa: E402
from dstorm.estimation.run import typed_camera  # noqa: E402
from dstorm.simulation.simulate import Simulator  # noqa: E402

TARGETS = {"sigma": 0.10, "photons": 0.20, "background": 0.15, "offset": 2.0, "gain": 0.15, "density": 0.25}


def simulate(camera: str, density: float, frames: int, seed: int, size: int = 64):
    """The benchmark's acquisition: (dataset, drawn emitters and background, stack in ADU)."""
    ds = dataset(camera, "uniform", background_variation=0.2)
    ds["seed"] = seed
    ds["frame_size_px"] = [size, size]
    sim = Simulator(ds)
    rngs = sim.streams("estimate-accuracy", camera, str(density))
    drawn = sim.draw(rngs, density=density, n_frames=frames)
    return ds, drawn, np.concatenate(list(sim.frames(drawn, frames, rngs["camera"])))


def condition(camera: str, density: float, frames: int, seed: int, typed: str = "") -> tuple[dict, dict, float]:
    ds, drawn, stack = simulate(camera, density, frames, seed)
    cam = ds["camera"]
    qe = cam["quantum_efficiency"]
    truth = {
        "model": cam["model"],
        "sigma": 110.5,
        "photons": 2250 * qe,
        "background": float(drawn.background.mean()) * qe + cam.get("spurious_charge_e", 0.0),
        "offset": mean_offset_adu(cam),
        "gain": adu_per_electron(cam),
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


def error(key: str, truth: dict, found: dict) -> float:
    """The estimate's error: absolute for the offset (ADU), relative for the others."""
    return found[key] - truth[key] if key == "offset" else (found[key] - truth[key]) / truth[key]


def cell(key: str, truth: dict, found: dict) -> str:
    t, f = truth[key], found[key]
    if not np.isfinite(f):
        return f"{t:.4g} / – *"
    err = error(key, truth, found)
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


def memory_child(path: str) -> None:
    from dstorm.estimation.run import read_frames

    t0 = time.perf_counter()
    frames, saturation, _ = read_frames([path], 500)
    estimate_conditions(frames, pixel_size_nm=100, saturation=saturation)
    print(f"{len(frames)}\t{frames.shape[1]} × {frames.shape[2]}\t{time.perf_counter() - t0:.0f}\t{peak_rss_mib():.0f}")


def memory(size: int) -> None:
    """Wall time and peak RSS of the estimate (reading included) for 500 frames of size × size px."""
    import tempfile

    from dstorm.io import write_stack

    _, _, stack = simulate("epfl2016", 2.0, 500, 0, size)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/stack.tif"
        write_stack(path, stack, shape=stack.shape, dtype=np.uint16, pixel_size_nm=100)
        del stack
        child_table(__file__, "--memory-child", "Estimate of one stack, reading included, fresh process",
                    ["frames", "frame size, px", "wall time, s", "peak RSS, MiB"], arg=path)  # fmt: skip


def repeated(camera: str, density: float, args) -> str:
    """One row of the --repeats table: each error's mean ± SD over ``args.repeats`` seeds."""
    errors = {k: [] for k in TARGETS}
    se, kinds, missed = [], 0, 0
    for seed in range(args.seed, args.seed + args.repeats):
        truth, found, _ = condition(camera, density, args.frames, seed, args.typed)
        kinds += found["model"] == truth["model"]
        se.append(found["offset_se"])
        err = {k: error(k, truth, found) for k in TARGETS}
        missed += any(not abs(e) <= TARGETS[k] for k, e in err.items()) or found["model"] != truth["model"]
        for k, e in err.items():
            errors[k].append(e)
    cells = []
    for k, e in errors.items():
        e = np.asarray(e)
        if k == "offset":
            cells.append(f"{e.mean():+.1f} ± {e.std(ddof=1):.1f} (SE {np.nanmean(se):.1f}; max {np.abs(e).max():.1f})")
        else:
            cells.append(f"{100 * e.mean():+.0f} ± {100 * e.std(ddof=1):.0f} %")
    return f"| {camera} | {density:g} | {kinds}/{args.repeats} | {' | '.join(cells)} | {missed}/{args.repeats} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--densities", default="0.5,1,2,4,6")
    ap.add_argument("--cameras", default="epfl2016,scmos_typical,zerocostdl4mic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--typed", choices=["model", "camera"], default="", help="give the estimator the camera type, or the whole camera")
    ap.add_argument("--shared", type=Path, default=None, help="the shared data folder (../shared/data)")
    ap.add_argument("--repeats", type=int, default=1, help="N seeds per condition: mean ± SD of each error")
    ap.add_argument("--memory", type=int, default=0, metavar="SIZE", help="also time a 500-frame stack of SIZE² px")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    cameras = [c for c in args.cameras.split(",") if c]  # (--cameras '': no table, e.g. with --memory alone)
    densities = [float(d) for d in args.densities.split(",")]
    if args.repeats > 1 and cameras:
        print(f"{args.frames} frames of 64×64 px per condition, {args.repeats} seeds each; error mean ± SD over seeds\n")
        print("| camera | density /µm² | type right | σ | median photons | background | offset ADU | gain | density | seeds with a miss |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for camera in cameras:
            for density in densities:
                print(repeated(camera, density, args), flush=True)
    elif cameras:
        print(f"{args.frames} frames of 64×64 px per condition; truth / estimate (error); * beyond the target\n")
        print("| camera | density /µm² | type | σ nm | median photons (e⁻) | background e⁻/px | offset ADU | gain ADU/e⁻ | density /µm² | spots | warnings | s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for camera in cameras:
            for density in densities:
                truth, found, seconds = condition(camera, density, args.frames, args.seed, args.typed)
                kind = found["model"] + ("" if found["model"] == truth["model"] else " *")
                cells = " | ".join(cell(k, truth, found) for k in ("sigma", "photons", "background", "offset", "gain", "density"))
                print(f"| {camera} | {density:g} | {kind} | {cells} | {found['spots']} | {found['warnings']} | {seconds:.1f} |", flush=True)
    if args.memory:
        memory(args.memory)
    if args.shared is not None:
        shared_demo(args.shared)


if __name__ == "__main__":
    main()
