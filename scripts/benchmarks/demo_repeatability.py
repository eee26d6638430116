"""How much the embedded demo's figures move when only the arithmetic changes: a proxy for other CPUs.

Two machines of the same kind run the same seeded demo but round differently (AMX and AVX-512 kernels,
bf16 or fp32 where the CPU has no native bf16), so training follows another trajectory and the figures
differ. This script runs the demo's config (config/config.yaml, the real workflow in a folder of its own per
run) under several arithmetic variants of the same data — training and reconstruction precision, the
channels-last layout (another convolution kernel) — optionally with recipe overrides, and prints per
acquisition the Jaccard index and efficiency of each variant and their spread (max − min). The data (training
set, acquisitions, seed) are the same in every variant, so the spread is the training's sensitivity to
rounding alone.

Usage:
    .venv/bin/python scripts/benchmarks/demo_repeatability.py                       # the demo as it is (~13 min)
    .venv/bin/python scripts/benchmarks/demo_repeatability.py --set training.architecture=deepstorm \\
        --set training.steps_per_epoch=60 --set training.batch_size=4 --set training_set.frames=100 \\
        --set training_set.patches_per_frame=50 --set training_set.max_patches=4000    # the demo before e9aa5d1
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from dstorm.model.precision import cpu_has_native_bf16  # noqa: E402

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SNAKEFILE = REPO / "workflow" / "Snakefile"
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
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    t0 = time.perf_counter()
    with open(work / "snakemake.log", "w") as log:
        subprocess.run([str(SNAKEMAKE), "results/summary.csv", "-s", str(SNAKEFILE), "-d", str(work), "--cores", "2",
                        "--configfile", str(work / "config.yaml")], check=True, stdout=log,
                       stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))  # fmt: skip
    return pd.read_csv(work / "results" / "summary.csv"), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = "bf16,bf16-nchw,fp32,fp32-nchw" if cpu_has_native_bf16() else "fp32,fp32-nchw"
    ap.add_argument("--variants", default=default, help=f"comma-separated, of {', '.join(VARIANTS)} (default: {default})")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override of every dataset's config, e.g. training.architecture=fast (repeatable)")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "demo-repeatability")
    args = ap.parse_args()

    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    over = parse_set(args.set)
    rows, times = [], {}
    for name in args.variants.split(","):
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
    names = args.variants.split(",")
    print(f"\nDemo repeatability ({', '.join(args.set) or 'the demo as configured'}): Jaccard / efficiency / RMSE nm\n")
    print("| acquisition | " + " | ".join(names) + " | Jaccard spread, points | efficiency spread |")
    print("|---|" + "---|" * (len(names) + 2))
    for acq, g in df.groupby("acquisition", sort=False):
        g = g.set_index("variant").loc[names]
        cells = [f"{r.jaccard:.3f} / {r.efficiency:.1f} / {r.rmse:.1f}" for r in g.itertuples()]
        js, es = 100 * (g.jaccard.max() - g.jaccard.min()), g.efficiency.max() - g.efficiency.min()
        print(f"| {acq} | " + " | ".join(cells) + f" | {js:.1f} | {es:.1f} |")
    print("\nWall time per run, s: " + ", ".join(f"{k} {t:.0f}" for k, t in times.items()))


if __name__ == "__main__":
    main()
