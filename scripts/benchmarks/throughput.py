"""Throughput and accuracy of each architecture at fp32 and at what ``precision: auto`` chooses here.

Usage:
    .venv/bin/python scripts/benchmarks/throughput.py                       # everything (~25 min on 2 cores)
    .venv/bin/python scripts/benchmarks/throughput.py --skip-accuracy        # speed only (~3 min)
    .venv/bin/python scripts/benchmarks/throughput.py --skip-accuracy --no-compile   # speed, eager rows only

Prints, on whatever device is present:

1. the measured matmul roofline of this machine (a 2048² matrix product, fp32 and bf16);
2. the network alone for 64 × 64 (and ``--sides``) frames at U = 8: ms per frame, GFLOP per frame (counted
   from the convolutions' shapes), GFLOP/s and the fraction of the roofline of its precision;
3. the whole reconstruct stage (reading, normalisation, network, peak finding, CSV, images) on a simulated
   stack: frames/s and its fraction of the network-alone throughput;
4. accuracy: both architectures trained on the same simulated patches (microtubule-like filaments at
   ``--train-density``), at equal steps and at equal training time, scored at fp32 and at ``auto`` on fixed
   simulated test stacks at 1, 3 and 6 emitters/µm² (Jaccard at 250 nm, lateral RMSE, efficiency). The
   figures on data this project did not simulate come from independent_end_to_end.py (variant ``+fast``).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dataset  # noqa: E402
from dstorm.architectures import ARCHITECTURES  # noqa: E402
from dstorm.evaluation.matching import match_localizations  # noqa: E402
from dstorm.evaluation.metrics import efficiency, matched_errors  # noqa: E402
from dstorm.model.modelfile import LoadedModel, save_model  # noqa: E402
from dstorm.model.network import build_network, conv_macs, fold_batchnorm  # noqa: E402
from dstorm.model.precision import choose_precision, cpu_has_native_bf16  # noqa: E402
from dstorm.reconstruction import auto_batch_size  # noqa: E402


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return "GPU " + torch.cuda.get_device_name(device)
    import platform

    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return f"CPU {model}, {torch.get_num_threads()} threads"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


def roofline(device: torch.device) -> dict[str, float]:
    """GFLOP/s of a 2048² matrix product in fp32 and bf16 (and fp16 on a GPU). A CPU without native bf16
    gets no bf16 row: emulated there, its product takes minutes, and precision auto never chooses it."""
    n = 4096 if device.type == "cuda" else 2048
    out = {}
    for key, dtype in (("32", torch.float32), ("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)):
        if key == "16-mixed" and device.type != "cuda":
            continue
        if key == "bf16-mixed" and device.type == "cpu" and not cpu_has_native_bf16():
            continue
        a = torch.randn(n, n, device=device, dtype=dtype)
        seconds = timed(lambda: a @ a, device, 10 if device.type == "cuda" else 3)
        out[key] = 2 * n**3 / seconds / 1e9
    return out


def inference_net(name: str, u: int, device):
    torch.manual_seed(0)
    net = build_network(name, {}, u).to(device).eval()
    return fold_batchnorm(net).to(memory_format=torch.channels_last)


def network_alone(name, u, side, precision, device, batch, repeats, compiled=False) -> dict:
    """The network on a ready input batch; ``compiled``: as reconstruction compiles it
    (:meth:`dstorm.model.modelfile.LoadedModel.compile`), compile time excluded."""
    net = inference_net(name, u, device)
    model = LoadedModel(net=net, info={"upsampling_factor": u, "normalization": {"mean": 0.0, "std": 1.0}},
                        device=device, precision=precision)  # fmt: skip
    s = side * u if ARCHITECTURES[name].input_upsampled else side
    with torch.inference_mode():  # an inference tensor, as reconstruction's (else the compiled graph recompiles)
        x = torch.randn(batch, 1, s, s, device=device).contiguous(memory_format=torch.channels_last)
    flops = 2.0 * conv_macs(net, x[:1])
    forward = model._forward
    if compiled:
        model.compile(batch, side, side)
        forward = model.compiled

    def run():
        with torch.inference_mode():
            forward(x)

    seconds = timed(run, device, repeats) / batch
    return {"ms": 1000 * seconds, "gflop": flops / 1e9, "gflops": flops / seconds / 1e9, "fps": 1 / seconds}


def variants(precisions, compile_too: bool = True) -> list[tuple[str, bool]]:
    """(precision, compiled): every precision eager, and the last (what auto chooses) compiled too unless
    ``compile_too`` is false."""
    return [(p, False) for p in precisions] + ([(precisions[-1], True)] if compile_too else [])


def label(precision: str, compiled: bool) -> str:
    return f"{'fp32' if precision == '32' else precision}{', compiled' if compiled else ''}"


def speed_tables(args, device, precisions) -> dict:
    roof = roofline(device)
    print("| matrix product | GFLOP/s |\n|---|---|")
    for k, v in roof.items():
        print(f"| {'fp32' if k == '32' else k} | {v:.0f} |")
    print(f"\n## Network alone, U = {args.upsampling}\n")
    print("| architecture | precision | frame | ms per frame | GFLOP per frame | GFLOP/s | of the roofline | frames/s |")
    print("|---|---|---|---|---|---|---|---|")
    alone = {}
    for side in args.sides:
        for name in ARCHITECTURES:
            batch = auto_batch_size(side, side, args.upsampling, device, architecture_name=name)
            for p, compiled in variants(precisions, not args.no_compile):
                try:
                    r = network_alone(name, args.upsampling, side, p, device, batch, args.repeats, compiled)
                except Exception as exc:  # noqa: BLE001 - compiling needs a C++ compiler (CPU) or Triton (GPU)
                    print(f"| {name} | {label(p, compiled)} | {side}² | compiling failed: {type(exc).__name__} |||||")
                    continue
                alone[(name, p, compiled, side)] = r
                print(f"| {name} | {label(p, compiled)} | {side}² | {r['ms']:.2f} | {r['gflop']:.2f} | {r['gflops']:.0f} | "
                      f"{r['gflops'] / roof[p]:.0%} | {r['fps']:.3g} |", flush=True)  # fmt: skip
    for side in args.sides:
        for p in precisions:
            ratio = alone[("deepstorm", p, False, side)]["ms"] / alone[("fast", p, False, side)]["ms"]
            print(f"\nfast vs deepstorm, {side}², {p}: {ratio:.0f}× the throughput")
    return alone


def whole_stage(args, device, precisions, alone, tmp: Path) -> None:
    from dstorm.reconstruction import outputs_in, reconstruct
    from dstorm.simulation.simulate import simulate_acquisition

    print(f"\n## Whole reconstruct stage, U = {args.upsampling}, 6/µm²: {args.stage_frames} frames of 64², as many "
          "pixels in all of larger frames\n")  # fmt: skip
    print("(untrained weights; localisations per frame given: writing them is part of the stage's cost)\n")
    print("| architecture | precision | frame | frames/s | network alone, frames/s | whole / alone | localisations per frame |")
    print("|---|---|---|---|---|---|---|")
    for side in args.sides:
        ds = dataset()
        ds["frame_size_px"] = [side, side]
        stack = tmp / f"stack{side}.tif"
        n_frames = max(8, args.stage_frames * 64**2 // side**2)
        simulate_acquisition(ds, f"stage{side}", density=6.0, n_frames=n_frames, frames_path=stack,
                             ground_truth_path=tmp / f"stage{side}.csv")  # fmt: skip
        for name in ARCHITECTURES:
            torch.manual_seed(0)
            model = tmp / f"untrained_{name}.pt"
            save_model(model, build_network(name, {}, args.upsampling), name, upsampling_factor=args.upsampling,
                       normalization={"mean": 0.15, "std": 0.18}, weighting_factor=100.0, pixel_size_nm=100.0,
                       calibration={"threshold": 0.3})  # fmt: skip
            for p, compiled in variants(precisions, not args.no_compile):
                out = tmp / f"out_{name}_{p}_{compiled}_{side}"
                out.mkdir(exist_ok=True)
                s = reconstruct(str(stack), str(model), outputs_in(out), pixel_size_nm=100.0, precision=p,
                                compile=compiled, device=str(device))  # fmt: skip
                fps = s["frames_per_second"]
                if s["compiled"] != compiled:
                    continue  # compiling failed: the network-alone table says so
                net_fps = alone[(name, p, compiled, side)]["fps"]
                print(f"| {name} | {label(p, compiled)} | {side}² | {fps:.3g} | {net_fps:.3g} | {fps / net_fps:.0%} | "
                      f"{s['localizations'] / s['frames']:.0f} |", flush=True)  # fmt: skip


# ------------------------------------------------------------------------------------------------- accuracy


def score(localizations: Path, gt: pd.DataFrame) -> dict:
    loc = pd.read_csv(localizations)
    xy, gt_xy = loc[["x [nm]", "y [nm]"]].to_numpy(), gt[["x [nm]", "y [nm]"]].to_numpy()
    m = match_localizations(loc["frame"], xy, gt["frame"], gt_xy, 250.0)
    err = matched_errors(m, xy, gt_xy)
    rmse = float(np.sqrt((err**2).sum(axis=1).mean())) if len(err) else float("nan")
    return {"jaccard": m.jaccard, "rmse": rmse, "efficiency": efficiency(m.jaccard, rmse)}


def accuracy(args, device, precisions, tmp: Path) -> None:
    from dstorm.reconstruction import outputs_in, reconstruct
    from dstorm.simulation.simulate import simulate_acquisition, simulate_training_set
    from dstorm.training import train_model

    u = args.accuracy_upsampling
    ds = dataset(structure="filaments")
    ds["training_set"].update(upsampling_factor=u, patch_size_px=args.patch, frames=args.train_frames,
                              patches_per_frame=50, max_patches=6000, densities=[args.train_density])  # fmt: skip
    patches = tmp / "patches.npz"
    simulate_training_set(ds, density=args.train_density, frames_path=tmp / "t.tif", ground_truth_path=tmp / "t.csv",
                          patches_path=patches)  # fmt: skip
    tests = {}
    for d in args.test_densities:
        stack = tmp / f"test_{d:g}.tif"
        simulate_acquisition(ds, f"test{d:g}", density=d, n_frames=args.test_frames, frames_path=stack,
                             ground_truth_path=tmp / f"test_{d:g}.csv")  # fmt: skip
        tests[d] = (stack, pd.read_csv(tmp / f"test_{d:g}.csv"))

    recipe = {"epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": args.train_batch,
              "validation_fraction": 0.1, "bn_momentum": 0.1}  # fmt: skip

    def train(name, steps, label):
        out = tmp / label
        out.mkdir()
        t0 = time.perf_counter()
        train_model(patches, out / "model.pt", out / "h.csv", out / "h.png", checkpoint_dir=out / "ck",
                    recipe={**recipe, "architecture": name, "steps_per_epoch": steps}, seed=0, label=label)  # fmt: skip
        return out / "model.pt", time.perf_counter() - t0

    runs = {}
    runs["deepstorm, equal steps"] = (*train("deepstorm", args.steps, "deepstorm"), args.steps)
    runs["fast, equal steps"] = (*train("fast", args.steps, "fast"), args.steps)
    ratio = runs["deepstorm, equal steps"][1] / runs["fast, equal steps"][1]
    steps = max(args.steps, int(round(args.steps * ratio)))
    runs["fast, equal time"] = (*train("fast", steps, "fast_time"), steps)

    print(f"\n## Accuracy: trained on the same {args.patch}-px patches (filaments, {args.train_density:g}/µm², U = {u}), "
          f"{args.epochs} epochs of batch {args.train_batch}; {args.test_frames}-frame test stacks\n")  # fmt: skip
    print("| model | steps | training, s | precision | density /µm² | Jaccard | RMSE, nm | efficiency | "
          "whole stage, frames/s | of the network alone | localisations per frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    alone = {(name, p): network_alone(name, u, 64, p, device, 16 if name == "fast" else 4, args.repeats)["fps"]
             for name in ARCHITECTURES for p in precisions}  # fmt: skip
    for label, (model, seconds, steps_per_epoch) in runs.items():
        name = label.split(",")[0]
        for p in precisions:
            for d, (stack, gt) in tests.items():
                out = tmp / f"acc_{label.replace(', ', '_').replace(' ', '_')}_{p}_{d:g}"
                out.mkdir()
                r = reconstruct(str(stack), str(model), outputs_in(out), pixel_size_nm=100.0, precision=p, device=str(device))
                s = score(out / "localizations.csv", gt)
                print(f"| {label} | {steps_per_epoch * args.epochs} | {seconds:.0f} | {p} | {d:g} | {s['jaccard']:.3f} | "
                      f"{s['rmse']:.1f} | {s['efficiency']:.1f} | {r['frames_per_second']:.3g} | "
                      f"{r['frames_per_second'] / alone[(name, p)]:.0%} | {r['localizations'] / r['frames']:.0f} |",
                      flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upsampling", type=int, default=8)
    parser.add_argument("--sides", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stage-frames", type=int, default=200)
    parser.add_argument("--skip-stage", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="no compiled rows (compiling takes tens of seconds)")
    parser.add_argument("--accuracy-upsampling", type=int, default=4)
    parser.add_argument("--patch", type=int, default=16, help="training patch side, camera pixels")
    parser.add_argument("--train-density", type=float, default=6.0)
    parser.add_argument("--train-frames", type=int, default=200)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch of the faithful network")
    parser.add_argument("--test-densities", type=float, nargs="+", default=[1.0, 3.0, 6.0])
    parser.add_argument("--test-frames", type=int, default=50)
    args = parser.parse_args()

    from dstorm.reconstruction import resolve_device

    device = resolve_device("auto")
    auto, why = choose_precision("auto", device)
    precisions = ["32"] + ([auto] if auto != "32" else [])
    print(f"# Throughput on {device_name(device)}\n\nprecision auto -> {auto} ({why})\n")
    with tempfile.TemporaryDirectory(prefix="dstorm-throughput-") as tmp:
        alone = speed_tables(args, device, precisions)
        if not args.skip_stage:
            whole_stage(args, device, precisions, alone, Path(tmp))
        if not args.skip_accuracy:
            accuracy(args, device, precisions, Path(tmp))


if __name__ == "__main__":
    main()
