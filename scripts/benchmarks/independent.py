"""The condition estimator on stacks that this project did not simulate.

Stacks come from Picasso's simulator (scripts/benchmarks/picasso_stack.py, run in a virtual environment of
its own that this script makes once in build/picasso-venv with ``pip install picassosr==0.11.3``; Picasso is
never a dependency of the workflow) and from ThunderSTORM (../shared/data/thunderstorm_demo1). For each
condition it prints the truth and the estimate of the density, mean and median photons per emitter-frame,
σ and background, with the estimate's standard error, and marks misses of the targets (density and mean
photons 15 %, σ 5 %); and the estimate's wall time.

Truth: the density is the ground truth's emitter-frames (photons > 0) per frame per µm²; photons are the
truth's photons per emitter-frame times the camera's QE (photo-electrons: what the data show); σ is
Picasso's PSF; the background is Picasso's Poisson background times the QE. Picasso's binding sites lie
within the field only, so no emitter outside it spills photons in, while the PSF of one near the edge spills
some out: the table prints the share of the truth's photons that fall inside the field (97–98 % for
σ = 1.1 px on 64 px), by which the photon estimates read low from that alone.

Both density methods of the estimate (``estimate.density``: ratio and simulation) are run on each stack.

Usage:
    .venv/bin/python scripts/benchmarks/independent.py                   # every condition (about 40 min)
    .venv/bin/python scripts/benchmarks/independent.py --cameras emccd --densities 2 --frames 200 --density ratio
    .venv/bin/python scripts/benchmarks/independent.py --kinetics "short on-times" --one-frame-events on-time
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PICASSO_PYTHON, PICASSO_VENV  # noqa: E402
from dstorm.estimation.run import estimate_dataset  # noqa: E402

PICASSO = "picassosr==0.11.3"
QE = {"emccd": 0.9, "scmos": 0.72, "ideal": 1.0}  # picasso_stack.CAMERAS (it runs in the other venv)
KINETICS = {  # Picasso's bright (on) and dark times, ms, at 100 ms frames
    "short on-times": {"taub_ms": 100, "itime_ms": 100},  # mean on-time 1 frame: most emitter-frames partial
    "long on-times": {"taub_ms": 500, "itime_ms": 100},  # 5 frames: most are whole
}
PHOTONS = {  # photons of a whole frame on: mean, std
    "2000 ± 0": (2000.0, 0.0),
    "4000 ± 1200": (4000.0, 1200.0),
}
TARGETS = {"density": 0.15, "photons_mean": 0.15, "sigma": 0.05}
SIGMA_PX = 1.1
PIXEL_NM = 100.0  # the stacks' pixel size
BACKGROUND = 20.0


def picasso_python() -> Path:
    python = PICASSO_PYTHON
    if not python.exists():
        print(f"making {PICASSO_VENV} with {PICASSO} (once; a few minutes)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PICASSO_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", PICASSO], check=True)
    return python


def sites_for(density: float, kinetics: dict, size: int, pixel_nm: float, taud_ms: float) -> int:
    """Binding sites that give about ``density`` emitters on per frame (the truth is measured, not this)."""
    itime, taub = kinetics["itime_ms"], kinetics["taub_ms"]
    events_per_frame = itime / (taud_ms + taub)  # per site
    frames_per_event = 1 + taub / itime
    area = (size * pixel_nm / 1000) ** 2
    return max(1, int(round(density * area / (events_per_frame * frames_per_event))))


def make_stack(folder: Path, name: str, *, camera: str, density: float, kinetics: str, photons: str,
               frames: int, seed: int, size: int = 64, one_frame_events: str = "picasso") -> tuple[Path, Path]:  # fmt: skip
    mean, std = PHOTONS[photons]
    kin = KINETICS[kinetics]
    taud = 20 * kin["taub_ms"]  # sites are dark most of the time, as in dSTORM/PAINT
    params = {
        "seed": seed, "size": size, "frames": frames, "pixel_size_nm": PIXEL_NM, "camera": camera,
        "sites": sites_for(density, kin, size, PIXEL_NM, taud), "taud_ms": taud, **kin,
        "photons_per_frame": mean, "photons_per_frame_std": std, "photonbudget": 1e9,
        "psf_px": SIGMA_PX, "background": BACKGROUND, "one_frame_events": one_frame_events,
    }  # fmt: skip
    tif, csv = folder / f"{name}.tif", folder / f"{name}.csv"
    subprocess.run([str(picasso_python()), str(Path(__file__).with_name("picasso_stack.py")), str(tif), str(csv),
                    json.dumps(params)], check=True)  # fmt: skip
    return tif, csv


def in_field(gt: pd.DataFrame, *, size: int, pixel_nm: float, sigma_nm: float) -> float:
    """Share of the truth's photons that a Gaussian PSF of ``sigma_nm`` puts inside the field (size × size px)."""
    from scipy.special import ndtr

    edge = size * pixel_nm
    inside = [ndtr((edge - gt[c].to_numpy()) / sigma_nm) - ndtr(-gt[c].to_numpy() / sigma_nm) for c in ("x [nm]", "y [nm]")]
    photons = gt["intensity [photon]"].to_numpy()
    return float((photons * inside[0] * inside[1]).sum() / photons.sum())


