"""Figures of the evaluation (matplotlib, Agg): image comparison with a zoom, FRC curve, localisation QC with
error histograms, the paper's density benchmark and the training curves of a dataset's models."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from dstorm.io import atomic_output

__all__ = ["comparison_figure", "frc_figure", "localizations_figure", "benchmark_figure", "training_figure", "zoom_box"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    _pyplot().close(fig)


def _limits(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [0.1, 99.9]) if image.size else (0.0, 1.0)
    return float(lo), float(hi if hi > lo else lo + 1)


def zoom_box(image: np.ndarray, fraction: float = 0.25) -> tuple[int, int, int]:
    """``(row, col, side)`` of the square of ``fraction`` of the shorter side holding the most signal."""
    side = max(int(min(image.shape) * fraction), 1)
    density = uniform_filter(np.asarray(image, dtype=np.float64), side, mode="constant")
    r, c = np.unravel_index(np.argmax(density), density.shape)
    r = int(np.clip(r - side // 2, 0, image.shape[0] - side))
    c = int(np.clip(c - side // 2, 0, image.shape[1] - side))
    return r, c, side


def comparison_figure(path, panels: list[tuple[str, np.ndarray, float]], *, title: str = "") -> None:
    """Images side by side on one physical scale, each ``(label, image, pixel_nm)``, with a second row that
    zooms into the brightest quarter of the second panel (the reconstruction); axes in µm."""
    plt = _pyplot()
    n = len(panels)
    ref_label, ref, ref_px = panels[1] if n > 1 else panels[0]
    r, c, side = zoom_box(ref)
    y0, x0, size = r * ref_px / 1000, c * ref_px / 1000, side * ref_px / 1000
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 7.4), layout="constrained", squeeze=False)
    for k, (label, image, px) in enumerate(panels):
        h, w = image.shape
        extent = (0, w * px / 1000, h * px / 1000, 0)
        cmap = "gray" if "widefield" in label.lower() else "magma"
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(image, cmap=cmap, extent=extent, vmin=_limits(image)[0], vmax=_limits(image)[1], interpolation="nearest")
        top.set_title(label, fontsize=10)
        top.set_xlabel("x [µm]")
        rows = slice(int(y0 * 1000 / px), int(np.ceil((y0 + size) * 1000 / px)))
        cols = slice(int(x0 * 1000 / px), int(np.ceil((x0 + size) * 1000 / px)))
        crop = image[rows, cols]
        vmin, vmax = _limits(crop)
        bottom.imshow(image, cmap=cmap, extent=extent, vmin=vmin, vmax=vmax, interpolation="nearest")
        bottom.set_xlim(x0, x0 + size)
        bottom.set_ylim(y0 + size, y0)
        bottom.set_title(f"zoom: {size * 1000:.0f} nm square", fontsize=9)
        bottom.set_xlabel("x [µm]")
        top.indicate_inset_zoom(bottom, edgecolor="white", alpha=0.9)
    axes[0, 0].set_ylabel("y [µm]")
    axes[1, 0].set_ylabel("y [µm]")
    if title:
        fig.suptitle(title, fontsize=11)
    _save(fig, path)


def frc_figure(path, q_per_nm, frc, smoothed, resolution_nm: float, threshold: float, *, title: str = "") -> None:
    """The FRC curve (raw and smoothed) against spatial frequency, the threshold and the resolution."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    q_um = np.asarray(q_per_nm) * 1000
    ax.plot(q_um[1:], np.asarray(frc)[1:], color="0.6", lw=1, label="FRC")
    ax.plot(q_um[1:], np.asarray(smoothed)[1:], color="C0", lw=2, label="smoothed")
    ax.axhline(threshold, color="C3", ls="--", lw=1, label=f"threshold 1/{1 / threshold:.0f}")
    if np.isfinite(resolution_nm):
        ax.axvline(1000 / resolution_nm, color="C2", lw=1, label=f"resolution {resolution_nm:.1f} nm")
    ax.set_xlabel("spatial frequency q [1/µm]")
    ax.set_ylabel("Fourier ring correlation")
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlim(0, q_um[-1] if len(q_um) else 1)
    ax.legend(fontsize=8)
    ax.set_title(title or "Fourier ring correlation", fontsize=10)
    _save(fig, path)


