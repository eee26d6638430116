"""Diagnostic figures of the estimate: the photon-transfer fit, and the spots behind σ and photons."""

from __future__ import annotations

import numpy as np

from dstorm.estimation.conditions import Estimates
from dstorm.evaluation.figures import _pyplot, _save

__all__ = ["photon_transfer_figure", "spots_figure"]


def photon_transfer_figure(est: Estimates, path) -> None:
    """The noise's variance against the mean (binned over every pixel position, see
    :func:`~dstorm.estimation.conditions.noise_line`), the fitted line, the background samples' point and
    the offset."""
    plt = _pyplot()
    fits, q, v = est.diagnostics["fits"], est.diagnostics["quality"], est.values
    curve = fits["noise_curve"]
    k, b = q["photon_transfer_slope"], q["photon_transfer_intercept"]
    k1, k2, _ = q["background_cumulants_adu"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(curve[:, 0], curve[:, 1], "o", ms=4, label="high-pass noise of all pixels (binned)")
    if np.isfinite(k2):
        ax.plot([k1], [k2], "s", color="tab:green", ms=7, label=f"background samples ({q['background_samples']})")
    low = v["offset_adu"] if np.isfinite(v["offset_adu"]) else curve[0, 0]
    xs = np.linspace(min(curve[0, 0], low), curve[-1, 0], 50)
    ax.plot(xs, k * xs + b, "r-", label=f"variance = {k:.3g}·mean {b:+.4g}")
    if np.isfinite(v["offset_adu"]):
        ax.axvline(v["offset_adu"], color="grey", ls="--", label=f"offset {v['offset_adu']:.1f} ADU")
    ax.set_xlabel("mean [ADU]")
    ax.set_ylabel("variance [ADU²]")
    ax.set_title(f"Photon transfer: {v['camera_model']}, {v['gain_adu_per_e']:.3g} ADU/e⁻, "
                 f"read noise {v['read_noise_adu']:.2g} ADU", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def spots_figure(est: Estimates, path, *, pixel_size_nm: float, gallery: int = 24) -> None:
    """Histograms of the fitted σ and photons, and a gallery of the spots used (data above, fit below)."""
    plt = _pyplot()
    fits, v = est.diagnostics["fits"], est.values
    fig = plt.figure(figsize=(9, 6.5))
    grid = fig.add_gridspec(3, 2, height_ratios=[1.4, 0.55, 0.55])
    ax = fig.add_subplot(grid[0, 0])
    ax.hist(fits["sigma_px"] * pixel_size_nm, bins=40, color="tab:blue")
    ax.axvline(v["psf_sigma_nm"], color="k", ls="--", label=f"median {v['psf_sigma_nm']:.1f} nm")
    ax.set_xlabel("PSF σ [nm]")
    ax.set_ylabel("spots")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[0, 1])
    ax.hist(fits["photons_e"] / max(est.diagnostics["quality"].get("quantum_efficiency", 1.0), 1e-9), bins=40, color="tab:orange")
    ax.axvline(v["photons_median"], color="k", ls="--", label=f"median {v['photons_median']:.0f}")
    ax.set_xlabel("photons per spot")
    ax.legend(fontsize=8)
    windows, model = fits["windows"], fits["model"]
    n = min(gallery // 2, len(windows))
    pick = np.linspace(0, len(windows) - 1, n).astype(int) if n else []
    inner = grid[1:, :].subgridspec(2, max(n, 1), wspace=0.05, hspace=0.05)
    for i, j in enumerate(pick):
        lo, hi = float(windows[j].min()), float(windows[j].max())
        for row, image in enumerate((windows[j], model[j])):
            a = fig.add_subplot(inner[row, i])
            a.imshow(image, cmap="magma", vmin=lo, vmax=hi)
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_ylabel("data" if row == 0 else "fit", fontsize=8)
    fig.suptitle(f"{len(windows)} isolated spots fitted (integrated Gaussian, weighted least squares)", fontsize=10)
    _save(fig, path)
