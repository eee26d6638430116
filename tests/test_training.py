"""Batches on the device, the Lightning system, model files, divergence, and kill-and-resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, SCHEMA, TINY_RECIPE, TINY_TRAINING_SET
from dstorm.coordinates import heatmap
from dstorm.io import load_arrays
from dstorm.model.batches import PatchStore, normalization_stats, scale_01
from dstorm.model.loss import deepstorm_loss, loss_kernel
from dstorm.model.modelfile import load_model, save_model
from dstorm.model.network import DeepSTORMNet
from dstorm.model.system import DeepSTORMModule, PatchDataModule, TrainingDiverged
from dstorm.training import DEFAULT_RECIPE, train_model


def test_normalisation_statistics_as_the_reference_computes_them():
    patches = np.array([[[0, 10], [20, 30]], [[5, 5], [5, 7]]], dtype=np.uint16)
    # per patch [0, 1]: [0, 1/3, 2/3, 1] and [0, 0, 0, 1]; mean of means, mean of population stds
    a, b = np.array([0, 1 / 3, 2 / 3, 1]), np.array([0, 0, 0, 1.0])
    mean, std = normalization_stats(patches)
    assert mean == pytest.approx((a.mean() + b.mean()) / 2)
    assert std == pytest.approx((a.std() + b.std()) / 2)
    flat = scale_01(torch.tensor([[[3.0, 3.0], [3.0, 3.0]]]))
    assert torch.equal(flat, torch.zeros(1, 2, 2))  # a constant patch gives 0, not NaN


def test_batches_built_on_the_device_equal_the_reference_construction(tiny_patches):
    meta, arr = load_arrays(tiny_patches)
    store = PatchStore(arr["patches"], arr["offsets"], arr["xy"], meta, 0.3, 0.2)
    index = torch.tensor([0, 3, 7, 11, 59])
    x, y = store.batch(index)
    u, p = meta["upsampling_factor"], meta["patch_size_px"]
    assert x.shape == y.shape == (5, 1, p * u, p * u)
    for j, i in enumerate(index.tolist()):
        raw = arr["patches"][i].astype(np.float64)
        ref_x = np.kron(((raw - raw.min()) / (raw.max() - raw.min()) - 0.3) / 0.2, np.ones((u, u)))
        np.testing.assert_allclose(x[j, 0].numpy(), ref_x, rtol=1e-5, atol=1e-5)
        xy = arr["xy"][arr["offsets"][i] : arr["offsets"][i + 1]]
        ref_y = heatmap(xy, (p, p), upsampling_factor=u, sigma_hr_px=meta["heatmap_sigma_px"], weighting_factor=meta["weighting_factor"])
        np.testing.assert_allclose(y[j, 0].numpy(), ref_y, atol=1e-4)


def test_data_module_split_is_seeded_and_statistics_come_from_training_patches(tiny_patches):
    a = PatchDataModule(tiny_patches, validation_fraction=0.3, seed=5)
    b = PatchDataModule(tiny_patches, validation_fraction=0.3, seed=5)
    c = PatchDataModule(tiny_patches, validation_fraction=0.3, seed=6)
    assert np.array_equal(a.val_index, b.val_index) and not np.array_equal(a.val_index, c.val_index)
    assert len(a.val_index) == 18 and len(a.train_index) == 42
    assert not set(a.val_index) & set(a.train_index)
    _, arr = load_arrays(tiny_patches)
    assert (a.mean, a.std) == normalization_stats(arr["patches"][a.train_index])


def test_overfitting_a_handful_of_patches_lowers_the_loss_tenfold(tiny_patches):
    # The L1 term sets a floor: a perfect spike of height W/2 costs W/2 in L1 while it removes W²·Σg² of
    # MSE, so the loss can fall at most ~2W·Σg² = 16× from an all-zero prediction at the official W = 100
    # (12× after 1000 steps here). ZeroCostDL4Mic's automatic W = 170.2 leaves room to show 10× in 400 steps.
    torch.manual_seed(0)
    data = PatchDataModule(tiny_patches, seed=0)
    data.store.weighting = 170.2
    x, y = data.store.batch(torch.as_tensor(data.train_index[:4]))
    net = DeepSTORMNet(bn_momentum=0.1)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    kernel = loss_kernel()
    losses = []
    for _ in range(400):
        optimiser.zero_grad()
        loss = deepstorm_loss(net(x), y, kernel)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])


def test_lightning_fast_dev_run_on_cpu(tiny_patches):
    data = PatchDataModule(tiny_patches, batch_size=4, steps_per_epoch=3)
    trainer = L.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(DeepSTORMModule(), datamodule=data)
    assert trainer.state.finished


def test_model_file_round_trip_gives_identical_predictions(tiny_patches, tmp_path):
    data = PatchDataModule(tiny_patches, batch_size=4, steps_per_epoch=3)
    module = DeepSTORMModule(network={"bn_momentum": 0.1})
    L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False).fit(module, datamodule=data)  # fmt: skip
    module.eval()
    index = torch.as_tensor(data.val_index[:5])
    with torch.no_grad():
        expected = torch.relu(module(data.store.inputs(index)))[:, 0]
    save_model(
        tmp_path / "model.pt", module.net, "deepstorm", upsampling_factor=data.meta["upsampling_factor"],
        normalization={"mean": data.mean, "std": data.std}, weighting_factor=100.0, pixel_size_nm=100.0,
    )  # fmt: skip
    loaded = load_model(tmp_path / "model.pt")
    got = loaded.predict(data.store.patches[index])  # raw counts in: the model file carries the preprocessing
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert loaded.info["versions"]["torch"] == torch.__version__
    assert loaded.info["network"]["bn_momentum"] == 0.1


def test_bad_model_files_give_clear_errors(tmp_path):
    net = DeepSTORMNet()
    fields = dict(upsampling_factor=8, normalization={"mean": 0.1, "std": 0.2}, weighting_factor=100.0, pixel_size_nm=100.0)
    save_model(tmp_path / "good.pt", net, "deepstorm", **fields)
    data = (tmp_path / "good.pt").read_bytes()
    save_model(tmp_path / "again.pt", net, "deepstorm", **fields)
    assert (tmp_path / "again.pt").read_bytes() == data  # the same model gives the same bytes, whatever the file name
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated.pt: not a readable Deep-STORM model file"):
        load_model(tmp_path / "truncated.pt")
    # different architecture: weights of a wider network under the same name
    save_model(tmp_path / "wide.pt", DeepSTORMNet(encoder=(32, 64, 128, 256)), "deepstorm", **fields)
    payload = torch.load(tmp_path / "wide.pt", weights_only=True)
    payload["network"]["encoder"] = [32, 64, 128, 512]
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match=r"mismatch.pt: weights do not fit architecture 'deepstorm'"):
        load_model(tmp_path / "mismatch.pt")
    payload["architecture"] = "unet"
    torch.save(payload, tmp_path / "unet.pt")
    with pytest.raises(ValueError, match=r"unet.pt: .*unknown architecture 'unet'"):
        load_model(tmp_path / "unet.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt: not a Deep-STORM model file"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match=r"absent.pt: model file not found"):
        load_model(tmp_path / "absent.pt")


class _Payload:  # a pickled object: loading it would run code
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_model_file_cannot_execute_code(tmp_path):
    torch.save({"format": "dstorm-model", "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil.pt: refused: the file holds Python objects \(posix.system\) that could run code") as err:
        load_model(tmp_path / "evil.pt")
    assert "weights_only" not in str(err.value)  # torch's hint to load it unsafely is not passed on


def test_nan_loss_stops_training_without_writing_a_model(tiny_patches, tmp_path):
    recipe = {**TINY_RECIPE, "mse_weight": float("nan")}
    with pytest.raises(TrainingDiverged, match=r"training loss became nan at epoch 0, step 0"):
        train_model(tiny_patches, tmp_path / "m.pt", tmp_path / "h.csv", tmp_path / "h.png", checkpoint_dir=tmp_path / "ck", recipe=recipe)
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "h.csv").exists()


def test_exploding_loss_stops_training(tiny_patches, tmp_path):
    recipe = {**TINY_RECIPE, "learning_rate": 1.0, "epochs": 30, "max_loss_ratio": 1.5}
    with pytest.raises(TrainingDiverged, match=r"exploded .* training.max_loss_ratio=1.5"):
        train_model(tiny_patches, tmp_path / "m.pt", tmp_path / "h.csv", tmp_path / "h.png", checkpoint_dir=tmp_path / "ck", recipe=recipe)
    assert not (tmp_path / "m.pt").exists()


def test_training_writes_model_history_and_curves(tiny_patches, tmp_path):
    record = train_model(
        tiny_patches, tmp_path / "m.pt", tmp_path / "h.csv", tmp_path / "h.png",
        checkpoint_dir=tmp_path / "ck", recipe={**TINY_RECIPE, "epochs": 3}, seed=1, label="t/density_6",
    )  # fmt: skip
    history = pd.read_csv(tmp_path / "h.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]
    assert history["val_loss"].notna().all() and history["learning_rate"][1:].eq(1e-3).all()
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["best_val_loss"] == pytest.approx(history["val_loss"][1:].min(), rel=1e-5)
    info = load_model(tmp_path / "m.pt").info
    for key in ("upsampling_factor", "normalization", "weighting_factor", "pixel_size_nm", "architecture", "network", "versions"):
        assert key in info
    assert info["training"]["config_hash"] == record["config_hash"] and info["upsampling_factor"] == 2
    assert not (tmp_path / "ck").exists()  # checkpoints are removed after success


def test_weight_averaging_puts_the_validated_average_in_the_model_file(tiny_patches, tmp_path):
    """With ``ema_decay`` the model file holds the averaged weights that validation scored (the best
    epoch's validation loss is that of the file's weights), and they differ from the last step's weights
    (the same run without averaging: same seed, same batches)."""
    recipe = {**TINY_RECIPE, "epochs": 3, "steps_per_epoch": 4, "precision": "32", "ema_decay": 0.7}
    paths = lambda tag: [tmp_path / f"{tag}.pt", tmp_path / f"{tag}.csv", tmp_path / f"{tag}.png"]  # noqa: E731
    record = train_model(tiny_patches, *paths("ema"), checkpoint_dir=tmp_path / "ck1", recipe=recipe, seed=2)
    train_model(tiny_patches, *paths("last"), checkpoint_dir=tmp_path / "ck2", recipe={**recipe, "ema_decay": 0}, seed=2)
    ema, last = (load_model(tmp_path / f"{tag}.pt") for tag in ("ema", "last"))
    used = ema.info["training"]["recipe"]  # the recipe that training ran, with the split it validated on
    assert used["ema_decay"] == 0.7
    differ = [k for k, v in ema.net.state_dict().items() if v.is_floating_point()
              and not torch.equal(v, last.net.state_dict()[k])]  # fmt: skip
    assert len(differ) > 0.9 * sum(v.is_floating_point() for v in ema.net.state_dict().values())

    data = PatchDataModule(tiny_patches, batch_size=used["batch_size"], validation_fraction=used["validation_fraction"], seed=2)
    module = DeepSTORMModule(network={"bn_momentum": 0.1})
    module.net.load_state_dict(ema.net.state_dict())
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (scores,) = trainer.validate(module, datamodule=data, verbose=False)
    assert scores["val_loss"] == pytest.approx(record["best_val_loss"], rel=1e-5)


def test_the_default_recipe_is_the_official_one_read_from_the_schema(tmp_path):
    """The library's recipe is the schema's ``training`` defaults (their one owner), and those are the
    official recipe (shared/reference/deep-storm.md): Adam 1e-3, batch 16, 400 steps × 100 epochs,
    ReduceLROnPlateau(0.1, patience 5, min 5e-5), MSE + L1 1:1, Keras' BatchNorm momentum 0.99, 30 %
    validation."""
    from dstorm.defaults import schema_defaults

    official = {"epochs": 100, "steps_per_epoch": 400, "batch_size": 16, "validation_fraction": 0.3,
                "learning_rate": 1e-3, "lr_factor": 0.1, "lr_patience": 5, "min_lr": 5e-5, "mse_weight": 1.0,
                "l1_weight": 1.0, "bn_momentum": 0.01}  # fmt: skip
    assert {k: DEFAULT_RECIPE[k] for k in official} == official
    schema = yaml.safe_load(SCHEMA.read_text())
    schema["$defs"]["training"]["properties"]["epochs"]["default"] = 7
    edited = tmp_path / "schema.yaml"
    edited.write_text(yaml.safe_dump(schema))
    assert schema_defaults("training", edited) == {**DEFAULT_RECIPE, "epochs": 7}


DRIVER = """
import sys
sys.path.insert(0, {scripts!r})
from dstorm.logs import setup_logging
from dstorm.training import train_model
setup_logging({log!r})
train_model({patches!r}, {out!r} + "/model.pt", {out!r} + "/history.csv", {out!r} + "/history.png",
            checkpoint_dir={out!r} + "/checkpoints", recipe={recipe!r}, seed=4, label="resume-test")
