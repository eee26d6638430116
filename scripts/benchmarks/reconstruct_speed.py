"""Benchmark of the reconstruct stage: frames/s and peak RSS for 1,000 and 10,000 frames of 64×64 px.

Usage:  .venv/bin/python scripts/benchmarks/reconstruct_speed.py [--frames 1000 10000] [--upsampling 2]

Simulates the stacks (6 emitters/µm², the EPFL 2016 camera), trains the reference network briefly (so that
its peaks, calibrated threshold and localisation count are realistic), and runs the whole reconstruction
(reading, prediction, localisation, CSV, images) in a fresh process per stack, so that each peak RSS is that
run's alone. On a 2-core CPU the default U = 2 keeps 10,000 frames to minutes (the network's cost grows
with U²); on a GPU use --upsampling 8.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def child(stack: str, model: str, out: str, batch: str) -> None:
    from common import peak_rss_mib
    from dstorm.reconstruction import outputs_in, reconstruct

    summary = reconstruct(stack, model, outputs_in(out), pixel_size_nm=100.0, batch_size=batch)
    summary["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--upsampling", type=int, default=2)
    parser.add_argument("--batch", default="auto")
    parser.add_argument("--train-steps", type=int, default=200, help="steps of a brief training (0: untrained weights)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import torch

    from common import dataset
    from dstorm.model.modelfile import save_model
    from dstorm.model.network import DeepSTORMNet
    from dstorm.simulation.simulate import simulate_acquisition

    device = "GPU " + torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"Reconstruction of 64×64 frames at U = {args.upsampling} ({64 * args.upsampling}² network input), {device}\n")
    print("| frames | wall time, s | frames/s | localisations | peak RSS, MiB | stack on disk, MiB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        model = f"{tmp}/model.pt"
        if args.train_steps:  # a briefly trained model: realistic peaks, a calibrated threshold, real localisations
            from dstorm.simulation.simulate import simulate_training_set
            from dstorm.training import train_model

            ds = dataset()
            ds["training_set"].update(upsampling_factor=args.upsampling, patch_size_px=16, patches_per_frame=50, max_patches=2000)
            simulate_training_set(ds, density=6.0, frames_path=f"{tmp}/t.tif", ground_truth_path=f"{tmp}/t.csv", patches_path=f"{tmp}/p.npz")
            recipe = {"epochs": 2, "steps_per_epoch": args.train_steps // 2, "batch_size": 4, "validation_fraction": 0.1, "bn_momentum": 0.1}
            train_model(f"{tmp}/p.npz", model, f"{tmp}/h.csv", f"{tmp}/h.png", checkpoint_dir=f"{tmp}/ck", recipe=recipe)
        else:
            save_model(model, DeepSTORMNet(), "deepstorm", upsampling_factor=args.upsampling,
                       normalization={"mean": 0.15, "std": 0.18}, weighting_factor=100.0, pixel_size_nm=100.0)  # fmt: skip
        for n in args.frames:
            stack = f"{tmp}/stack_{n}.tif"
            simulate_acquisition(dataset(), f"bench{n}", density=6.0, n_frames=n, frames_path=stack, ground_truth_path=f"{tmp}/gt_{n}.csv")
            out = Path(tmp) / f"out_{n}"
            out.mkdir()
            t0 = time.perf_counter()
            result = subprocess.run([sys.executable, __file__, "--child", stack, model, str(out), args.batch],
                                    check=True, capture_output=True, text=True)  # fmt: skip
            wall = time.perf_counter() - t0
            s = json.loads(result.stdout.strip().splitlines()[-1])
            size = Path(stack).stat().st_size / 2**20
            print(f"| {n} | {wall:.0f} | {s['frames_per_second']:.1f} | {s['localizations']} | {s['peak_rss_mib']:.0f} | {size:.0f} |")


if __name__ == "__main__":
    main()
