"""A real end-to-end check: simulate, train a small model on the CPU, reconstruct a low-density
acquisition, and count what it finds against the ground truth."""

import pandas as pd
import pytest

from conftest import dataset
from dstorm.evaluation.matching import match_localizations
from dstorm.reconstruction import reconstruct
from dstorm.simulation.simulate import simulate_acquisition, simulate_training_set
from dstorm.training import train_model

TRAINING_SET = {
    "densities": [2], "frames": 60, "upsampling_factor": 4, "patch_size_px": 16,
    "patches_per_frame": 40, "max_patches": 2000,
}  # fmt: skip
RECIPE = {"epochs": 6, "steps_per_epoch": 50, "batch_size": 4, "validation_fraction": 0.1, "bn_momentum": 0.1}


@pytest.mark.slow
def test_a_trained_model_finds_most_emitters_at_low_density(tmp_path):
    ds = dataset(structure={"type": "filaments"}, training_set=TRAINING_SET, training=RECIPE)
    simulate_training_set(
        ds, density=2, frames_path=tmp_path / "t.tif", ground_truth_path=tmp_path / "t.csv", patches_path=tmp_path / "p.npz"
    )
    record = train_model(
        tmp_path / "p.npz", tmp_path / "model.pt", tmp_path / "h.csv", tmp_path / "h.png",
        checkpoint_dir=tmp_path / "ck", recipe=RECIPE, seed=ds["seed"],
    )  # fmt: skip
    assert record["best_val_loss"] < 0.8 * record["initial_val_loss"]
    simulate_acquisition(ds, "low", density=1.0, n_frames=30, frames_path=tmp_path / "a.tif", ground_truth_path=tmp_path / "gt.csv")
    out = {k: str(tmp_path / f"out_{k}") for k in (
        "super_resolution", "super_resolution_png", "widefield", "widefield_png", "localizations", "rendered", "rendered_png", "summary")}  # fmt: skip
    reconstruct(str(tmp_path / "a.tif"), str(tmp_path / "model.pt"), out, pixel_size_nm=100.0)
    loc, gt = pd.read_csv(out["localizations"]), pd.read_csv(tmp_path / "gt.csv")
    m = match_localizations(loc["frame"], loc[["x [nm]", "y [nm]"]], gt["frame"], gt[["x [nm]", "y [nm]"]], 250.0)
    recall, precision = m.tp / m.n_gt, m.tp / m.n_pred
    print(f"\nend-to-end: {m.n_gt} emitters, {m.n_pred} localisations, recall {recall:.3f}, precision {precision:.3f}")
    assert recall > 0.7 and precision > 0.8, (recall, precision)
