"""Benchmark of the simulator: frames/s of 64×64 frames at 6 emitters/µm², and the official recipe's RSS.

Usage:  .venv/bin/python scripts/benchmarks/simulate_speed.py [--frames 2000] [--repeats 3]

Prints a Markdown table: the median over repeats of the frames/s of the noise-free rendering plus camera
noise (what `simulate_acquisition` does per frame, without file writing), for each camera preset and
structure, then the wall time and peak RSS of a full official-recipe training set (10,000 patches) written
to a temporary folder, measured in a child process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import STRUCTURES, child_table, dataset, peak_rss_mib  # noqa: E402
from dstorm.simulation.simulate import Simulator  # noqa: E402

def frames_per_second(camera: str, structure: str, n_frames: int, repeats: int) -> float:
    rates = []
    for r in range(repeats):
        sim = Simulator(dataset(camera, structure, background_variation=0.2))
        rngs = sim.streams("bench", str(r))
        t0 = time.perf_counter()
        draw = sim.draw(rngs, density=6.0, n_frames=n_frames)
        for _ in sim.frames(draw, n_frames, rngs["camera"]):
            pass
        rates.append(n_frames / (time.perf_counter() - t0))
    return statistics.median(rates)


def official_recipe_child(out: str) -> None:
    from dstorm.simulation.simulate import simulate_training_set

    t0 = time.perf_counter()
    meta = simulate_training_set(
        dataset("epfl2016", "filaments", background_variation=0.2) | {"training_set": {**dataset()["training_set"], "frames": 20}},
        density=6.0,
        frames_path=f"{out}/frames.tif",
        ground_truth_path=f"{out}/ground_truth.csv",
        patches_path=f"{out}/patches.npz",
    )
    rss_mib = peak_rss_mib()
    size_mib = Path(f"{out}/patches.npz").stat().st_size / 2**20
    print(f"{meta['n_patches']}\t{time.perf_counter() - t0:.2f}\t{rss_mib:.0f}\t{size_mib:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--official-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.official_child:
        official_recipe_child(args.official_child)
        return

    print(f"Simulator speed, 64×64 px frames, 6 emitters/µm², {args.frames} frames, median of {args.repeats}\n")
    print("| camera | structure | frames/s |")
    print("|---|---|---|")
    for camera in ("ideal", "epfl2016"):
        for structure in STRUCTURES:
            print(f"| {camera} | {structure} | {frames_per_second(camera, structure, args.frames, args.repeats):.0f} |")

    child_table(
        __file__, "--official-child", "Official training-set recipe (20 frames, 500 patches/frame, cap 10,000), in a fresh process",
        ["patches", "wall time, s", "peak RSS, MiB", "patches.npz, MiB"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