"""


def _train_command(tiny_patches, out, log, recipe) -> list[str]:
    return [sys.executable, "-c", DRIVER.format(scripts=str(REPO / "scripts"), log=str(log), patches=str(tiny_patches),
                                                out=str(out), recipe=recipe)]  # fmt: skip


def _kill_after_epoch(command: list[str], log: Path, epoch: int, of: int) -> None:
    """Start a training run and SIGKILL it, as the scheduler does at a time limit or pre-emption, once its log
    says that ``epoch`` of ``of`` is done."""
    proc = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and f"epoch {epoch}/{of} done" in log.read_text():
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killed_training_resumes_from_its_last_checkpoint(tiny_patches, tmp_path):
    recipe = {**TINY_RECIPE, "epochs": 12, "steps_per_epoch": 6}
    _kill_after_epoch(_train_command(tiny_patches, tmp_path, tmp_path / "first.log", recipe), tmp_path / "first.log", 3, 12)
    assert not (tmp_path / "model.pt").exists()
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()

    second_log = tmp_path / "second.log"
    subprocess.run(_train_command(tiny_patches, tmp_path, second_log, recipe), check=True, timeout=300)
    text = second_log.read_text()
    assert "resuming from" in text and "epoch 0 (untrained)" not in text
    trained = [int(line.split("epoch ")[1].split("/")[0]) for line in text.splitlines() if " done: " in line]
    # the epoch counter continued from a checkpoint (the one of epoch 3, or, where the kill came while it was
    # being written, an earlier one): nothing lost, nothing repeated
    assert trained[0] >= 2 and trained == list(range(trained[0], 13)), trained
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == list(range(13))  # epochs of both runs, none twice
    assert load_model(tmp_path / "model.pt").info["training"]["epochs"] == 12


def test_a_resumed_run_with_the_weight_average_ends_where_an_uninterrupted_one_does(tiny_patches, tmp_path):
    """With ``ema_decay`` a checkpoint holds the average and the last step's weights; a resumed run must
    restore both (and the optimiser's state): its model file then has the very weights of a run never killed.
    Restored from the average alone, the training would go on from the averaged weights and end elsewhere."""
    recipe = {**TINY_RECIPE, "epochs": 4, "steps_per_epoch": 6, "ema_decay": 0.9}
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    _kill_after_epoch(_train_command(tiny_patches, killed, tmp_path / "first.log", recipe), tmp_path / "first.log", 2, 4)
    subprocess.run(_train_command(tiny_patches, killed, tmp_path / "second.log", recipe), check=True, timeout=300)
    assert "resuming from" in (tmp_path / "second.log").read_text()
    subprocess.run(_train_command(tiny_patches, whole, tmp_path / "whole.log", recipe), check=True, timeout=300)
    resumed, uninterrupted = (load_model(d / "model.pt").net.state_dict() for d in (killed, whole))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), \
        [k for k in resumed if not torch.equal(resumed[k], uninterrupted[k])]


def test_calibration_frames_look_like_the_acquisitions_while_training_frames_follow_their_override(tmp_path):
    """The dataset's photophysics (continuous blinking, mean on-time 1 frame: an emitter-frame holds on
    average τ/(1+τ) = 1/2 of a whole frame's photons) make the calibration frames; the training frames take
    training_set.photophysics = {model: frames} (whole frames). Measured from the frames' own signal."""
    from conftest import dataset
    from dstorm.cameras import adu_per_electron, mean_offset_adu
    from dstorm.simulation.simulate import simulate_training_set

    ds = dataset(
        training_set={**TINY_TRAINING_SET, "frames": 20, "calibration_frames": 40, "photophysics": {"model": "frames"}},
        photophysics={"model": "continuous", "mean_on_frames": 1.0, "photons": {"distribution": "uniform", "low": 2000, "high": 2500}},
        background={"photons_per_px": 20, "variation": 0.0},
    )  # fmt: skip
    out = [tmp_path / f"run{k}" for k in (1, 2)]
    for o in out:
        o.mkdir()
        simulate_training_set(ds, density=2, frames_path=o / "f.tif", ground_truth_path=o / "gt.csv", patches_path=o / "p.npz")
    meta, arrays = load_arrays(out[0] / "p.npz")
    _, again = load_arrays(out[1] / "p.npz")
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)  # seeded
    assert meta["photophysics"]["model"] == "frames" and meta["calibration"]["photophysics"]["model"] == "continuous"
    frames, off, xy = arrays["calibration_frames"], arrays["calibration_offsets"], arrays["calibration_xy"]
    assert frames.shape == (40, 64, 64) and frames.dtype == np.uint16 and off[-1] == len(xy)
    assert ((xy >= 0) & (xy < 64)).all()
    # density held: emitters per frame, mean over 40 frames, within 4 standard errors of 2/µm² × 40.96 µm²
    counts = np.diff(off)
    assert abs(counts.mean() - 81.92) < 4 * counts.std(ddof=1) / np.sqrt(len(counts)) + 1
    cam = ds["camera"]
    gain, qe = adu_per_electron(cam), cam["quantum_efficiency"]

    def photons_per_emitter(stack, n):  # photons above background per emitter-frame, from the frames alone
        signal = (stack.astype(np.float64) - mean_offset_adu(cam)).sum() / gain / qe - 20 * stack.size
        return signal / n

    import tifffile

    training = tifffile.imread(out[0] / "f.tif")
    whole = photons_per_emitter(training, len(pd.read_csv(out[0] / "gt.csv")))
    partial = photons_per_emitter(frames, len(xy))
    assert whole == pytest.approx(2250, rel=0.08)  # the photons of a whole frame (less what leaves the frame)
    assert partial / whole == pytest.approx(0.5, abs=0.06)


