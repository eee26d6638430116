"""Drift correction: accuracy on whole simulated acquisitions through the real workflow, against Picasso's
own RCC and AIM on the same localisations, and speed on 10⁶ localisations.

1. **Accuracy** (``--frames`` frames of 64 × 64 px per acquisition, default 10,000): the workflow
   (``snakemake``: simulate, train the fast network, reconstruct, evaluate) runs on acquisitions at 1, 3 and
   6 emitters/µm², each simulated twice from the same seed (the same emitters and noise streams): with a drift (linear 0.01/−0.006 nm per frame, a
   random walk of 0.05 nm per frame, a sinusoid of 20/10 nm over 5,000 frames) and without. For each the
   uncorrected localisations are corrected by AIM and by RCC (``dstorm.drift``), and by Picasso's own
   ``aim`` and ``undrift`` (RCC) where ``build/picasso-venv`` exists (made by independent.py); the table gives
   the residual drift (RMS over frames against the truth, the common offset removed) and Jaccard / RMSE
   against the ground truth, beside the drift-free twin.
2. **Speed**: 10⁶ synthetic localisations (10,000 frames, molecules on filaments), AIM and RCC with their
   default segments, seconds on this machine.

Usage:
    .venv/bin/python scripts/benchmarks/drift.py                       # about 25 min on 2 cores
    .venv/bin/python scripts/benchmarks/drift.py --frames 3000 --densities 1,6 --skip-picasso
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PICASSO_PYTHON, run_workflow  # noqa: E402
from dstorm.drift import estimate_drift, read_drift, residual_rms  # noqa: E402
from dstorm.evaluation.metrics import localization_metrics  # noqa: E402

DRIFT = {"velocity_nm_per_frame": [0.01, -0.006], "random_walk_nm": 0.05, "sinusoid_amplitude_nm": [20, 10],
         "sinusoid_period_frames": 5000}  # fmt: skip


def label(density: float) -> str:
    return "d" + f"{density:g}".replace(".", "p")


def dataset(frames: int, densities: list[float], *, drift: bool) -> dict:
    """The drifting acquisitions (and the training of their models), or with ``drift=False`` their drift-free
    twins: the same acquisition names and seed, so the same emitters, structure and noise streams."""
    simulate = {"frames": frames, **({"drift": DRIFT} if drift else {})}
    return {
        "seed": 7, "pixel_size_nm": 100, "frame_size_px": [64, 64], "camera": {"preset": "epfl2016"},
        "psf": {"sigma_nm": [106, 115]},
        "photophysics": {"model": "continuous", "photons": {"distribution": "uniform", "low": 2000, "high": 2500},
                         "mean_on_frames": 2.0, "mean_off_frames": 200.0, "mean_blinks": 5},
        "background": {"photons_per_px": 20, "variation": 0.2},
        "structure": {"type": "filaments", "n_filaments": 8},
        "evaluation": {"benchmark": False},
        "acquisitions": {label(d): {"simulate": {"density": d, **simulate}} for d in densities},
    }  # fmt: skip


def config(frames: int, densities: list[float], models: dict[str, str] | None = None) -> dict:
    """Phase 1 (``models`` None): the dataset ``bench`` trains the fast network at 2 and 6 /µm² and
    reconstructs the drifting acquisitions. Phase 2: the twins, one dataset per model file that phase 1
    chose (``{acquisition: model path}``), reconstructed with that model."""
    bench = dataset(frames, densities, drift=True)
    bench["training_set"] = {"densities": [2, 6], "frames": 200, "upsampling_factor": 4, "patch_size_px": 16,
                             "patches_per_frame": 50, "max_patches": 6000}  # fmt: skip
    bench["training"] = {"architecture": "fast", "epochs": 8, "steps_per_epoch": 300, "batch_size": 8,
                         "validation_fraction": 0.1, "bn_momentum": 0.1}  # fmt: skip
    out = {"bench": bench}
    for model in sorted(set((models or {}).values())):
        still = dataset(frames, [d for d in densities if models[label(d)] == model], drift=False)
        out[f"still_{Path(model).parent.name.removeprefix('density_')}"] = {**still, "model": model}
    return {"datasets": out}


def picasso_drift(loc: pd.DataFrame, n_frames: int, method: str, work: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Picasso's own estimate (``aim.aim`` or ``postprocess.undrift``) on our uncorrected localisations,
    run in its venv; None where it is not installed or fails."""
    if not PICASSO_PYTHON.exists():
        return None
    np.savez(work / "locs.npz", frame=loc["frame"].to_numpy() - 1, x=loc["x [nm]"].to_numpy() / 100 - 0.5,
             y=loc["y [nm]"].to_numpy() / 100 - 0.5)  # fmt: skip
    script = f"""
import numpy as np, pandas as pd
d = np.load({str(work / 'locs.npz')!r})
n = len(d["frame"])
locs = pd.DataFrame({{"frame": d["frame"].astype("u4"), "x": d["x"].astype("f4"), "y": d["y"].astype("f4"),
                     "photons": np.full(n, 1000, "f4"), "sx": np.full(n, 1.1, "f4"), "sy": np.full(n, 1.1, "f4"),
                     "bg": np.full(n, 20, "f4"), "lpx": np.full(n, 0.2, "f4"), "lpy": np.full(n, 0.2, "f4")}})
info = [{{"Frames": {n_frames}, "Width": 64, "Height": 64, "Pixelsize": 100}}]
if {method!r} == "aim":
    from picasso import aim
    _, _, drift = aim.aim(locs, info, segmentation=100, intersect_d=20 / 100, roi_r=60 / 100)
    dx, dy = np.asarray(drift["x"]), np.asarray(drift["y"])
else:
    from picasso import postprocess
    drift, _ = postprocess.undrift(locs, info, segmentation=1000, display=False)
    dx, dy = np.asarray(drift["x"]), np.asarray(drift["y"])
np.savez({str(work / 'drift.npz')!r}, dx=dx * 100, dy=dy * 100)
"""
    r = subprocess.run([str(PICASSO_PYTHON), "-c", script], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        print(f"  picasso {method} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}",
              file=sys.stderr)  # fmt: skip
        return None
    out = np.load(work / "drift.npz")
    return out["dx"][:n_frames], out["dy"][:n_frames]


def score(loc: pd.DataFrame, gt: pd.DataFrame, dx=None, dy=None) -> dict:
    x, y = loc["x [nm]"].to_numpy(float), loc["y [nm]"].to_numpy(float)
    if dx is not None:
        i = loc["frame"].to_numpy(int) - 1
        x, y = x - dx[i], y - dy[i]
    m, _ = localization_metrics(loc["frame"].to_numpy(), np.column_stack([x, y]), gt["frame"].to_numpy(),
                                gt[["x [nm]", "y [nm]"]].to_numpy(float))  # fmt: skip
    return m


def accuracy(args) -> None:
    densities = [float(d) for d in args.densities.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="drift-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = work / "results"
    with open(work / "snakemake.log", "a") as log:
        run_workflow(work, config(args.frames, densities), log)
        models = {label(d): json.loads((base / "reconstruct" / "bench" / label(d) / "reconstruction.json").read_text())["model"]
                  for d in densities}  # fmt: skip
        run_workflow(work, config(args.frames, densities, models), log)
    print(f"workflow: {time.perf_counter() - t0:.0f} s (work folder {work})\n")
    print("| density /µm² | true drift, max nm | method | residual drift nm RMS | Jaccard | RMSE nm | "
          "no-drift twin: Jaccard | RMSE nm | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for d in densities:
        name = label(d)
        rec = base / "reconstruct" / "bench" / name
        loc = pd.read_csv(rec / "localizations_uncorrected.csv")
        gt = pd.read_csv(base / "simulate" / "bench" / name / "ground_truth.csv")
        truth = read_drift(base / "simulate" / "bench" / name / "drift.csv")
        twin = f"still_{Path(models[name]).parent.name.removeprefix('density_')}"
        still = json.loads((base / "evaluate" / twin / name / "metrics.json").read_text())
        n = len(truth[0])
        true_max = float(np.max(np.hypot(*truth)))
        rows = [("none", np.zeros(n), np.zeros(n), 0.0)]
        for method in ("aim", "rcc"):
            t1 = time.perf_counter()
            est = estimate_drift(method, loc["frame"], loc["x [nm]"], loc["y [nm]"], n_frames=n, fov_nm=(6400.0, 6400.0))
            rows.append((method, est.dx_nm, est.dy_nm, time.perf_counter() - t1))
        if not args.skip_picasso:
            for method in ("aim", "rcc"):
                t1 = time.perf_counter()
                got = picasso_drift(loc, n, method, work)
                if got is not None:  # Picasso's drift has its mean removed: refer it to frame 1, as ours
                    rows.append((f"Picasso {method}", got[0] - got[0][0], got[1] - got[1][0], time.perf_counter() - t1))
        for name, dx, dy, sec in rows:
            m = score(loc, gt, dx, dy)
            print(f"| {d:g} | {true_max:.0f} | {name} | {residual_rms((dx, dy), truth):.2f} | {m['jaccard']:.3f} | "
                  f"{m['rmse_lat_nm']:.1f} | {still['jaccard']:.3f} | {still['rmse_lat_nm']:.1f} | {sec:.1f} |")  # fmt: skip
        sys.stdout.flush()


def speed(n_loc: int = 1_000_000, n_frames: int = 10_000) -> None:
    rng = np.random.default_rng(0)
    fov = 12800.0
    a, b = rng.uniform(0, fov, (20, 2)), rng.uniform(0, fov, (20, 2))
    k, t = rng.integers(0, 20, 20000), rng.uniform(0, 1, 20000)
    mol = a[k] + (b[k] - a[k]) * t[:, None]
    frame = np.sort(rng.integers(1, n_frames + 1, n_loc))
    drift = np.cumsum(rng.normal(0, 0.05, (n_frames, 2)), axis=0) + np.arange(n_frames)[:, None] * [0.01, -0.006]
    xy = mol[rng.integers(0, len(mol), n_loc)] + drift[frame - 1] + rng.normal(0, 20, (n_loc, 2))
    print(f"\n| method | localisations | frames | field | seconds | residual nm RMS |\n|---|---|---|---|---|---|")
    for method in ("aim", "rcc"):
        t0 = time.perf_counter()
        est = estimate_drift(method, frame, xy[:, 0], xy[:, 1], n_frames=n_frames, fov_nm=(fov, fov))
        sec = time.perf_counter() - t0
        rms = residual_rms((est.dx_nm, est.dy_nm), (drift[:, 0] - drift[0, 0], drift[:, 1] - drift[0, 1]))
        print(f"| {method} | {n_loc:,} | {n_frames:,} | {fov / 1000:g} µm | {sec:.1f} | {rms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--densities", default="1,3,6")
    parser.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    parser.add_argument("--skip-picasso", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_accuracy:
        accuracy(args)
    if not args.skip_speed:
        speed()


if __name__ == "__main__":
    main()
