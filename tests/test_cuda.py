"""The CUDA paths: mixed-precision training on a GPU, and reconstruction on a GPU agreeing with the CPU.

Skipped where no GPU is visible (CI has none). On a GPU node: ``pytest tests/test_cuda.py``; they need
neither snakemake nor the workflow, only the library.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "benchmarks"))

from common import dataset  # noqa: E402
from dstorm.model.modelfile import load_model  # noqa: E402
from dstorm.reconstruction import outputs_in, reconstruct  # noqa: E402
from dstorm.simulation.simulate import simulate_acquisition, simulate_training_set  # noqa: E402
from dstorm.training import train_model  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")


def train_on_gpu(folder: Path, precision: str, architecture: str = "deepstorm") -> tuple[Path, pd.DataFrame, dict]:
    """A short training at U = 4 on the GPU; returns the model file, its history and its record."""
    ds = dataset()
    ds["training_set"].update(upsampling_factor=4, patch_size_px=16, frames=20, patches_per_frame=100, max_patches=2000, min_emitters=3)
    patches = folder / "patches.npz"
    simulate_training_set(ds, density=4.0, frames_path=str(folder / "t.tif"), ground_truth_path=str(folder / "t.csv"), patches_path=str(patches))
    recipe = {"epochs": 6, "steps_per_epoch": 100, "batch_size": 16, "validation_fraction": 0.1, "precision": precision,
              "architecture": architecture}  # fmt: skip
    model = folder / "model.pt"
    record = train_model(str(patches), str(model), str(folder / "h.csv"), str(folder / "h.png"), checkpoint_dir=str(folder / "ck"),
                         recipe=recipe, accelerator="gpu")  # fmt: skip
    return model, pd.read_csv(folder / "h.csv"), record


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory):
    torch.cuda.reset_peak_memory_stats()
    model, history, record = train_on_gpu(tmp_path_factory.mktemp("train"), "16-mixed")
    return model, history, record, torch.cuda.max_memory_allocated()


def test_mixed_precision_training_learns_on_the_gpu(gpu_model):
    model, history, record, gpu_bytes = gpu_model
    assert gpu_bytes > 0  # the network lived on the GPU
    assert record["recipe"]["precision"] == "16-mixed"
    # fp16 autocast with gradient scaling learns: the validation loss falls below the untrained one (to 0.75
    # of it after 240 fp32 steps on a CPU; these are 600) and below predicting zeros everywhere; no NaN
    assert np.isfinite(history["val_loss"]).all()
    assert record["best_val_loss"] < 0.75 * record["initial_val_loss"]
    assert record["best_val_loss"] < record["zero_prediction_val_loss"]
    net = load_model(str(model), torch.device("cpu"))  # the model file is plain fp32 weights, loadable anywhere
    assert all(p.dtype == torch.float32 for p in net.net.parameters())


def test_gpu_reconstruction_agrees_with_the_cpu(gpu_model, tmp_path):
    model = gpu_model[0]
    stack = tmp_path / "acq.tif"
    simulate_acquisition(dataset(), "cuda-check", density=4.0, n_frames=40, frames_path=str(stack), ground_truth_path=str(tmp_path / "gt.csv"))
    results = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        out.mkdir()
        summary = reconstruct(str(stack), str(model), outputs_in(out), pixel_size_nm=100.0, device=device, precision="32")
        assert summary["device"].startswith(device)
        image = tifffile.imread(out / "super_resolution.tif").astype(np.float64)
        results[device] = (image, pd.read_csv(out / "localizations.csv"))
    (cpu_image, cpu_loc), (gpu_image, gpu_loc) = results["cpu"], results["cuda"]
    # cuDNN's convolutions (TF32 on Hopper) differ from the CPU's in the last bits: the images agree to 1 %
    # and the localisations nearly one for one
    assert np.linalg.norm(gpu_image - cpu_image) < 0.01 * np.linalg.norm(cpu_image)
    assert len(cpu_loc) > 100
    assert abs(len(gpu_loc) - len(cpu_loc)) <= 0.02 * len(cpu_loc)


def test_the_fast_architecture_trains_and_reconstructs_in_bf16_on_the_gpu(tmp_path):
    """precision auto on a GPU with bfloat16: bf16-mixed training learns, and bf16 inference finds the same
    emitters as fp32 (within 0.5 % of the localisations)."""
    from dstorm.model.precision import choose_precision

    auto, _ = choose_precision("auto", torch.device("cuda"))
    model, history, record = train_on_gpu(tmp_path, "auto", "fast")
    assert np.isfinite(history["val_loss"]).all()
    assert record["best_val_loss"] < 0.75 * record["initial_val_loss"]
    stack = tmp_path / "acq.tif"
    simulate_acquisition(dataset(), "cuda-fast", density=4.0, n_frames=40, frames_path=str(stack), ground_truth_path=str(tmp_path / "gt.csv"))
    counts = {}
    for precision in ("32", "auto"):
        out = tmp_path / precision
        out.mkdir()
        summary = reconstruct(str(stack), str(model), outputs_in(out), pixel_size_nm=100.0, device="cuda", precision=precision)
        assert summary["architecture"] == "fast" and summary["precision"] == ("32" if precision == "32" else auto)
        counts[precision] = len(pd.read_csv(out / "localizations.csv"))
    assert counts["32"] > 100
    assert abs(counts["auto"] - counts["32"]) <= 0.005 * counts["32"] + 2, counts
