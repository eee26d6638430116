"""A real end-to-end check for each architecture: simulate, train a small model on the CPU, reconstruct a
low-density acquisition, and count what it finds against the ground truth; and the accuracy guard of
inference in bfloat16 (what ``precision: auto`` chooses on CPUs and GPUs with native bfloat16)."""

import numpy as np
import pandas as pd
import pytest

from conftest import dataset
from dstorm.evaluation.matching import match_localizations
from dstorm.evaluation.metrics import matched_errors
from dstorm.reconstruction import outputs_in, reconstruct
from dstorm.simulation.simulate import simulate_acquisition, simulate_training_set
from dstorm.training import train_model

TRAINING_SET = {
    "densities": [2], "frames": 60, "upsampling_factor": 4, "patch_size_px": 16,
    "patches_per_frame": 40, "max_patches": 2000,
}  # fmt: skip
RECIPE = {"epochs": 6, "steps_per_epoch": 50, "batch_size": 4, "validation_fraction": 0.1, "bn_momentum": 0.1}
#: steps per epoch of each architecture: about the same training time on a CPU (the fast one's step costs
#: a tenth of the faithful one's at these small patches)
STEPS = {"deepstorm": 50, "fast": 200}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """One training set and one test acquisition (1/µm², 16 frames), shared by both architectures."""
    tmp = tmp_path_factory.mktemp("e2e")
    ds = dataset(structure={"type": "filaments"}, training_set=TRAINING_SET, training=RECIPE)
    simulate_training_set(
        ds, density=2, frames_path=tmp / "t.tif", ground_truth_path=tmp / "t.csv", patches_path=tmp / "p.npz"
    )
    simulate_acquisition(ds, "low", density=1.0, n_frames=16, frames_path=tmp / "a.tif", ground_truth_path=tmp / "gt.csv")
    return ds, tmp


def score(folder, gt) -> tuple[float, float, float, float]:
    loc = pd.read_csv(folder / "localizations.csv")
    xy = loc[["x [nm]", "y [nm]"]].to_numpy()
    gt_xy = gt[["x [nm]", "y [nm]"]].to_numpy()
    m = match_localizations(loc["frame"], xy, gt["frame"], gt_xy, 250.0)
    err = matched_errors(m, xy, gt_xy)
    return m.tp / m.n_gt, m.tp / m.n_pred, m.jaccard, float(np.sqrt((err**2).sum(axis=1).mean()))


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["deepstorm", "fast"])
def test_a_trained_model_finds_most_emitters_at_low_density(simulated, architecture, tmp_path):
    ds, data = simulated
    recipe = {**RECIPE, "architecture": architecture, "steps_per_epoch": STEPS[architecture]}
    record = train_model(
        data / "p.npz", tmp_path / "model.pt", tmp_path / "h.csv", tmp_path / "h.png",
        checkpoint_dir=tmp_path / "ck", recipe=recipe, seed=ds["seed"],
    )  # fmt: skip
    assert record["best_val_loss"] < 0.8 * record["initial_val_loss"]
    gt = pd.read_csv(data / "gt.csv")
    scores = {}
    for precision in ("32", "bf16-mixed"):
        out = tmp_path / precision
        out.mkdir()
        summary = reconstruct(str(data / "a.tif"), str(tmp_path / "model.pt"), outputs_in(out), pixel_size_nm=100.0,
                              precision=precision)  # fmt: skip
        assert summary["architecture"] == architecture and summary["precision"] == precision
        scores[precision] = score(out, gt)
    recall, precision, jaccard, rmse = scores["32"]
    print(f"\n{architecture}: {len(gt)} emitters, recall {recall:.3f}, precision {precision:.3f}, RMSE {rmse:.1f} nm; "
          f"bf16: Jaccard {scores['bf16-mixed'][2] - jaccard:+.4f}, RMSE {scores['bf16-mixed'][3] - rmse:+.2f} nm")  # fmt: skip
    assert recall > 0.7 and precision > 0.8, (recall, precision)
    # the accuracy guard: bfloat16 inference within 0.5 Jaccard point and 1 nm RMSE of fp32
    assert abs(scores["bf16-mixed"][2] - jaccard) <= 0.005, scores
    assert abs(scores["bf16-mixed"][3] - rmse) <= 1.0, scores
