"""Photons, background and lateral precision of each localisation, from the raw frame and the camera.

At a localisation the frame is converted to photons with the dataset's camera
(:func:`photons_per_adu`, :func:`dstorm.cameras.mean_offset_adu`) and a model ``N·g + b`` is fitted by
linear least squares in a window of ``2r + 1`` pixels around it: ``g`` is the integrated Gaussian PSF of the
dataset's σ at the localisation (the simulator's PSF, :mod:`dstorm.simulation.psf`), so the fit has two
unknowns, the photons ``N`` and the background ``b`` (photons per pixel). The position and σ are not fitted:
the network gives the position, the dataset the σ (ThunderSTORM's ``sigma [nm]`` column holds that σ).

The precision is Mortensen et al.'s (Nat. Methods 2010) for a Gaussian PSF:
``σ_a² = σ² + a²/12``, ``τ = 2π σ_a² b / (N a²)``, ``var = σ_a²/N · (1 + 4τ + √(2τ / (1 + 4τ)))`` (the
maximum-likelihood bound), with the EMCCD's excess-noise factor F = 2 applied as ``N → N/F, b → b/F``.
The network does not reach it, and not by one factor: two to three times the bound for bright emitters,
about the bound, or below it, for the dimmest (the network does not place a faint spot anywhere in its window, as
the bound's ideal fitter of a known-to-exist emitter may). Training therefore measures the network's error
on isolated emitters of frames that look like the acquisitions as a function of the bound
(:func:`fit_precision`); ``uncertainty [nm]`` is that curve at each localisation's bound
(:func:`precision_function`). Checked against the truth on data from two simulators in
scripts/benchmarks/photometry.py.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from dstorm.cameras import EXCESS_NOISE, adu_per_electron, mean_offset_adu

__all__ = ["photons_per_adu", "fit_photons", "mortensen_precision", "window_radius", "dataset_photometry", "isolated",
           "fit_precision", "precision_function", "ISOLATION_NM", "PRECISION_DENSITY", "PRECISION_MIN_EMITTERS"]

#: Isolated emitters (no other within this distance in their frame) measure the network's precision; fewer
#: than PRECISION_MIN_EMITTERS of them leave it unknown. 1 µm: with neighbours nearer, their PSF tails
#: raise the background fitted in the window (±⌈2.5 σ⌉ px) and so the bound of the emitter, which made the
#: calibration predict 10–30 % less than the error of truly isolated dim emitters (scripts/benchmarks/photometry.py).
ISOLATION_NM = 1000.0
PRECISION_MIN_EMITTERS = 30
#: Density (/µm²) of the frames simulated to measure it (``training_set.precision_frames``): 39 % of the
#: emitters there are isolated (exp(−0.3 π 1²)).
PRECISION_DENSITY = 0.3


def dataset_photometry(dataset: dict) -> tuple[dict | None, float | None]:
    """The camera section and the PSF σ (nm; the middle of the ``psf.sigma_nm`` range) the photons of a
    dataset's localisations are fitted with (a resolved dataset config, estimates applied); ``(None, None)``
    for a dataset that names no camera (one reconstructed with a given model file): no photons then."""
    camera = dataset.get("camera") or {}
    if "model" not in camera or "psf" not in dataset:
        return None, None
    low, high = dataset["psf"]["sigma_nm"]
    return camera, (float(low) + float(high)) / 2


def isolated(frame: np.ndarray, xy_nm: np.ndarray, radius_nm: float) -> np.ndarray:
    """Which emitters have no other within ``radius_nm`` in their frame (the ones whose precision is an
    isolated emitter's)."""
    from scipy.spatial import cKDTree

    frame = np.asarray(frame)
    nearest = np.full(len(frame), np.inf)
    for f in np.unique(frame):
        idx = np.flatnonzero(frame == f)
        if len(idx) > 1:
            nearest[idx] = cKDTree(xy_nm[idx]).query(xy_nm[idx], k=2)[0][:, 1]
    return nearest > radius_nm


def photons_per_adu(camera: dict) -> float:
    """Photons per ADU above the offset: ``1 / (ADU per photo-electron × quantum efficiency)``."""
    return 1.0 / (adu_per_electron(camera) * float(camera.get("quantum_efficiency", 1.0)))


def window_radius(sigma_px: float) -> int:
    """Half side of the fit window: 2.5 σ, at least 2 pixels."""
    return max(2, int(np.ceil(2.5 * sigma_px)))


def fit_photons(frames_adu: np.ndarray, index: np.ndarray, x_px: np.ndarray, y_px: np.ndarray, *, camera: dict,
                sigma_px: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Photons and background (photons per pixel) of the localisations ``(index, x_px, y_px)`` of a batch of
    raw frames ``(B, H, W)`` in ADU; positions in camera pixels, pixel ``j`` covering ``[j, j + 1)``."""
    n = len(index)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    b, h, w = frames_adu.shape
    r = window_radius(sigma_px)
    k = np.arange(-r, r + 1)
    ci, cj = np.floor(y_px).astype(np.int64), np.floor(x_px).astype(np.int64)
    rows, cols = ci[:, None] + k, cj[:, None] + k  # (n, 2r+1)
    ok_r, ok_c = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    s = np.sqrt(2.0) * sigma_px
    gy = 0.5 * (erf((rows + 1 - y_px[:, None]) / s) - erf((rows - y_px[:, None]) / s)) * ok_r
    gx = 0.5 * (erf((cols + 1 - x_px[:, None]) / s) - erf((cols - x_px[:, None]) / s)) * ok_c
    g = gy[:, :, None] * gx[:, None, :]  # (n, 2r+1, 2r+1)
    mask = (ok_r[:, :, None] & ok_c[:, None, :]).astype(np.float64)
    pix = frames_adu[index[:, None, None], np.clip(rows, 0, h - 1)[:, :, None], np.clip(cols, 0, w - 1)[:, None, :]]
    p = (pix.astype(np.float64) - mean_offset_adu(camera)) * photons_per_adu(camera) * mask
    # least squares of p = N g + b over the pixels inside the frame: the 2 × 2 normal equations
    s_gg, s_g, s_1 = (g * g).sum((1, 2)), g.sum((1, 2)), mask.sum((1, 2))
    s_pg, s_p = (p * g).sum((1, 2)), p.sum((1, 2))
    det = s_gg * s_1 - s_g**2
    det = np.where(det > 0, det, np.inf)
    photons = (s_pg * s_1 - s_g * s_p) / det
    background = (s_gg * s_p - s_g * s_pg) / det
    return photons, background


def mortensen_precision(photons, background, *, sigma_nm: float, pixel_nm: float, camera_model: str = "scmos") -> np.ndarray:
    """Lateral precision per axis (nm) of Gaussian-PSF localisations (maximum-likelihood bound, see the
    module's docstring); NaN where the photons are not positive."""
    f = EXCESS_NOISE.get(camera_model, (1.0, 1.0))[0]
    n = np.asarray(photons, dtype=np.float64) / f
    bg = np.clip(np.asarray(background, dtype=np.float64), 0.0, None) / f
    sa2 = sigma_nm**2 + pixel_nm**2 / 12.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = 2 * np.pi * sa2 * bg / (n * pixel_nm**2)
        var = sa2 / n * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau)))
    return np.where(n > 0, np.sqrt(var), np.nan)