def localizations_figure(
    path, loc_frames: np.ndarray, confidence: np.ndarray | None, n_frames: int, *, gt_frames: np.ndarray | None = None,
    errors: np.ndarray | None = None, metrics: dict | None = None, tolerance_nm: float = 250.0, title: str = "",
) -> None:
    """Localisation QC: localisations per frame over time (and ground-truth emitters per frame), the
    confidence histogram, and with a ground truth the x/y and lateral error histograms of matched pairs."""
    plt = _pyplot()
    with_gt = errors is not None
    fig, axes = plt.subplots(1, 4 if with_gt else 2, figsize=(16 if with_gt else 8.5, 3.8), layout="constrained")
    frames = np.arange(1, n_frames + 1)
    per_frame = np.bincount(np.asarray(loc_frames, dtype=np.int64), minlength=n_frames + 1)[1 : n_frames + 1]
    axes[0].plot(frames, per_frame, lw=1, label="localisations")
    if gt_frames is not None:
        truth = np.bincount(np.asarray(gt_frames, dtype=np.int64), minlength=n_frames + 1)[1 : n_frames + 1]
        axes[0].plot(frames, truth, lw=1, color="C1", label="ground truth")
    axes[0].set_xlabel("frame")
    axes[0].set_ylabel("per frame")
    axes[0].legend(fontsize=8)
    if confidence is not None and len(confidence):
        axes[1].hist(confidence, bins=60, color="C4")
    axes[1].set_xlabel("confidence [a.u.]")
    axes[1].set_ylabel("localisations")
    if with_gt:
        dx_nm, dy_nm = errors[:, 0], errors[:, 1]
        bins = np.linspace(-tolerance_nm, tolerance_nm, 81)
        axes[2].hist(dx_nm, bins=bins, histtype="step", lw=1.5, label=f"x: bias {metrics['bias_x_nm']:.1f} nm")
        axes[2].hist(dy_nm, bins=bins, histtype="step", lw=1.5, label=f"y: bias {metrics['bias_y_nm']:.1f} nm")
        axes[2].set_xlabel("localisation − ground truth [nm]")
        axes[2].set_ylabel("matched localisations")
        axes[2].legend(fontsize=8)
        axes[3].hist(np.hypot(dx_nm, dy_nm), bins=np.linspace(0, tolerance_nm, 51), color="C2")
        axes[3].axvline(metrics["rmse_lat_nm"], color="k", ls="--", lw=1, label=f"RMSE {metrics['rmse_lat_nm']:.1f} nm")
        axes[3].set_xlabel("lateral error [nm]")
        axes[3].legend(fontsize=8)
        title = (title + ": " if title else "") + (
            f"{metrics['tp']} matched within {tolerance_nm:g} nm, Jaccard {metrics['jaccard']:.3f}"
        )
    else:
        title = (title + ": " if title else "") + f"{len(loc_frames)} localisations (no ground truth)"
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


#: (column, axis label) of the benchmark panels.
BENCHMARK_PANELS = (
    ("jaccard", "Jaccard index"),
    ("rmse_lat_nm", "lateral RMSE [nm]"),
    ("efficiency_pct", "efficiency [%]"),
    ("pearson_r", "image correlation r"),
)


def benchmark_figure(path, table, *, title: str = "") -> None:
    """The paper's benchmark: each metric against the emitter density of the test acquisitions, one curve
    per model. ``table`` (pandas) has ``model``, ``density_per_um2`` and the metric columns."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(BENCHMARK_PANELS), figsize=(4 * len(BENCHMARK_PANELS), 3.8), layout="constrained")
    for model, rows in table.groupby("model", sort=True):
        rows = rows.sort_values("density_per_um2")
        for ax, (column, label) in zip(axes, BENCHMARK_PANELS):
            ax.plot(rows["density_per_um2"], rows[column], marker="o", label=str(model))
    for ax, (column, label) in zip(axes, BENCHMARK_PANELS):
        ax.set_xlabel("emitter density [1/µm² per frame]")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(title="model", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    _save(fig, path)


def training_figure(path, histories: dict[str, "object"], *, title: str = "") -> None:
    """Validation (solid) and training (dashed) loss per epoch of each model, relative to its untrained
    (epoch 0) validation loss so that models of different densities share one axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    for k, (label, h) in enumerate(sorted(histories.items())):
        ref = float(h["val_loss"].iloc[0])
        ax.plot(h["epoch"], h["val_loss"] / ref, color=f"C{k}", marker="o", ms=3, label=f"{label} validation")
        ax.plot(h["epoch"], h["train_loss"] / ref, color=f"C{k}", ls="--", label=f"{label} training")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / untrained validation loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "training curves", fontsize=10)
    _save(fig, path)
