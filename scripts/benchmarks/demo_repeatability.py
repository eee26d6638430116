"""How much the embedded demo's figures move when only the arithmetic changes: a proxy for other CPUs.

Two machines of the same kind run the same seeded demo but round differently (AMX and AVX-512 kernels,
bf16 or fp32 where the CPU has no native bf16), so training follows another trajectory and the figures
differ. This script runs the demo's config (config/config.yaml, the real workflow in a folder of its own per
run) under several arithmetic variants of the same data — training and reconstruction precision, the
channels-last layout (another convolution kernel) — optionally with recipe overrides, and prints per
acquisition the Jaccard index and efficiency of each variant and their spread (max − min). The data (training
set, acquisitions, seed) are the same in every variant, so the spread is the training's sensitivity to
rounding alone. A second table rescores each variant's models at the same fixed thresholds: where the
variants agree there and not at their calibrated thresholds, the calibration makes the spread; where they
differ there too, the models do.

Usage:
    .venv/bin/python scripts/benchmarks/demo_repeatability.py                       # the demo as it is (~13 min)
    .venv/bin/python scripts/benchmarks/demo_repeatability.py --set seed=2          # the same recipe, other data
    .venv/bin/python scripts/benchmarks/demo_repeatability.py --rescore-only        # only the fixed-threshold table
    .venv/bin/python scripts/benchmarks/demo_repeatability.py --set training.architecture=deepstorm \\
        --set training.steps_per_epoch=60 --set training.batch_size=4 --set training_set.frames=100 \\
        --set training_set.patches_per_frame=50 --set training_set.max_patches=4000    # the demo before e9aa5d1
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_workflow, score_peaks, stack_peaks  # noqa: E402

from dstorm.model.modelfile import load_model  # noqa: E402
from dstorm.model.precision import cpu_has_native_bf16  # noqa: E402
#: arithmetic variants: precision of training and reconstruction, channels-last layout in training
VARIANTS = {
    "bf16": {"precision": "bf16-mixed", "channels_last": True},
    "bf16-nchw": {"precision": "bf16-mixed", "channels_last": False},
    "fp32": {"precision": "32", "channels_last": True},
    "fp32-nchw": {"precision": "32", "channels_last": False},
}


def parse_set(items: list[str]) -> dict:
    """``key.path=value`` (value read as YAML) into a nested dict of dataset overrides."""
    out: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run(work: Path, config: dict) -> tuple[pd.DataFrame, float]:
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "snakemake.log", "w") as log:
        seconds = run_workflow(work, config, log, "results/summary.csv")
    return pd.read_csv(work / "results" / "summary.csv"), seconds


def fixed_threshold_table(work: Path, names: list[str], thresholds: list[float]) -> None:
    """Each variant's model of each acquisition rescored at the same fixed thresholds (outputs before drift
    correction): whether the variants' figures differ because the models do or because their calibrated
    thresholds do."""
    print(f"\nAt fixed thresholds (× weighting factor; before drift correction): Jaccard / efficiency; "
          f"the calibrated threshold\n")
    print("| acquisition | variant | " + " | ".join(f"{t:g}" for t in thresholds) + " | calibrated |")
    print("|---|---|" + "---|" * (len(thresholds) + 1))
    acquisitions = pd.read_csv(work / names[0] / "results" / "summary.csv")[["dataset", "acquisition"]]
    for ds, acq in acquisitions.itertuples(index=False):
        spread = []
        for name in names:
            results = work / name / "results"
            rec = json.loads((results / "reconstruct" / ds / acq / "reconstruction.json").read_text())
            model = load_model(work / name / rec["model"])
            found = stack_peaks(model, results / "simulate" / ds / acq / "frames.tif", min(thresholds))
            rows = score_peaks(found, float(model.info["weighting_factor"]),
                               pd.read_csv(results / "simulate" / ds / acq / "ground_truth.csv"), thresholds)  # fmt: skip
            spread.append([r["jaccard"] for r in rows])
            cells = [f"{r['jaccard']:.3f} / {r['efficiency_pct']:.1f}" for r in rows]
            print(f"| {acq} | {name} | " + " | ".join(cells) + f" | {rec['threshold']:.4f} |")
        ptp = 100 * np.ptp(np.asarray(spread), axis=0)
        print(f"| {acq} | Jaccard spread, points | " + " | ".join(f"{x:.1f}" for x in ptp) + " | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = "bf16,bf16-nchw,fp32,fp32-nchw" if cpu_has_native_bf16() else "fp32,fp32-nchw"
    ap.add_argument("--variants", default=default, help=f"comma-separated, of {', '.join(VARIANTS)} (default: {default})")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override of every dataset's config, e.g. training.architecture=fast (repeatable)")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "demo-repeatability")
    ap.add_argument("--fixed-thresholds", default="0.02,0.03,0.04,0.05", metavar="T,T,...",
                    help="rescore every variant's models at these thresholds (× weighting factor); '' skips it")
    ap.add_argument("--rescore-only", action="store_true",
                    help="no workflow runs: only the fixed-threshold table of the runs already in --work")
    args = ap.parse_args()

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    over = parse_set(args.set)
    names = args.variants.split(",")
    thresholds = [float(t) for t in args.fixed_thresholds.split(",") if t.strip()]
    if args.rescore_only:
        fixed_threshold_table(args.work, names, thresholds)
        return
    rows, times = [], {}
    for name in names:
        v = VARIANTS[name]
        config = copy.deepcopy(base)
        for ds_name, ds in config["datasets"].items():
            ds = merge(ds, over)
            ds = merge(ds, {"training": {"precision": v["precision"], "channels_last": v["channels_last"]},
                            "reconstruction": {"precision": v["precision"]}})  # fmt: skip
            config["datasets"][ds_name] = ds
        summary, times[name] = run(args.work / name, config)
        print(f"{name}: {times[name]:.0f} s", file=sys.stderr, flush=True)
        for _, r in summary.iterrows():
            rows.append({"variant": name, "acquisition": r["acquisition"], "jaccard": r["jaccard"],
                         "efficiency": r["efficiency_pct"], "rmse": r["rmse_lat_nm"]})  # fmt: skip
    df = pd.DataFrame(rows)
    print(f"\nDemo repeatability ({', '.join(args.set) or 'the demo as configured'}): Jaccard / efficiency / RMSE nm\n")
    print("| acquisition | " + " | ".join(names) + " | Jaccard spread, points | efficiency spread |")
    print("|---|" + "---|" * (len(names) + 2))
    for acq, g in df.groupby("acquisition", sort=False):
        g = g.set_index("variant").loc[names]
        cells = [f"{r.jaccard:.3f} / {r.efficiency:.1f} / {r.rmse:.1f}" for r in g.itertuples()]
        js, es = 100 * (g.jaccard.max() - g.jaccard.min()), g.efficiency.max() - g.efficiency.min()
        print(f"| {acq} | " + " | ".join(cells) + f" | {js:.1f} | {es:.1f} |")
    print("\nWall time per run, s: " + ", ".join(f"{k} {t:.0f}" for k, t in times.items()))
    if thresholds:
        fixed_threshold_table(args.work, names, thresholds)


if __name__ == "__main__":
    main()
