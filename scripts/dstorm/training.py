"""The train stage: fit the Deep-STORM network to one training set, resumably, and write a model file.

Checkpoints live in ``checkpoint_dir`` (beside the outputs, not declared to Snakemake): ``last.ckpt`` after
every epoch for resuming, ``best.ckpt`` with the lowest validation loss (the weights the model file gets).
If the process dies (SIGKILL, pre-emption, time limit) and the rule runs again with the same recipe and
patches, training resumes from ``last.ckpt``; otherwise stale checkpoints are discarded. After success the
checkpoint folder is removed.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import shutil
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn

from dstorm.config import config_hash
from dstorm.defaults import schema_defaults
from dstorm.evaluation.matching import match_localizations
from dstorm.evaluation.metrics import efficiency, matched_errors
from dstorm.io import atomic_output
from dstorm.localization import find_peaks
from dstorm.model.modelfile import LoadedModel, save_model
from dstorm.architectures import architecture
from dstorm.model.precision import choose_precision
from dstorm.model.system import DeepSTORMModule, PatchDataModule

__all__ = ["train_model", "DEFAULT_RECIPE", "HISTORY_COLUMNS"]

log = logging.getLogger(__name__)

#: The official recipe (Nehme et al. 2018, EliasNehme/Deep-STORM): the defaults of the config schema's
#: ``training`` section, their one owner; config/README.md documents each key.
DEFAULT_RECIPE = schema_defaults("training")

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]


class History(Callback):
    """Per-epoch train loss (mean over the epoch's steps), validation loss and learning rate, with progress
    lines in the log. Its rows travel inside the checkpoints, so a resumed run keeps the earlier epochs."""

    def __init__(self, log_every: int):
        self.rows: list[dict] = []
        self.log_every = max(int(log_every), 1)

    def state_dict(self):
        return {"rows": self.rows}

    def load_state_dict(self, state_dict):
        self.rows = list(state_dict["rows"])

    def on_train_epoch_start(self, trainer, pl_module):
        self._sum, self._n, self._t0 = 0.0, 0, time.perf_counter()
        self._lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._sum += float(outputs["loss"])
        self._n += 1
        if (batch_idx + 1) % self.log_every == 0 or batch_idx + 1 == trainer.num_training_batches:
            rate = self._n * batch[0].shape[0] / (time.perf_counter() - self._t0)
            log.info(
                "epoch %d/%d step %d/%d loss %.5g (%.1f patches/s)",
                trainer.current_epoch + 1, trainer.max_epochs, batch_idx + 1, trainer.num_training_batches,
                self._sum / self._n, rate,
            )  # fmt: skip

    def on_train_epoch_end(self, trainer, pl_module):
        val = trainer.callback_metrics.get("val_loss")
        row = {
            "epoch": trainer.current_epoch + 1,
            "train_loss": self._sum / max(self._n, 1),
            "val_loss": float(val) if val is not None else math.nan,
            "learning_rate": self._lr,
            "seconds": time.perf_counter() - self._t0,
        }
        self.rows.append(row)
        log.info(
            "epoch %d/%d done: train_loss %.5g val_loss %.5g lr %.3g (%.1f s)",
            row["epoch"], trainer.max_epochs, row["train_loss"], row["val_loss"], row["learning_rate"], row["seconds"],
        )  # fmt: skip


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_history(rows: list[dict], csv_path, png_path, title: str, zero_loss: float | None = None) -> None:
    with atomic_output(csv_path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(6, 5), sharex=True, height_ratios=[3, 1], layout="constrained")
    ax.semilogy(epochs, [r["train_loss"] for r in rows], "o-", ms=3, label="training")
    ax.semilogy(epochs, [r["val_loss"] for r in rows], "o-", ms=3, label="validation")
    if zero_loss is not None:
        ax.axhline(zero_loss, color="grey", ls="--", lw=1, label="all-zero prediction (validation)")
    ax.set_ylabel("loss (heatmap MSE + L1)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    ax_lr.semilogy(epochs, [r["learning_rate"] for r in rows], "k.-")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("epoch")
    ax_lr.grid(alpha=0.3)
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)


# Noise that says nothing to a user: our stamp file lives in the checkpoint folder on purpose, and
# Lightning's own use of a deprecated torch API.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


#: What the calibrated threshold can maximise (``training.threshold_criterion``): the column of
#: :func:`threshold_curve` of each criterion.
CRITERION_KEYS = {"jaccard": "jaccard", "efficiency": "efficiency_pct"}
#: The thresholds (× weighting factor) the calibration tries.
THRESHOLD_GRID = tuple(float(t) for t in np.geomspace(1e-3, 0.9, 40))


def threshold_curve(frame: np.ndarray, xy: np.ndarray, peak: np.ndarray, weight: float, gt_frame: np.ndarray,
                    gt_xy: np.ndarray, tolerance_nm: float, grid=THRESHOLD_GRID) -> list[dict]:  # fmt: skip
    """Scores of the localisations ``xy`` (nm) whose ``peak`` exceeds each threshold of ``grid`` × the
    weighting factor ``weight``, against the truth: threshold, Jaccard, recall, precision, RMSE (nm) and
    efficiency."""
    rows = []
    for t in grid:
        keep = peak > t * weight
        m = match_localizations(frame[keep], xy[keep], gt_frame, gt_xy, tolerance_nm)
        err = matched_errors(m, xy[keep], gt_xy)
        rmse = float(np.sqrt((err**2).sum(axis=1).mean())) if len(err) else float("nan")
        rows.append({
            "threshold": float(t), "jaccard": m.jaccard, "recall": m.tp / max(m.n_gt, 1),
            "precision": m.tp / max(m.n_pred, 1), "rmse_nm": rmse, "efficiency_pct": efficiency(m.jaccard, rmse),
        })  # fmt: skip
    return rows


def best_index(values) -> int:
    """The index of the largest finite value of ``values`` (the first of equals; NaN and None never win), 0
    where none is finite: the threshold a criterion's column of a curve chooses."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    return int(np.argmax(np.where(finite, v, -np.inf))) if finite.any() else 0


#: The local quadratic of :func:`smooth_best_threshold`: its Gaussian weights' standard deviation, in grid steps
#: of log(threshold), and how far (grid steps) from the best grid point its maximum may lie.
SMOOTH_WIDTH_STEPS = 1.5
SMOOTH_REACH = 3


def smooth_best_threshold(thresholds, values, width_steps: float = SMOOTH_WIDTH_STEPS, reach: int = SMOOTH_REACH) -> float:
    """The maximum of a quadratic in log(threshold) fitted to ``values`` by least squares with Gaussian weights
    (standard deviation ``width_steps`` grid steps) centred on that maximum itself: from the best grid point,
    the centre moves to the fitted vertex until it stays, within ``reach`` grid steps of the best grid point
    and among the finite values next to it. The best grid point itself where fewer than 4 finite values carry
    weight or the first fit is not concave.

    A curve's maximum measured on a few thousand emitters is flat and jagged (outlier matches move the RMSE
    from one grid point to the next), so its argmax hops by whole grid steps (×1.19) between models that
    differ only in rounding; where the Jaccard index falls steeply, as it does at the efficiency's maximum,
    one step costs several points. A fit to a fixed window of grid points about the argmax averages the
    jaggedness but still jumps with it, since the window moves a whole step when the argmax does; the
    weights here move with the vertex, so the threshold moves continuously with the curve. (Measured on the
    demo's two fp32 layouts, whose density-2 models agree within 0.3 Jaccard points at fixed thresholds:
    thresholds 0.0349 / 0.0388 with a 7-point window, 0.0343 / 0.0356 with these weights.)"""
    t = np.asarray(thresholds, dtype=float)
    v = np.asarray(values, dtype=float)  # None (no matched pair) reads as NaN
    i = best_index(v)
    if len(t) < 4:
        return float(t[i])
    x, ok = np.log(t), np.isfinite(v)
    step = (x[-1] - x[0]) / (len(x) - 1)
    # the maximum stays among the finite values next to the best grid point (a threshold above the last one
    # with a matched pair has no score), within reach of it
    j0, j1 = i, i
    while j0 > max(0, i - reach) and ok[j0 - 1]:
        j0 -= 1
    while j1 < min(len(x) - 1, i + reach) and ok[j1 + 1]:
        j1 += 1
    centre = x[i]
    for _ in range(50):
        w = np.exp(-0.5 * ((x - centre) / (width_steps * step)) ** 2)
        use = ok & (w > 1e-3)
        if use.sum() < 4:
            break
        a, b, _ = np.polyfit(x[use], v[use], 2, w=np.sqrt(w[use]))
        if not a < 0:
            break  # not concave here: the last concave fit's vertex (the first: the best grid point)
        vertex = float(np.clip(-b / (2 * a), x[j0], x[j1]))
        moved, centre = abs(vertex - centre), vertex
        if moved < 1e-9 * step:
            break
    k = int(np.argmin(np.abs(x - centre)))
    return float(t[k]) if abs(x[k] - centre) < 1e-12 else float(np.exp(centre))  # a grid point exactly


def precision_model(frames, frame, xy, gt_frame, gt_xy, meta, tolerance_nm) -> dict:
    """The network's precision on the isolated emitters of ``frames`` (raw, ADU) that it found at
    ``(frame, xy)`` (nm; ``gt_frame, gt_xy`` the truth): Mortensen's bound for the photons and background
    fitted there (dstorm.photometry) and the measured errors give ``precision_curve``
    (:func:`dstorm.photometry.fit_precision`), which reconstruction turns into ``uncertainty [nm]``, the
    network's precision rather than an ideal fitter's. ``precision_emitters``: how many emitters measured it
    (the curve is None below PRECISION_MIN_EMITTERS, or without a camera)."""
    from dstorm.photometry import (ISOLATION_NM, PRECISION_MIN_EMITTERS, dataset_photometry, fit_photons, fit_precision,
                                   isolated, mortensen_precision)  # fmt: skip

    pixel = float(meta["pixel_size_nm"])
    m = match_localizations(frame, xy, gt_frame, gt_xy, tolerance_nm)
    sel = isolated(gt_frame, gt_xy, ISOLATION_NM)[m.gt_index]
    pred, gt = m.pred_index[sel], m.gt_index[sel]
    out = {"precision_curve": None, "precision_emitters": int(len(pred))}
    camera, sigma_nm = dataset_photometry(meta)
    if len(pred) < PRECISION_MIN_EMITTERS or camera is None:
        return out
    photons, background = fit_photons(frames, frame[pred], xy[pred, 0] / pixel, xy[pred, 1] / pixel,
                                      camera=camera, sigma_px=sigma_nm / pixel)  # fmt: skip
    bound = mortensen_precision(photons, background, sigma_nm=sigma_nm, pixel_nm=pixel, camera_model=camera["model"])
    ok = np.isfinite(bound)
    out["precision_emitters"] = int(ok.sum())
    if ok.sum() < PRECISION_MIN_EMITTERS:
        return out
    out["precision_curve"] = fit_precision(bound[ok], xy[pred[ok]] - gt_xy[gt[ok]])
    return out


def _detect(model: LoadedModel, frames: np.ndarray, batch: int, threshold_abs: float, pixel: float) -> dict:
    """Every peak above ``threshold_abs`` of the model's predictions for raw ``frames``: ``frame`` (from 0),
    ``xy`` (nm) and ``peak``."""
    found = {"frame": [], "xy": [], "peak": []}
    for start in range(0, len(frames), batch):
        peaks = find_peaks(model.predict(frames[start : start + batch]), upsampling_factor=model.upsampling_factor,
                           threshold=threshold_abs)  # fmt: skip
        found["frame"].append(peaks.index.cpu().numpy() + start)
        found["xy"].append(np.column_stack([peaks.x_px.cpu().numpy(), peaks.y_px.cpu().numpy()]) * pixel)
        found["peak"].append(peaks.peak.cpu().numpy())
    return {k: np.concatenate(v) for k, v in found.items()}


def _truth_table(truth: list[np.ndarray], pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame emitter lists (camera pixels) as (frame from 0, xy nm)."""
    return np.concatenate([np.full(len(e), k) for k, e in enumerate(truth)]), np.concatenate(truth) * pixel


def calibrate_threshold(net: torch.nn.Module, data: PatchDataModule, *, tolerance_nm: float = 250.0,
                        criterion: str = DEFAULT_RECIPE["threshold_criterion"], precision: str = "32") -> dict:  # fmt: skip
    """The detection threshold (× weighting factor) that maximises ``criterion`` (the Jaccard index, or the
    SMLM challenge's efficiency, which also weighs the RMSE) on the patch file's calibration frames (frames
    that look like the acquisitions; else the validation patches), against the emitters inside each. A fixed
    threshold does not transfer between models (shared/reference: a short-trained network's peaks are
    lower), so every model carries its own. The maximum is that of a quadratic fitted about the curve's
    maximum with Gaussian weights (:func:`smooth_best_threshold`), so the threshold moves continuously between
    models rather than by grid steps. ``curve`` holds every grid threshold tried and its scores."""
    if criterion not in CRITERION_KEYS:
        raise ValueError(f"threshold criterion {criterion!r}; known: {', '.join(CRITERION_KEYS)}")
    meta = data.meta
    weight, pixel, u = float(meta["weighting_factor"]), float(meta["pixel_size_nm"]), int(meta["upsampling_factor"])
    device = next(net.parameters()).device
    # exactly the inference path of a model file: same preprocessing, same memory layout
    model = LoadedModel(net.eval(), {"upsampling_factor": u, "normalization": {"mean": data.mean, "std": data.std}},
                        device, precision)  # fmt: skip
    frames, truth, source = data.calibration_set()
    grid = THRESHOLD_GRID
    # the training batch's pixels per inference batch: larger batches only cost memory on a CPU
    batch = max(1, data.batch_size * int(meta["patch_size_px"]) ** 2 // (frames.shape[1] * frames.shape[2]))
    found = _detect(model, frames, batch, grid[0] * weight, pixel)
    gt_frame, gt_xy = _truth_table(truth, pixel)
    scores = threshold_curve(found["frame"], found["xy"], found["peak"], weight, gt_frame, gt_xy, tolerance_nm, grid)
    chosen = smooth_best_threshold(grid, [row[CRITERION_KEYS[criterion]] for row in scores])
    best = threshold_curve(found["frame"], found["xy"], found["peak"], weight, gt_frame, gt_xy, tolerance_nm,
                           grid=(chosen,))[0]  # fmt: skip

    def finite(v):  # NaN (no matched pair: no RMSE) as None, so that two model files compare equal
        return None if isinstance(v, float) and not np.isfinite(v) else v

    best = {k: finite(v) for k, v in best.items()}
    # the precision: on the sparse precision frames where the patch file has them, else on the calibration
    # frames (raw frames too, but few of their emitters are isolated at high density)
    sparse = data.frames_set("precision")
    if sparse is not None:
        p_frames, p_truth = sparse
        p_found = _detect(model, p_frames, batch, best["threshold"] * weight, pixel)
        best.update(precision_model(p_frames, p_found["frame"], p_found["xy"], *_truth_table(p_truth, pixel), meta,
                                    tolerance_nm), precision_source="precision frames")  # fmt: skip
    elif source == "calibration frames":
        keep = found["peak"] > best["threshold"] * weight
        best.update(precision_model(frames, found["frame"][keep], found["xy"][keep], gt_frame, gt_xy, meta, tolerance_nm),
                    precision_source=source)  # fmt: skip
    best.update(criterion=criterion, source=source, tolerance_nm=tolerance_nm, n_frames=len(frames),
                n_emitters=int(len(gt_xy)), curve={k: [finite(r[k]) for r in scores] for k in scores[0]})  # fmt: skip
    return best


def train_model(
    patches_path: str,
    model_path: str,
    history_csv: str,
    history_png: str,
    *,
    checkpoint_dir: str,
    recipe: dict | None = None,
    seed: int = 0,
    label: str = "",
    threads: int | None = None,
    accelerator: str = "auto",
) -> dict:
    """Train on ``patches_path`` and write the model file and the history (CSV and PNG).

    Returns the model file's ``training`` record (config hash, epochs, best validation loss, ...).
    """
    recipe = {**DEFAULT_RECIPE, **(recipe or {})}
    if threads:
        torch.set_num_threads(int(threads))
    ckpt_dir = Path(checkpoint_dir)
    fingerprint = config_hash({"recipe": recipe, "seed": seed, "patches_sha256": file_sha256(patches_path)})
    stamp = ckpt_dir / "config_hash.txt"
    last = ckpt_dir / "last.ckpt"
    if ckpt_dir.exists() and (not stamp.exists() or stamp.read_text().strip() != fingerprint):
        log.info("discarding checkpoints of another recipe or training set in %s", ckpt_dir)
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")
    resume = last if last.exists() else None

    cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    deterministic = recipe["deterministic"]
    if deterministic and cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        deterministic = "warn"  # nearest-upsampling backward has no deterministic CUDA kernel
    L.seed_everything(seed, workers=True, verbose=False)

    precision, why = choose_precision(recipe["precision"], "cuda" if cuda else "cpu")
    if str(recipe["precision"]) not in ("auto", precision):
        log.warning("precision %s: %s", recipe["precision"], why)
    arch = architecture(recipe["architecture"])
    data = PatchDataModule(
        patches_path,
        batch_size=recipe["batch_size"],
        steps_per_epoch=recipe["steps_per_epoch"],
        validation_fraction=recipe["validation_fraction"],
        seed=seed,
        upsample_inputs=arch.input_upsampled,
    )
    module = DeepSTORMModule(
        architecture=recipe["architecture"],
        upsampling_factor=int(data.meta["upsampling_factor"]),
        learning_rate=recipe["learning_rate"],
        lr_factor=recipe["lr_factor"],
        lr_patience=recipe["lr_patience"],
        min_lr=recipe["min_lr"],
        mse_weight=recipe["mse_weight"],
        l1_weight=recipe["l1_weight"],
        channels_last=recipe["channels_last"],
        max_loss_ratio=recipe["max_loss_ratio"],
        network={"bn_momentum": recipe["bn_momentum"]},
    )
    history = History(log_every=max(recipe["steps_per_epoch"] // 4, 1))
    best = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    callbacks = [history, best]
    if recipe["ema_decay"] > 0:  # validation, checkpoints and the model file then hold the averaged weights
        # every step, one fused lerp over all tensors (the demo's 4,800 steps: 6.4 s an epoch instead of 5.2)
        callbacks.insert(0, WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(float(recipe["ema_decay"]))))
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=recipe["epochs"],
        deterministic=deterministic,
        callbacks=callbacks,
        logger=False,
        default_root_dir=ckpt_dir,
        enable_progress_bar=os.isatty(2),
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    log.info(
        "%s: %d training + %d validation patches of %d px, U=%d, normalisation mean %.5f std %.5f; "
        "architecture %s (%d weights); %d epochs × %d steps × %d patches on %s, %d threads, precision %s (%s)",
        label, len(data.train_index), len(data.val_index), data.meta["patch_size_px"], data.meta["upsampling_factor"],
        data.mean, data.std, recipe["architecture"], module.net.conv_weight_count(), recipe["epochs"],
        recipe["steps_per_epoch"], recipe["batch_size"], trainer.strategy.root_device, torch.get_num_threads(),
        trainer.precision, why,
    )  # fmt: skip
    if resume:
        log.info("resuming from %s", resume)
    else:  # epoch 0: the untrained network, the baseline that training must beat
        (initial,) = trainer.validate(module, datamodule=data, verbose=False)
        history.rows.append(
            {"epoch": 0, "train_loss": math.nan, "val_loss": initial["val_loss"], "learning_rate": math.nan, "seconds": 0.0}
        )
        log.info("epoch 0 (untrained): val_loss %.5g", initial["val_loss"])
    # our own checkpoints (written by this function, never shared), hence weights_only=False
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=False)
    if resume:
        log.info("resumed run finished at epoch %d", trainer.current_epoch)

    best_state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    net_state = {k.removeprefix("net."): v for k, v in best_state.items() if k.startswith("net.")}
    module.net.load_state_dict(net_state)
    calibration = calibrate_threshold(module.net, data, criterion=recipe["threshold_criterion"], precision=precision)
    log.info(
        "%s: detection threshold %.3g × weighting factor maximises the %s on the %s (Jaccard %.3f: recall %.3f, "
        "precision %.3f; RMSE %s nm, efficiency %s; %d emitters in %d, %g nm tolerance)",
        label, calibration["threshold"], calibration["criterion"], calibration["source"], calibration["jaccard"],
        calibration["recall"], calibration["precision"], *(f"{calibration[k]:.1f}" if calibration[k] is not None else "–"
                                                           for k in ("rmse_nm", "efficiency_pct")),
        calibration["n_emitters"], calibration["n_frames"], calibration["tolerance_nm"],
    )  # fmt: skip
    if calibration.get("precision_curve") is not None:
        curve = calibration["precision_curve"]
        log.info("%s: the network's precision on %d isolated emitters of the %s, per Mortensen bound (uncertainty "
                 "[nm]): %s", label, calibration["precision_emitters"], calibration["precision_source"],
                 ", ".join(f"{b:.3g} → {p:.3g} nm" for b, p in zip(curve["bound_nm"], curve["precision_nm"])))  # fmt: skip
    training = {
        "config_hash": fingerprint,
        "recipe": recipe,
        "seed": seed,
        "label": label,
        "patches": str(patches_path),
        "epochs": history.rows[-1]["epoch"],
        "best_val_loss": float(best.best_model_score),
        "initial_val_loss": history.rows[0]["val_loss"],
        "zero_prediction_val_loss": data.zero_prediction_loss(recipe["mse_weight"]),
        "dataset": data.meta.get("dataset"),
        "density_per_um2": data.meta.get("density_per_um2"),
    }
    save_model(
        model_path,
        module.net.to("cpu"),
        module.hparams.architecture,
        upsampling_factor=int(data.meta["upsampling_factor"]),
        normalization={"mean": data.mean, "std": data.std},
        weighting_factor=float(data.meta["weighting_factor"]),
        heatmap_sigma_px=float(data.meta["heatmap_sigma_px"]),
        pixel_size_nm=float(data.meta["pixel_size_nm"]),
        patch_size_px=int(data.meta["patch_size_px"]),
        calibration=calibration,
        training=training,
    )
    write_history(history.rows, history_csv, history_png, title=label, zero_loss=training["zero_prediction_val_loss"])
    log.info(
        "%s: best validation loss %.5g (untrained %.5g, all-zero prediction %.5g); model written to %s",
        label, training["best_val_loss"], training["initial_val_loss"], training["zero_prediction_val_loss"], model_path,
    )  # fmt: skip
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return training