def truth_of(csv: Path, *, camera: str, frames: int, size: int, sigma_nm: float, background: float) -> dict:
    gt = pd.read_csv(csv)
    photons = gt["intensity [photon]"].to_numpy() * QE[camera]
    return {
        "in_field": in_field(gt, size=size, pixel_nm=PIXEL_NM, sigma_nm=sigma_nm),
        "density": len(gt) / frames / (size * PIXEL_NM / 1000) ** 2,
        "photons_mean": float(photons.mean()),
        "photons_median": float(np.median(photons)),
        "sigma": sigma_nm,
        "background": background * QE[camera],
    }


def estimate(tif: Path, frames: int, method: str = "ratio") -> dict:
    t0 = time.perf_counter()
    doc, _ = estimate_dataset([str(tif)], pixel_size_nm=PIXEL_NM, max_frames=frames, given={}, seed=0,
                              population=method == "simulation")  # fmt: skip
    v = {k: (float("nan") if x is None else x) for k, x in doc["values"].items()}
    se = {k: (float("nan") if x is None else x) for k, x in doc["standard_errors"].items()}
    return {
        "density": v["density_per_um2"], "density_se": se.get("density_per_um2"),
        "photons_mean": v["photons_mean"], "photons_mean_se": se.get("photons_mean"),
        "photons_median": v["photons_median"], "photons_median_se": se.get("photons_median"),
        "sigma": v["psf_sigma_nm"], "sigma_se": se.get("psf_sigma_nm"),
        "background": v["background_photons_per_px"], "background_se": se.get("background_photons_per_px"),
        "camera": v["camera_model"], "seconds": time.perf_counter() - t0, "warnings": len(doc["warnings"]),
        "blinking": f"{v['blinking']}, τ {v['mean_on_frames']:.2g}" if v.get("mean_on_frames") == v.get("mean_on_frames")
                    and v.get("blinking") else "–",
    }  # fmt: skip


def cell(key: str, truth: dict, found: dict) -> str:
    t, f, se = truth[key], found[key], found.get(f"{key}_se")
    if f is None or not np.isfinite(f):
        return f"{t:.4g} / – *"
    err = (f - t) / t
    miss = " *" if key in TARGETS and abs(err) > TARGETS[key] else ""
    se_text = f" ± {se:.2g}" if se is not None and np.isfinite(se) else ""
    return f"{t:.4g} / {f:.4g}{se_text} ({100 * err:+.0f} %){miss}"


@dataclass
class Stack:
    camera: str
    kinetics: str
    photons: str
    density: float  # requested; the truth's is measured
    name: str
    tif: Path
    csv: Path
    truth: dict