def test_smooth_best_threshold_finds_a_vertex_between_grid_points():
    """A concave parabola in log(threshold) sampled on the grid: its vertex, not the nearest grid point; jagged
    noise on it moves the choice by far less than a grid step; a monotone or too short curve: its best point."""
    from dstorm.training import THRESHOLD_GRID, smooth_best_threshold

    t = np.array(THRESHOLD_GRID)
    x = np.log(t)
    vertex = 0.5 * (x[20] + x[21]) + 0.3 * (x[21] - x[20])  # between grid points 20 and 21
    curve = 60 - 40 * (x - vertex) ** 2
    assert smooth_best_threshold(t, curve) == pytest.approx(np.exp(vertex), rel=1e-9)
    assert t[np.argmax(curve)] / np.exp(vertex) == pytest.approx(np.exp(0.2 * (x[21] - x[20])), rel=1e-9)
    # ±0.5 point of jaggedness (alternating, as outlier matches make it): within a fifth of a grid step
    jagged = curve + 0.5 * (-1.0) ** np.arange(len(t))
    assert abs(np.log(smooth_best_threshold(t, jagged)) - vertex) < 0.2 * (x[1] - x[0])
    # NaN (no matched pair) and None are skipped
    holes = list(curve)
    holes[19], holes[22] = float("nan"), None
    assert smooth_best_threshold(t, holes) == pytest.approx(np.exp(vertex), rel=1e-9)
    # a curve that rises to the grid's end: the end; a convex window: the best grid point; a 3-point grid: its best
    assert smooth_best_threshold(t, -x) == t[0]
    assert smooth_best_threshold(t, np.abs(x - x[20]) * (np.arange(len(t)) != 20)) == t[0]
    assert smooth_best_threshold(t[:3], [1.0, 3.0, 2.0]) == t[1]


