"""Spots in raw frames: detection, isolation and integrated-Gaussian fits (scipy least squares).

Coordinates follow the rest of the project: pixel column ``j`` covers ``[j, j + 1)``. Intensities stay in
the file's units (ADU) here; :mod:`dstorm.estimation.conditions` converts them with the camera estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.special import erf

__all__ = ["Candidates", "spot_maxima", "top_hat", "otsu_threshold", "isolated", "cut_windows", "fit_spots", "SpotFits", "integrated_gaussian"]

_SQRT2 = np.sqrt(2.0)


@dataclass
class Candidates:
    """Local maxima: 0-based ``frame``, integer pixel ``row``/``col`` and their top-hat ``score`` (file units)."""

    frame: np.ndarray
    row: np.ndarray
    col: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, mask) -> "Candidates":
        return Candidates(self.frame[mask], self.row[mask], self.col[mask], self.score[mask])


def top_hat(frame: np.ndarray, *, sigma_px: float = 1.0, size_px: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed frame, white top-hat): a Gaussian of ``sigma_px``, minus its grey opening by a ``size_px``
    square (the background under anything narrower). Unlike a difference of Gaussians, this does not push
    a spot below zero where bright neighbours surround it."""
    smooth = ndimage.gaussian_filter(np.asarray(frame, dtype=np.float64), sigma_px)
    return smooth, smooth - ndimage.grey_opening(smooth, size=(size_px, size_px))


def spot_maxima(frames: np.ndarray, *, sigma_px: float = 1.0) -> tuple[Candidates, np.ndarray]:
    """Every local maximum (3 × 3) of the smoothed frames with a positive top-hat (``score``, in the file's
    units), and the top-hat images."""
    out = {k: [] for k in ("frame", "row", "col", "score")}
    hats = np.empty(np.shape(frames))
    for f, frame in enumerate(frames):
        smooth, hat = top_hat(frame, sigma_px=sigma_px)
        hats[f] = hat
        rows, cols = np.nonzero((smooth == ndimage.maximum_filter(smooth, size=3)) & (hat > 0))
        out["frame"].append(np.full(len(rows), f))
        out["row"].append(rows)
        out["col"].append(cols)
        out["score"].append(hat[rows, cols])
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
    return Candidates(cat["frame"].astype(np.int64), cat["row"].astype(np.int64), cat["col"].astype(np.int64), cat["score"]), hats


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``log(values)``: the split between noise maxima and spots.

    A threshold in units of a robust noise estimate (median absolute deviation of the filtered frame) fails
    at high density, where the frame is mostly signal; the two populations of maxima stay apart."""
    logs = np.log(values[values > 0])
    hist, edges = np.histogram(logs, bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    return float(np.exp(centres[np.nanargmax(between)]))


def isolated(candidates: Candidates, others: Candidates, *, radius_px: float, shape: tuple[int, int], margin_px: int) -> np.ndarray:
    """Mask of candidates with no other detection of ``others`` within ``radius_px`` in the same frame, and
    at least ``margin_px`` from the frame's edges."""
    h, w = shape
    keep = (
        (candidates.row >= margin_px) & (candidates.row < h - margin_px)
        & (candidates.col >= margin_px) & (candidates.col < w - margin_px)
    )  # fmt: skip
    # one KD-tree over (frame, row, col) with frames far apart: neighbours are then always in the same frame
    spread = 10.0 * (h + w + radius_px)
    pts = np.column_stack([others.frame * spread, others.row, others.col]).astype(np.float64)
    qry = np.column_stack([candidates.frame * spread, candidates.row, candidates.col]).astype(np.float64)
    if len(pts):
        counts = np.array([len(n) for n in cKDTree(pts).query_ball_point(qry, radius_px)])
        keep &= counts <= 1  # the candidate itself is among ``others``
    return keep


def cut_windows(frames: np.ndarray, candidates: Candidates, half: int) -> np.ndarray:
    """``(N, 2·half+1, 2·half+1)`` windows centred on the candidates' pixels (they must lie inside)."""
    offsets = np.arange(-half, half + 1)
    rows = candidates.row[:, None, None] + offsets[None, :, None]
    cols = candidates.col[:, None, None] + offsets[None, None, :]
    return frames[candidates.frame[:, None, None], rows, cols].astype(np.float64)


def integrated_gaussian(x0: float, y0: float, sigma: float, size: int) -> np.ndarray:
    """Fractions of a unit Gaussian at ``(x0, y0)`` in each pixel of a ``size × size`` window (the exact erf
    form of the simulator's PSF): the fit's own model for one spot."""
    model, _ = _model_and_jacobian(np.array([[x0, y0, sigma, 1.0, 0.0]]), size)
    return model.reshape(size, size)


@dataclass
class SpotFits:
    """Per window: position in the window (px), sigma (px), amplitude (total signal) and background per
    pixel (data units), model images, reduced chi-square and success."""

    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    amplitude: np.ndarray
    background: np.ndarray
    model: np.ndarray
    chi2: np.ndarray
    ok: np.ndarray

    def params(self) -> np.ndarray:
        return np.column_stack([self.x, self.y, self.sigma, self.amplitude, self.background])


