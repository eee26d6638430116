"""The coordinate convention, in one place, and the Deep-STORM heatmap built from positions.

Convention (ThunderSTORM, EPFL challenges, the Deep-STORM reference):
- camera pixel ``j`` covers ``[j, j + 1)`` in pixel units, i.e. ``[j·p, (j+1)·p)`` nm, centre ``(j + 0.5)·p``;
- with upsampling factor ``U``, high-resolution pixel ``k`` covers ``[k/U, (k+1)/U)`` camera pixels, so an
  emitter at ``x`` (camera pixels) lands in high-resolution pixel ``floor(x·U)``, and high-resolution
  pixel ``k`` maps back to ``(k + 0.5)/U`` camera pixels;
- ``x`` runs along columns (the last array axis), ``y`` along rows; frames are numbered from 1 in files.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve

__all__ = ["hr_index", "hr_center_px", "gaussian_kernel", "heatmap"]


def hr_index(pos_px, upsampling_factor: int) -> np.ndarray:
    """High-resolution pixel index of a position in camera pixels."""
    return np.floor(np.asarray(pos_px, dtype=np.float64) * upsampling_factor).astype(np.int64)


def hr_center_px(index, upsampling_factor: int) -> np.ndarray:
    """Centre of high-resolution pixel ``index`` (may be fractional, e.g. a centre of mass) in camera pixels."""
    return (np.asarray(index, dtype=np.float64) + 0.5) / upsampling_factor


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """Normalised 2-D Gaussian kernel (sum 1), ``size`` odd; default ``2·ceil(3σ) + 1`` (7 for σ = 1)."""
    if size is None:
        size = 2 * int(np.ceil(3 * sigma)) + 1
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def heatmap(
    xy_px: np.ndarray,
    shape_px: tuple[int, int],
    *,
    upsampling_factor: int,
    sigma_hr_px: float = 1.0,
    weighting_factor: float = 100.0,
) -> np.ndarray:
    """Training target of one patch: spikes at the emitters' high-resolution pixels (set to 1, not
    accumulated), blurred by the normalised Gaussian kernel, times ``weighting_factor``.

    ``xy_px`` are ``(x, y)`` positions in camera pixels relative to the patch's corner; emitters just
    outside the patch still contribute their Gaussian tails. Returns ``(H·U, W·U)`` float32.
    """
    kernel = gaussian_kernel(sigma_hr_px)
    r = kernel.shape[0] // 2
    h, w = shape_px[0] * upsampling_factor, shape_px[1] * upsampling_factor
    spikes = np.zeros((h + 2 * r, w + 2 * r))
    xy = np.asarray(xy_px, dtype=np.float64).reshape(-1, 2)
    cols = hr_index(xy[:, 0], upsampling_factor) + r
    rows = hr_index(xy[:, 1], upsampling_factor) + r
    ok = (cols >= 0) & (cols < w + 2 * r) & (rows >= 0) & (rows < h + 2 * r)
    spikes[rows[ok], cols[ok]] = 1.0
    blurred = convolve(spikes, kernel, mode="constant")
    return (weighting_factor * blurred[r : r + h, r : r + w]).astype(np.float32)