def test_smooth_best_threshold_does_not_jump_when_the_best_grid_point_hops():
    """A flat maximum with a cliff above it (the efficiency's shape: recall falls there): raising one grid point
    by 0.1 makes it the best instead of its neighbour; a window of grid points about the best one would move by
    half a grid step (0.42 here), the weighted fit moves by less than a twentieth."""
    from dstorm.training import THRESHOLD_GRID, smooth_best_threshold

    t = np.array(THRESHOLD_GRID)
    u = np.arange(len(t)) - 20.0  # grid steps from point 20
    curve = 64 - 0.1 * u**2 - 0.5 * np.maximum(u, 0) ** 2
    below, above = curve.copy(), curve.copy()
    below[21] = curve[20] - 0.05
    above[21] = curve[20] + 0.05
    assert np.argmax(below) == 20 and np.argmax(above) == 21
    chosen = [np.log(smooth_best_threshold(t, c) / t[20]) / np.log(t[1] / t[0]) for c in (curve, below, above)]
    assert -1.5 < chosen[0] < -0.5  # below the best grid point, toward the flat side
    assert abs(chosen[2] - chosen[1]) < 0.05, chosen


def test_threshold_is_calibrated_on_the_calibration_frames_by_the_chosen_criterion(tiny_patches, tmp_path):
    from dstorm.training import SMOOTH_REACH, best_index, calibrate_threshold, smooth_best_threshold

    torch.manual_seed(0)
    module = DeepSTORMModule(network={"bn_momentum": 0.1})
    data = PatchDataModule(tiny_patches, batch_size=4, steps_per_epoch=4, seed=0)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, datamodule=data)
    by = {c: calibrate_threshold(module.net, data, criterion=c) for c in ("jaccard", "efficiency")}
    assert {r["source"] for r in by.values()} == {"calibration frames"}
    assert by["jaccard"]["n_frames"] == data.meta["calibration"]["frames"] == TINY_TRAINING_SET["calibration_frames"]
    assert by["jaccard"]["n_emitters"] == data.meta["calibration"]["emitters"]
    # each maximises its own criterion's curve (smoothed about its best grid point, within the fitted window)
    for c, key in (("jaccard", "jaccard"), ("efficiency", "efficiency_pct")):
        curve = by[c]["curve"]
        assert by[c]["threshold"] == smooth_best_threshold(curve["threshold"], curve[key])
        grid_best = curve["threshold"][best_index(curve[key])]
        step = curve["threshold"][1] / curve["threshold"][0]
        assert abs(np.log(by[c]["threshold"] / grid_best)) <= SMOOTH_REACH * np.log(step) + 1e-9
    e = by["efficiency"]
    assert e["efficiency_pct"] == pytest.approx(100 - np.hypot(100 - 100 * e["jaccard"], e["rmse_nm"]))
    # without calibration frames: the validation patches
    meta, arrays = load_arrays(tiny_patches)
    from dstorm.io import save_arrays

    save_arrays(tmp_path / "p.npz", meta, **{k: v for k, v in arrays.items() if not k.startswith("calibration_")})
    bare = PatchDataModule(tmp_path / "p.npz", batch_size=4, steps_per_epoch=4, seed=0)
    row = calibrate_threshold(module.net, bare)
    assert row["source"] == "validation patches" and row["n_frames"] == len(bare.val_index)
    with pytest.raises(ValueError, match="criterion"):
        calibrate_threshold(module.net, data, criterion="f1")
