"""Benchmark of the network: forward and forward+backward time per 208×208 patch (U = 8, 26-px patches).

Usage:  .venv/bin/python scripts/benchmarks/train_speed.py [--batch 16] [--repeats 5] [--device cpu|cuda]
        [--memory] [--recipe-epochs N [--recipe-steps 400]]

Batch 16 (the reference recipe), fp32, in three variants: the default NCHW memory layout, channels_last,
and channels_last + torch.compile; on CUDA also bf16-mixed (autocast). FLOPs are counted by
torch.utils.flop_counter on one forward and one forward+backward step; GFLOP/s = FLOPs / median time.
A training step is forward, the Deep-STORM loss, backward and an Adam step.

--recipe-epochs N runs the whole training loop (batches built on the device, steps, validation,
checkpoints) of the reference recipe on the official 10,000-patch training set for N epochs, in fp32 and
in 16-mixed where a GPU is visible, and projects the reference recipe's 100 epochs from the steady epochs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstorm.model.loss import deepstorm_loss, loss_kernel  # noqa: E402
from dstorm.model.network import DeepSTORMNet  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def variant(name: str, device, batch: int, repeats: int, side: int = 208):
    channels_last = name != "fp32 NCHW"
    bf16 = "bf16" in name
    net = DeepSTORMNet().to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    model = torch.compile(net) if "compile" in name else net
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    kernel = loss_kernel().to(device)
    x = torch.randn(batch, 1, side, side, device=device)
    y = torch.rand(batch, 1, side, side, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731

    def forward():
        with torch.no_grad(), autocast():
            model(x)

    def make_step(m):
        def step():
            optimiser.zero_grad(set_to_none=True)
            with autocast():
                pred = m(x)
            deepstorm_loss(pred, y, kernel).backward()
            optimiser.step()

        return step

    step = make_step(model)

    net.eval()
    t_compile = time.perf_counter()
    forward()  # compiles, if compiling
    t_compile = time.perf_counter() - t_compile
    with torch.no_grad():
        f_fwd = flops(lambda: net(x))
    t_fwd = timed(forward, device, repeats)
    net.train()
    step()
    f_step = flops(make_step(net))  # counted on the eager network: compiled graphs hide their ops
    t_step = timed(step, device, repeats)
    return {
        "variant": name,
        "fwd_ms": 1000 * t_fwd / batch,
        "fwd_gflops": f_fwd / t_fwd / 1e9,
        "step_ms": 1000 * t_step / batch,
        "step_gflops": f_step / t_step / 1e9,
        "fwd_gflop_per_patch": f_fwd / batch / 1e9,
        "step_gflop_per_patch": f_step / batch / 1e9,
        "first_call_s": t_compile,
    }


def official_memory_child(out: str) -> None:
    """Peak RSS of the train stage on the official 10,000-patch training set (U = 8, 26-px patches):
    simulate it, then run train_model for 5 steps of 16 and a validation pass (1 % held out)."""
    
    from dstorm.simulation.simulate import simulate_training_set
    from dstorm.training import train_model

    from common import dataset, peak_rss_mib

    meta = simulate_training_set(
        dataset(), density=6, frames_path=f"{out}/f.tif", ground_truth_path=f"{out}/gt.csv", patches_path=f"{out}/p.npz"
    )
    t0 = time.perf_counter()
    train_model(f"{out}/p.npz", f"{out}/m.pt", f"{out}/h.csv", f"{out}/h.png", checkpoint_dir=f"{out}/ck",
                recipe={"epochs": 1, "steps_per_epoch": 5, "validation_fraction": 0.01})  # fmt: skip
    rss = peak_rss_mib()
    print(f"{meta['n_patches']}\t{rss:.0f}\t{time.perf_counter() - t0:.0f}")


def recipe_loop(epochs: int, steps: int) -> None:
    """Seconds per epoch of the reference recipe's training loop, and its projected 100 epochs."""
    import tempfile

    import pandas as pd

    from common import dataset
    from dstorm.simulation.simulate import simulate_training_set
    from dstorm.training import DEFAULT_RECIPE, train_model

    precisions = ["32", "16-mixed"] if torch.cuda.is_available() else ["32"]
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    with tempfile.TemporaryDirectory() as out:
        meta = simulate_training_set(
            dataset(), density=6, frames_path=f"{out}/f.tif", ground_truth_path=f"{out}/gt.csv", patches_path=f"{out}/p.npz"
        )
        print(f"\nReference recipe's training loop, {meta['n_patches']} patches of 26 px at U = 8, {where}: "
              f"{epochs} epochs of {steps} steps of {DEFAULT_RECIPE['batch_size']}\n")  # fmt: skip
        print(f"| precision | first epoch s | later epochs s (median) | projected {DEFAULT_RECIPE['epochs']} epochs, min |")
        print("|---|---|---|---|")
        for precision in precisions:
            train_model(f"{out}/p.npz", f"{out}/m.pt", f"{out}/h.csv", f"{out}/h.png", checkpoint_dir=f"{out}/ck{precision}",
                        recipe={"epochs": epochs, "steps_per_epoch": steps, "precision": precision})  # fmt: skip
            per_epoch = pd.read_csv(f"{out}/h.csv")["seconds"].to_numpy()[1:]  # each epoch's, with its validation
            steady = float(np.median(per_epoch[1:])) if len(per_epoch) > 1 else float(per_epoch[0])
            total = per_epoch[0] + steady * (DEFAULT_RECIPE["epochs"] - 1)
            print(f"| {precision} | {per_epoch[0]:.1f} | {steady:.1f} | {total / 60:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--side", type=int, default=208, help="input side (208 = a 26-px patch at U = 8)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--memory", action="store_true", help="also measure the official recipe's peak RSS")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--recipe-epochs", type=int, default=0, help="also time N epochs of the reference recipe's loop")
    parser.add_argument("--recipe-steps", type=int, default=400, help="steps per epoch for --recipe-epochs (the recipe's 400)")
    args = parser.parse_args()
    if args.memory_child:
        official_memory_child(args.memory_child)
        return
    device = torch.device(args.device)
    names = ["fp32 NCHW", "fp32 channels_last"]
    if not args.no_compile:
        names.append("fp32 channels_last + compile")
    if device.type == "cuda":
        names += ["bf16-mixed channels_last"]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"Deep-STORM network, {args.side}×{args.side} input, batch {args.batch}, {where}, torch {torch.__version__}")
    print(f"median of {args.repeats} runs after warm-up; per patch\n")
    print("| variant | forward ms | forward GFLOP/s | train step ms | train step GFLOP/s | first call s |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in names:
        r = variant(name, device, args.batch, args.repeats, side=args.side)
        rows.append(r)
        print(
            f"| {r['variant']} | {r['fwd_ms']:.1f} | {r['fwd_gflops']:.0f} | {r['step_ms']:.1f} | "
            f"{r['step_gflops']:.0f} | {r['first_call_s']:.1f} |"
        )
    print(f"\nFLOPs per {args.side}×{args.side} patch: forward {rows[0]['fwd_gflop_per_patch']:.2f} GFLOP, train step {rows[0]['step_gflop_per_patch']:.2f} GFLOP")
    if args.memory:
        from common import child_table

        child_table(
            __file__, "--memory-child", "Train stage on the official training set (10,000 patches of 26 px at U = 8), fresh process",
            ["patches", "peak RSS, MiB", "train_model wall time, s (5 steps + validation + calibration)"],
        )  # fmt: skip
    if args.recipe_epochs:
        recipe_loop(args.recipe_epochs, args.recipe_steps)


if __name__ == "__main__":
    main()