def _model_and_jacobian(p: np.ndarray, size: int):
    """Batched model ``A·f + B`` (N, P) and Jacobian (N, 5, P) for parameters ``p`` (N, 5)."""
    edges = np.arange(size + 1, dtype=np.float64)[None, :]
    s = p[:, 2:3] * _SQRT2
    ex = (edges - p[:, 0:1]) / s
    ey = (edges - p[:, 1:2]) / s
    fx, fy = 0.5 * np.diff(erf(ex), axis=1), 0.5 * np.diff(erf(ey), axis=1)
    gx, gy = np.exp(-(ex**2)) / np.sqrt(np.pi), np.exp(-(ey**2)) / np.sqrt(np.pi)
    dfx_dx, dfy_dy = -np.diff(gx, axis=1) / s, -np.diff(gy, axis=1) / s
    dfx_ds = -np.diff(gx * ex, axis=1) / p[:, 2:3]
    dfy_ds = -np.diff(gy * ey, axis=1) / p[:, 2:3]
    n = len(p)
    f = (fy[:, :, None] * fx[:, None, :]).reshape(n, -1)
    a = p[:, 3:4]
    jac = np.stack(
        [
            a * (fy[:, :, None] * dfx_dx[:, None, :]).reshape(n, -1),
            a * (dfy_dy[:, :, None] * fx[:, None, :]).reshape(n, -1),
            a * (dfy_ds[:, :, None] * fx[:, None, :] + fy[:, :, None] * dfx_ds[:, None, :]).reshape(n, -1),
            f,
            np.ones_like(f),
        ],
        axis=1,
    )
    return a * f + p[:, 4:5], jac


def fit_spots(
    windows: np.ndarray,
    *,
    sigma0: float = 1.0,
    sigma_bounds: tuple[float, float] = (0.3, 5.0),
    weights: np.ndarray | None = None,
    start: np.ndarray | None = None,
    iterations: int = 60,
) -> SpotFits:
    """Fit ``amplitude · integrated Gaussian + background`` to every window at once (batched
    Levenberg–Marquardt; scipy's ``least_squares`` fits one window per call, far too slowly for thousands).

    ``weights`` (N, size, size), inverse variances, make it weighted least squares. A fit fails (``ok`` False) if it leaves the
    central ±1.5 px, hits a sigma bound or has a non-positive amplitude.
    """
    n, size, _ = windows.shape
    data = windows.reshape(n, -1).astype(np.float64)
    w = np.ones_like(data) if weights is None else np.asarray(weights, dtype=np.float64).reshape(n, -1)
    if start is None:
        b0 = np.percentile(data, 20, axis=1)
        a0 = np.maximum(data.sum(axis=1) - b0 * size * size, 1e-3 * np.maximum(np.abs(b0), 1.0))
        start = np.column_stack([np.full(n, size / 2), np.full(n, size / 2), np.full(n, sigma0), a0, b0])
    p = np.array(start, dtype=np.float64)
    lo = np.array([size / 2 - 2.5, size / 2 - 2.5, sigma_bounds[0], 0.0, -np.inf])
    hi = np.array([size / 2 + 2.5, size / 2 + 2.5, sigma_bounds[1], np.inf, np.inf])
    lam = np.full(n, 1e-2)
    model, jac = _model_and_jacobian(p, size)
    cost = np.sum(w * (data - model) ** 2, axis=1)
    eye = np.eye(5)
    active = np.arange(n)  # the fits still moving: one whose step is below 1e-6 of every parameter is done
    for _ in range(iterations):
        jac_a, w_a, data_a, lam_a = jac[active], w[active], data[active], lam[active]
        # (batched matrix products: numpy's einsum would loop without BLAS, 7× slower here)
        jw = jac_a * w_a[:, None, :]
        jtj = jw @ jac_a.transpose(0, 2, 1)
        grad = (jw @ (data_a - model[active])[:, :, None])[:, :, 0]
        damp = jtj + lam_a[:, None, None] * np.diagonal(jtj, axis1=1, axis2=2)[:, :, None] * eye
        step = np.linalg.solve(damp + 1e-12 * eye, grad[:, :, None])[:, :, 0]
        trial = np.clip(p[active] + step, lo, hi)
        t_model, t_jac = _model_and_jacobian(trial, size)
        t_cost = np.sum(w_a * (data_a - t_model) ** 2, axis=1)
        better = t_cost < cost[active]
        moved = active[better]
        p[moved], model[moved], jac[moved], cost[moved] = trial[better], t_model[better], t_jac[better], t_cost[better]
        lam[active] = np.where(better, lam_a / 3, lam_a * 4)
        active = active[~np.all(np.abs(step) < 1e-6 * (np.abs(p[active]) + 1e-3), axis=1)]
        if not len(active):
            break
    chi2 = cost / (size * size - 5)
    ok = (
        (np.abs(p[:, 0] - size / 2) < 1.5) & (np.abs(p[:, 1] - size / 2) < 1.5)
        & (p[:, 2] > sigma_bounds[0] * 1.01) & (p[:, 2] < sigma_bounds[1] * 0.99) & (p[:, 3] > 0)
    )  # fmt: skip
    return SpotFits(
        x=p[:, 0], y=p[:, 1], sigma=p[:, 2], amplitude=p[:, 3], background=p[:, 4], model=model,
        chi2=chi2, ok=ok,
    )  # fmt: skip
