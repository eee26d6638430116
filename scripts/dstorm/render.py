"""Images for people: float ImageJ TIFFs with their pixel size, PNG previews with a scale bar, and
localisations rendered as Gaussian spots."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from dstorm.io import atomic_output, write_stack

__all__ = ["write_image", "save_preview", "render_localizations", "drift_figure"]


def write_image(path, image: np.ndarray, pixel_size_nm: float) -> None:
    """A 2-D float32 ImageJ TIFF whose resolution tags give ``pixel_size_nm`` (as µm)."""
    image = np.asarray(image, dtype=np.float32)
    write_stack(path, image, shape=image.shape, dtype=np.float32, pixel_size_nm=pixel_size_nm)


def _scale_bar_nm(width_nm: float) -> float:
    """A round length near a fifth of the image width."""
    target = width_nm / 5
    exponent = 10 ** np.floor(np.log10(target))
    return float(max(m * exponent for m in (1, 2, 5) if m * exponent <= target) if target >= exponent else exponent)


def save_preview(path, image: np.ndarray, pixel_size_nm: float, title: str = "", cmap: str = "magma") -> None:
    """PNG preview: contrast from the 0.1–99.9th percentiles, a scale bar with its length, a title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    image = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(image, [0.1, 99.9]) if image.size else (0.0, 1.0)
    h, w = image.shape
    fig, ax = plt.subplots(figsize=(6, 6 * h / w + 0.4), layout="constrained")
    ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    bar_nm = _scale_bar_nm(w * pixel_size_nm)
    bar_px = bar_nm / pixel_size_nm
    ax.add_patch(Rectangle((w * 0.95 - bar_px, h * 0.95 - h * 0.012), bar_px, h * 0.012, color="white"))
    label = f"{bar_nm / 1000:g} µm" if bar_nm >= 1000 else f"{bar_nm:g} nm"
    ax.text(w * 0.95 - bar_px / 2, h * 0.93, label, color="white", ha="center", va="bottom", fontsize=11)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", metadata={"Software": None})
    plt.close(fig)


def render_localizations(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    *,
    fov_nm: tuple[float, float],
    pixel_size_nm: float,
    sigma_nm: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Localisations as Gaussian spots of ``sigma_nm`` on a grid of ``pixel_size_nm`` covering ``fov_nm``
    (height, width): a 2-D histogram (pixel ``j`` covers ``[j, j+1)·pixel``) blurred by the Gaussian, so
    each localisation contributes its weight (1 by default) in total."""
    h, w = (max(int(np.ceil(side / pixel_size_nm - 1e-6)), 1) for side in fov_nm)  # 6400/12.5 is 512, not 513
    hist, _, _ = np.histogram2d(
        np.asarray(y_nm, dtype=np.float64), np.asarray(x_nm, dtype=np.float64),
        bins=(h, w), range=((0, h * pixel_size_nm), (0, w * pixel_size_nm)), weights=weights,
    )  # fmt: skip
    return gaussian_filter(hist, sigma_nm / pixel_size_nm, mode="constant") if sigma_nm > 0 else hist


def drift_figure(path, drift, title: str = "", truth=None) -> None:
    """drift.png: the per-frame trajectory of a :class:`dstorm.drift.Drift`, its segment estimates, and
    the true drift (dx, dy) where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.arange(1, drift.n_frames + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, d, s, name, k in zip(axes[:1].tolist() * 2, (drift.dx_nm, drift.dy_nm),
                                 (drift.segment_dx_nm, drift.segment_dy_nm), ("x", "y"), (0, 1)):  # fmt: skip
        ax.plot(frames, d, color=f"C{k}", label=f"{name} (estimate)")
        if len(s):
            ax.plot(drift.segment_centres, s, "o", ms=3, color=f"C{k}")
        if truth is not None:
            ax.plot(frames, truth[k], "--", color=f"C{k}", alpha=0.7, label=f"{name} (truth)")
    axes[0].set(xlabel="frame", ylabel="drift, nm", title=f"{title} drift ({drift.method})".strip())
    axes[0].legend(fontsize=8)
    axes[1].plot(drift.dx_nm, drift.dy_nm, color="k", lw=1)
    axes[1].plot(drift.dx_nm[:1], drift.dy_nm[:1], "o", color="g", label="frame 1")
    axes[1].plot(drift.dx_nm[-1:], drift.dy_nm[-1:], "s", color="r", label="last frame")
    axes[1].set(xlabel="x, nm", ylabel="y, nm", title="trajectory", aspect="equal")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
