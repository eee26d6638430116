"""Benchmark of planning: the wall time of `snakemake -n` for configs with many acquisitions.

Usage:  .venv/bin/python scripts/benchmarks/plan_speed.py [--acquisitions 10 100 500] [--per-dataset 50]

Each config has one dataset per ``--per-dataset`` acquisitions (two training densities each). Two mixes:
"TIFF files", the many-acquisitions case (the user's stacks, empty placeholder files since a dry run only
checks that they exist; every tenth with a ground-truth table, so reconstructed by both models for the
benchmark), and "half simulated" (every other acquisition simulated, each scored by both models). The dry
run builds the whole DAG (validation, input functions, every job of every stage) without running a job and
prints it, as `snakemake -n` in a terminal does. Median of --repeats runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def make_config(root: Path, n_acquisitions: int, per_dataset: int, simulated_fraction: float) -> dict:
    datasets = {}
    for start in range(0, n_acquisitions, per_dataset):
        name = f"ds{start // per_dataset:03d}"
        acqs = {}
        for k in range(start, min(start + per_dataset, n_acquisitions)):
            if int((k + 1) * simulated_fraction) > int(k * simulated_fraction):
                acqs[f"sim{k:04d}"] = {"simulate": {"density": 1 + k % 8, "frames": 100}}
            else:
                tif = root / "data" / f"cell{k:04d}.tif"
                tif.parent.mkdir(exist_ok=True)
                tif.touch()
                acqs[f"cell{k:04d}"] = {"path": str(tif)}
                if k % 10 == 1:  # every tenth has a ground truth
                    gt = tif.with_suffix(".csv")
                    gt.touch()
                    acqs[f"cell{k:04d}"]["ground_truth"] = str(gt)
        datasets[name] = {
            "seed": start,
            "camera": {"preset": "epfl2016"},
            "training_set": {"densities": [2, 6]},
            "acquisitions": acqs,
        }
    return {"datasets": datasets}


def dry_run(root: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(root), "--configfile", str(root / "config.yaml"), "-n"],
        capture_output=True, text=True, cwd=root,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    m = re.search(r"^total\s+(\d+)", result.stdout + result.stderr, re.M)
    return seconds, int(m.group(1)) if m else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--acquisitions", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--per-dataset", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"`snakemake -n` (dry run: validation + whole DAG), median of {args.repeats}\n")
    print("| acquisitions | mix | datasets | jobs planned | snakemake -n, s |")
    print("|---|---|---|---|---|")
    for mix, fraction in (("TIFF files", 0.0), ("half simulated", 0.5)):
        for n in args.acquisitions:
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                config = make_config(root, n, args.per_dataset, fraction)
                (root / "config.yaml").write_text(yaml.safe_dump(config))
                runs = [dry_run(root) for _ in range(args.repeats)]
                seconds = statistics.median(s for s, _ in runs)
                print(f"| {n} | {mix} | {len(config['datasets'])} | {runs[0][1]} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