def stacks(folder: Path, args) -> Iterator[Stack]:
    """One Picasso stack and its truth per camera × kinetics × photons × density of the command line
    (``args.cameras``, ``kinetics``, ``photons``, ``densities``, ``frames``, ``seed``, ``one_frame_events``)."""
    for camera in args.cameras.split(","):
        for kinetics in args.kinetics.split(","):
            for photons in args.photons.split(","):
                for density in (float(d) for d in args.densities.split(",")):
                    name = f"{camera}_{density:g}_{kinetics.split()[0]}_{photons.split()[0]}"
                    if args.one_frame_events != "picasso":
                        name += "_on-time"
                    tif, csv = make_stack(folder, name, camera=camera, density=density, kinetics=kinetics,
                                          photons=photons, frames=args.frames, seed=args.seed,
                                          one_frame_events=args.one_frame_events)  # fmt: skip
                    truth = truth_of(csv, camera=camera, frames=args.frames, size=64, sigma_nm=PIXEL_NM * SIGMA_PX,
                                     background=BACKGROUND)  # fmt: skip
                    yield Stack(camera, kinetics, photons, density, name, tif, csv, truth)


def add_one_frame_events(parser: argparse.ArgumentParser) -> None:
    """The ``--one-frame-events`` option that :func:`stacks` reads (the end-to-end benchmark has it too)."""
    parser.add_argument("--one-frame-events", default="picasso", choices=["picasso", "on-time"],
                        help="photons of an event within one frame: Picasso's rule, or its on-time's (a diagnostic; "
                             "see picasso_stack.py)")  # fmt: skip


COLUMNS = ["density", "photons_mean", "photons_median", "sigma", "background"]


def thunderstorm(shared: Path, method: str) -> tuple[dict, dict] | None:
    folder = shared / "thunderstorm_demo1"
    if not (folder / "ArtificialDataset_demo1.tif").is_file():
        return None
    gt = pd.read_csv(folder / "positions_demo1.csv")
    truth = {
        "density": len(gt) / 20 / 40.96, "photons_mean": float(gt["intensity [photon]"].mean()),
        "photons_median": float(gt["intensity [photon]"].median()), "sigma": float(gt["sigma [nm]"].mean()),
        "background": 20.0,
    }  # fmt: skip
    return truth, estimate(folder / "ArtificialDataset_demo1.tif", 20, method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="emccd,scmos")
    parser.add_argument("--densities", default="0.5,2,4,6")
    parser.add_argument("--kinetics", default=",".join(KINETICS))
    parser.add_argument("--photons", default=",".join(PHOTONS))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--keep", help="folder to keep the stacks and truths in")
    parser.add_argument("--density", default="ratio,simulation", help="estimate.density methods to compare")
    add_one_frame_events(parser)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="dstorm-independent-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for st in stacks(folder, args):
            for method in args.density.split(","):
                found = estimate(st.tif, args.frames, method)
                rows.append((f"Picasso {st.camera}, {st.kinetics}, {st.photons} photons, {st.density:g}/µm² [{method}]",
                             st.truth, found))  # fmt: skip
                print(f"done {st.name} {method}: {found['seconds']:.0f} s", file=sys.stderr)
    for method in args.density.split(","):
        ts = thunderstorm(Path(args.shared), method)
        if ts:
            rows.append((f"ThunderSTORM demo 1 (sCMOS-like, whole frames) [{method}]", *ts))
    print(f"\n{args.frames} frames of 64 × 64 px, 100 nm; each cell: truth / estimate ± SE (error); * misses the target\n")
    print("| condition | camera found | blinking found | " + " | ".join(COLUMNS) + " | estimate, s |")
    print("|---|---|---|" + "---|" * len(COLUMNS) + "---|")
    for name, truth, found in rows:
        print(f"| {name} | {found['camera']} | {found['blinking']} | " + " | ".join(cell(k, truth, found) for k in COLUMNS)
              + f" | {found['seconds']:.0f} |")
    shares = [t["in_field"] for _, t, _ in rows if "in_field" in t]
    if shares:
        print(f"\nPicasso's truth: {100 * min(shares):.1f}–{100 * max(shares):.1f} % of its photons fall inside the field "
              "(its sites lie within it, so none spill in from outside): the photon estimates read that much low from it alone")
    misses = sum(1 for _, t, f in rows for k in TARGETS if not (np.isfinite(f[k]) and abs(f[k] / t[k] - 1) <= TARGETS[k]))
    print(f"\n{misses} misses of {len(rows) * len(TARGETS)} (density and mean photons within 15 %, σ within 5 %)")


if __name__ == "__main__":
    main()
