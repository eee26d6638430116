"""The whole pipeline on stacks that this project did not simulate: parameter-free against true conditions.

Each stack comes from Picasso's simulator (see independent.py, which makes it and its venv). For each stack
the workflow runs (``snakemake``, the real rules: estimate, simulate, train, reconstruct, evaluate against
Picasso's ground truth) once per variant:

- ``free-ratio`` / ``free-sim``: only the TIFF and the pixel size are given; camera, PSF, background,
  photons and density are estimated (``estimate.density``: ratio or simulation);
- ``true``: the true conditions are typed (the EPFL-recipe camera, σ, background, photons, the measured
  density, continuous-time blinking with Picasso's mean bright and dark times), nothing is estimated;

each with modifiers joined by "+" (see MODIFIERS): e.g. ``true+x2`` trains at twice the true density,
``true+x2+range`` over a density range around it, ``free-sim+frames`` on whole-frame emitters.

It prints, per stack and variant, the Jaccard index, RMSE, efficiency and image correlation measured against
Picasso's truth (250 nm matching, ``evaluation`` defaults), the Jaccard the model reports on its own
calibration frames, and the training density and photons used. Every run is seeded; the same arguments give
the same table on the same machine.

Usage:
    .venv/bin/python scripts/benchmarks/independent_end_to_end.py            # 2 stacks × 3 variants (~40 min on 2 cores)
    .venv/bin/python scripts/benchmarks/independent_end_to_end.py --densities 2 --variants true,true+x2,true+x2+range
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_workflow, score_peaks, stack_peaks  # noqa: E402
from independent import BACKGROUND, KINETICS, PHOTONS, PIXEL_NM, SIGMA_PX, add_one_frame_events, stacks  # noqa: E402

from dstorm.model.modelfile import load_model  # noqa: E402
from dstorm.model.system import PatchDataModule  # noqa: E402
from dstorm.training import THRESHOLD_GRID as GRID  # noqa: E402
from dstorm.training import CRITERION_KEYS, best_index, calibrate_threshold, smooth_best_threshold  # noqa: E402

#: A CPU recipe (as the demo's): U = 4, 16-px patches, 800 steps of 8 patches (about 4 min per model on 2 cores).
RECIPE = {
    "training_set": {"frames": 200, "upsampling_factor": 4, "patch_size_px": 16, "patches_per_frame": 50,
                     "max_patches": 6000},
    "training": {"epochs": 8, "steps_per_epoch": 100, "batch_size": 8, "validation_fraction": 0.1,
                 "bn_momentum": 0.1},
}  # fmt: skip
#: The EPFL-recipe cameras of picasso_stack.CAMERAS as our config (it runs in the other venv).
TRUE_CAMERA = {
    "emccd": {"model": "emccd", "quantum_efficiency": 0.9, "spurious_charge_e": 0.002, "em_gain": 300.0,
              "read_noise_e": 74.4, "e_per_adu": 45.0, "baseline_adu": 100.0},
    "scmos": {"model": "scmos", "quantum_efficiency": 0.72, "read_noise_e": 1.6, "e_per_adu": 0.46,
              "baseline_adu": 100.0},
}  # fmt: skip
#: Variants: a base, then modifiers joined with "+".
BASES = {
    "free-ratio": "only the TIFF and the pixel size; estimate.density: ratio",
    "free-sim": "only the TIFF and the pixel size; estimate.density: simulation (the default)",
    "true": "the true conditions typed (camera, σ, background, photons, density, Picasso's blinking)",
}
MODIFIERS = {
    "x<f>": "train at f × the density (true or estimated)",
    "range": "training_set.density_range: [0.5, 2]",
    "frames": "training_set.photophysics: {model: frames} (train on whole frames, calibrate on the data's look)",
    "nocal": "training_set.calibration_frames: 0 (calibrate on the validation patches)",
    "jaccard": "training.threshold_criterion: jaccard (the default: efficiency)",
    "fast": "training.architecture: fast (the same recipe: equal steps)",
    "steps<k>": "k × the recipe's steps per epoch (e.g. fast+steps4: about the faithful network's training time)",
}
VARIANTS = ("free-ratio", "free-sim", "true")


def dataset_config(variant: str, *, tif: Path, csv: Path, camera: str, density: float, kinetics: str,
                   photons: str, seed: int) -> dict:  # fmt: skip
    base, *mods = variant.split("+")
    if base not in BASES:
        raise SystemExit(f"unknown variant base {base!r}; known: {', '.join(BASES)}")
    ds = {"seed": seed, "pixel_size_nm": PIXEL_NM, **json.loads(json.dumps(RECIPE)),
          "acquisitions": {"stack": {"path": str(tif), "ground_truth": str(csv)}}}  # fmt: skip
    factor = 1.0
    for mod in mods:
        if mod.startswith("x"):
            factor = float(mod[1:])
        elif mod == "range":
            ds["training_set"]["density_range"] = [0.5, 2.0]
        elif mod == "frames":
            ds["training_set"]["photophysics"] = {"model": "frames"}
        elif mod == "nocal":
            ds["training_set"]["calibration_frames"] = 0
        elif mod == "jaccard":
            ds["training"]["threshold_criterion"] = "jaccard"
        elif mod == "fast":
            ds["training"]["architecture"] = "fast"
        elif mod.startswith("steps"):
            ds["training"]["steps_per_epoch"] = int(ds["training"]["steps_per_epoch"] * float(mod[5:]))
        else:
            raise SystemExit(f"unknown variant modifier {mod!r}; known: {', '.join(MODIFIERS)}")
    if base.startswith("free"):
        ds["estimate"] = {"density": "simulation" if base == "free-sim" else "ratio"}
        ds["training_set"]["densities"] = ["estimated"]
        if factor != 1.0:
            raise SystemExit("x<f> needs the base true (an estimated density cannot be scaled in the config)")
        return ds
    mean, std = PHOTONS[photons]
    kin = KINETICS[kinetics]
    ds.update(
        frame_size_px=[64, 64],
        camera=TRUE_CAMERA[camera],
        psf={"sigma_nm": [PIXEL_NM * SIGMA_PX, PIXEL_NM * SIGMA_PX]},
        background={"photons_per_px": BACKGROUND, "variation": 0.0},
        photophysics={"model": "continuous", "mean_on_frames": kin["taub_ms"] / kin["itime_ms"],
                      "mean_off_frames": 20 * kin["taub_ms"] / kin["itime_ms"], "mean_blinks": 20,
                      "photons": {"distribution": "normal", "mean": mean, "std": max(std, 1.0)}},
        structure={"type": "uniform"},
    )  # fmt: skip
    ds["training_set"]["densities"] = [round(density * factor, 3)]
    return ds


def threshold_sweep(model_path: Path, tif: Path, csv: Path, work: Path, tolerance_nm: float = 250.0) -> dict:
    """The model on the whole stack at every fixed threshold of GRID, scored against the truth: the best
    fixed threshold by Jaccard and by efficiency (what a perfect calibration would have chosen)."""
    model = load_model(model_path)
    weight = float(model.info["weighting_factor"])
    found = stack_peaks(model, tif, GRID[0])
    gt = pd.read_csv(csv)
    stack = score_peaks(found, weight, gt, GRID, tolerance_nm)
    by_j = stack[best_index([r["jaccard"] for r in stack])]
    by_e = stack[best_index([r["efficiency_pct"] for r in stack])]
    out = {"best_jaccard": by_j["jaccard"], "best_jaccard_threshold": by_j["threshold"],
           "best_efficiency": by_e["efficiency_pct"], "best_efficiency_threshold": by_e["threshold"]}  # fmt: skip
    # the threshold each criterion would have calibrated on the model's own calibration frames (its curve),
    # and on the validation patches (as before calibration frames existed), and what each gives on the stack
    curves = {"calibration frames": (model.info.get("calibration") or {}).get("curve")}
    training = model.info.get("training") or {}
    patches = work / training.get("patches", "-")
    if patches.is_file():
        data = PatchDataModule(patches, batch_size=training["recipe"]["batch_size"],
                               validation_fraction=training["recipe"]["validation_fraction"], seed=training["seed"])  # fmt: skip
        data.sparse["calibration"] = {}
        curves["validation patches"] = calibrate_threshold(model.net, data)["curve"]
    for source, curve in curves.items():
        if not curve:
            continue
        log_t = np.log(curve["threshold"])
        for criterion, key in CRITERION_KEYS.items():
            t = smooth_best_threshold(curve["threshold"], curve[key])  # as calibrate_threshold chooses it
            at = score_peaks(found, weight, gt, (t,), tolerance_nm)[0]
            own = {k: float(np.interp(np.log(t), log_t, np.asarray(curve[k], dtype=float)))  # between grid points
                   for k in ("jaccard", "efficiency_pct")}  # fmt: skip
            out.setdefault("calibrated", []).append({
                "source": source, "criterion": criterion, "threshold": t,
                "validation_jaccard": own["jaccard"], "validation_efficiency": own["efficiency_pct"],
                "jaccard": at["jaccard"], "rmse": at["rmse_nm"], "efficiency": at["efficiency_pct"],
            })  # fmt: skip
    return out


def scores(work: Path, name: str, tif: Path, csv: Path) -> dict:
    summary = pd.read_csv(work / "results" / "summary.csv")
    row = summary[summary["dataset"] == name].iloc[0].to_dict()
    out = {k: row.get(k) for k in ("status", "jaccard", "rmse_lat_nm", "efficiency_pct", "pearson_r", "recall",
                                   "precision", "recall_dim", "recall_bright", "model_density")}  # fmt: skip
    model_path = work / str(row["model"])
    if model_path.is_file():
        info = load_model(model_path).info
        out["validation_jaccard"] = (info.get("calibration") or {}).get("jaccard")
        out["threshold"] = (info.get("calibration") or {}).get("threshold")
        out["validation_efficiency"] = (info.get("calibration") or {}).get("efficiency_pct")
        out.update(threshold_sweep(model_path, tif, csv, work))
    conditions = work / "results" / "estimate" / name / "conditions.json"
    if conditions.is_file():
        doc = json.loads(conditions.read_text())
        out["model_density"] = doc["values"].get("training_density_per_um2")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="emccd")
    parser.add_argument("--densities", default="2,6")
    parser.add_argument("--kinetics", default="short on-times")
    parser.add_argument("--photons", default="2000 ± 0")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--keep", help="folder to keep the stacks and the workflow's results in")
    add_one_frame_events(parser)
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dstorm-e2e-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        datasets, conditions = {}, {}
        for st in stacks(folder, args):
            for k, variant in enumerate(variants):
                name = f"{st.name}_v{k}"
                datasets[name] = dataset_config(variant, tif=st.tif.resolve(), csv=st.csv.resolve(), camera=st.camera,
                                                density=st.truth["density"], kinetics=st.kinetics, photons=st.photons,
                                                seed=args.seed)  # fmt: skip
                conditions[name] = (f"{st.camera}, {st.kinetics}, {st.photons}, {st.density:g}/µm²", variant, st.truth,
                                    st.tif, st.csv)  # fmt: skip
        work = folder / "workflow"
        work.mkdir(exist_ok=True)
        with open(folder / "workflow.log", "w") as log:
            seconds = run_workflow(work, {"datasets": datasets}, log, keep_going=True)
        print(f"workflow: {len(datasets)} datasets in {seconds:.0f} s (log: {folder / 'workflow.log'})", file=sys.stderr)
        for name, (stack, variant, truth, tif, csv) in conditions.items():
            rows.append((stack, variant, truth, scores(work, name, tif, csv)))
    print(f"\nPicasso stacks of {args.frames} frames, 64 × 64 px, 100 nm; training: {RECIPE}\n")
    print("| stack | variant | status | train density (truth) | Jaccard | RMSE, nm | efficiency | image r "
          "| recall dim / bright | validation Jaccard |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for stack, variant, truth, s in rows:
        print(f"| {stack} | {variant} | {s['status']} | {_f(s.get('model_density'), '{:.2f}')} ({truth['density']:.2f}) | "
              f"{_f(s.get('jaccard'))} | {_f(s.get('rmse_lat_nm'), '{:.1f}')} | {_f(s.get('efficiency_pct'), '{:.1f}')} | "
              f"{_f(s.get('pearson_r'))} | {_f(s.get('recall_dim'))} / {_f(s.get('recall_bright'))} | "
              f"{_f(s.get('validation_jaccard'))} |")  # fmt: skip
    print("\nThe threshold: what each criterion calibrates on the model's calibration frames (or on its validation "
          "patches), what it gives on the stack, and the best fixed threshold on the stack (by Jaccard; by efficiency)\n")
    print("| stack | variant | calibrated on | criterion | threshold | Jaccard: calibration / stack | efficiency: "
          "calibration / stack | stack RMSE, nm | best fixed Jaccard (threshold) | best fixed efficiency (threshold) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for stack, variant, truth, s in rows:
        for c in s.get("calibrated", []):
            print(f"| {stack} | {variant} | {c['source']} | {c['criterion']} | {c['threshold']:.3g} | "
                  f"{_f(c['validation_jaccard'])} / {_f(c['jaccard'])} | {_f(c['validation_efficiency'], '{:.1f}')} / "
                  f"{_f(c['efficiency'], '{:.1f}')} | {_f(c['rmse'], '{:.1f}')} | {_f(s['best_jaccard'])} "
                  f"({s['best_jaccard_threshold']:.3g}) | {_f(s['best_efficiency'], '{:.1f}')} ({s['best_efficiency_threshold']:.3g}) |")  # fmt: skip


def _f(v, fmt="{:.3f}") -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


if __name__ == "__main__":
    main()