#: Bins of the precision curve at most (each of at least PRECISION_MIN_EMITTERS emitters).
PRECISION_BINS = 8


def fit_precision(bound: np.ndarray, error_nm: np.ndarray) -> dict:
    """The network's precision as a function of Mortensen's bound, from emitters with ``bound`` (n,) and
    localisation errors ``error_nm`` (n, 2) against the truth: the curve of :func:`precision_function`.

    The emitters are split into up to :data:`PRECISION_BINS` bins of equal count by their bound; in each,
    the precision per axis is √(mean e²) with ``e² = (ex² + ey²) / 2`` (every matched emitter: the network's
    errors are heavy-tailed, and a trimmed mean would understate the RMS error that users meet), and the
    precisions are made non-decreasing in the bound (isotonic regression weighted by count). ``bound_nm``:
    each bin's RMS bound (where the bin's mean e² lies if e² grows as the bound squared); ``precision_nm``:
    its precision."""
    from scipy.optimize import isotonic_regression

    bound = np.asarray(bound, dtype=np.float64)
    e2 = (np.asarray(error_nm, dtype=np.float64) ** 2).mean(axis=1)
    n_bins = max(1, min(PRECISION_BINS, len(bound) // PRECISION_MIN_EMITTERS))
    order = np.argsort(bound, kind="stable")
    parts = np.array_split(order, n_bins)
    knots = [float(np.sqrt(np.mean(bound[p] ** 2))) for p in parts]
    mse = [float(e2[p].mean()) for p in parts]
    counts = [len(p) for p in parts]
    mse = isotonic_regression(np.array(mse), weights=np.array(counts, dtype=np.float64)).x
    return {"bound_nm": knots, "precision_nm": [float(np.sqrt(m)) for m in mse]}


def precision_function(calibration: dict | None):
    """``bound (nm) -> the network's precision (nm)`` from a model file's ``calibration``: its
    ``precision_curve`` (:func:`fit_precision`) interpolated linearly in log precision against log bound, and
    beyond its ends continued with its end segments' slopes clipped to [0, 1] (the precision grows at most
    in proportion to the bound); the bound itself for model files without one. NaN where the bound is."""
    cal = calibration or {}
    curve = cal.get("precision_curve")
    if not curve:
        return lambda bound: np.asarray(bound, dtype=np.float64)
    x = np.log(np.asarray(curve["bound_nm"], dtype=np.float64))
    y = np.log(np.asarray(curve["precision_nm"], dtype=np.float64))
    if len(x) > 1:
        ends = [float(np.clip((y[k + 1] - y[k]) / (x[k + 1] - x[k]), 0.0, 1.0)) if x[k + 1] > x[k] else 1.0
                for k in (0, len(x) - 2)]
    else:
        ends = [1.0, 1.0]

    def precision(bound):
        bound = np.asarray(bound, dtype=np.float64)
        ok = np.isfinite(bound) & (bound > 0)
        lb = np.log(np.where(ok, bound, 1.0))
        out = np.interp(lb, x, y)
        out = np.where(lb < x[0], y[0] + ends[0] * (lb - x[0]), out)
        out = np.where(lb > x[-1], y[-1] + ends[1] * (lb - x[-1]), out)
        return np.where(ok, np.exp(out), np.nan)

    return precision
