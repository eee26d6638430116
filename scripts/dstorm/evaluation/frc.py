"""Fourier ring correlation (Nieuwenhuizen et al., Nat. Methods 2013): the resolution of a localisation
table without ground truth.

The localisations are split into two halves by time blocks (blocks of consecutive frames, half of them
drawn at random), each half is rendered as a histogram, and per ring of spatial frequency q

    FRC(q) = |Σ F1 F2*| / sqrt(Σ |F1|² Σ |F2|²);

the resolution is 1/q where the curve, smoothed over a few rings, first falls below 1/7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal.windows import tukey

from dstorm.render import render_localizations

__all__ = ["FRC_THRESHOLD", "FRCResult", "frc_curve", "frc_resolution", "time_block_halves", "localization_frc"]

FRC_THRESHOLD = 1.0 / 7.0


@dataclass
class FRCResult:
    """The curve (one value per ring, ring k at spatial frequency ``q_per_nm[k]``) and the resolution."""

    q_per_nm: np.ndarray
    frc: np.ndarray
    frc_smoothed: np.ndarray
    resolution_nm: float


def _square(image: np.ndarray, side: int) -> np.ndarray:
    out = np.zeros((side, side), dtype=np.float64)
    out[: image.shape[0], : image.shape[1]] = image
    return out


def frc_curve(image1: np.ndarray, image2: np.ndarray, pixel_size_nm: float, *, window: bool = True):
    """``(q_per_nm, frc)`` of two renderings on the same grid; rings 0 … N/2 − 1 of a square N×N grid
    (a rectangular image is zero-padded to a square), ring k at q = k / (N·pixel). A Tukey window (α = 1/4)
    tapers the edges so that the image border does not correlate. Rings without power give NaN."""
    a = np.asarray(image1, dtype=np.float64)
    b = np.asarray(image2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"FRC needs two 2-D images of one shape, got {a.shape} and {b.shape}")
    if window:
        taper = np.outer(tukey(a.shape[0], 0.25), tukey(a.shape[1], 0.25))
        a, b = a * taper, b * taper
    n = max(a.shape)
    f1, f2 = np.fft.fft2(_square(a, n)), np.fft.fft2(_square(b, n))
    k = np.fft.fftfreq(n) * n
    ring = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(np.int64).ravel()
    n_rings = n // 2
    keep = ring < n_rings
    sums = lambda x: np.bincount(ring[keep], weights=x.ravel()[keep], minlength=n_rings)  # noqa: E731
    num = sums(np.real(f1 * np.conj(f2)))
    den = np.sqrt(sums(np.abs(f1) ** 2) * sums(np.abs(f2) ** 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = np.where(den > 0, np.abs(num) / den, np.nan)
    return np.arange(n_rings) / (n * pixel_size_nm), frc


def frc_resolution(q_per_nm: np.ndarray, frc: np.ndarray, threshold: float = FRC_THRESHOLD, smooth_rings: int = 3):
    """``(resolution_nm, smoothed_curve)``: 1/q at the first crossing of ``threshold`` (linear interpolation
    between rings, ring 0 skipped) by the curve smoothed with a moving average over ``smooth_rings``.
    NaN when the curve starts below the threshold (no correlation) or never falls below it (the
    rendering pixel, not the data, limits the resolution: render finer)."""
    frc = np.asarray(frc, dtype=np.float64)
    smoothed = uniform_filter1d(np.nan_to_num(frc, nan=0.0), smooth_rings, mode="nearest") if smooth_rings > 1 else frc
    if len(frc) < 3 or smoothed[1] < threshold:
        return float("nan"), smoothed
    below = np.nonzero(smoothed[1:] < threshold)[0]
    if len(below) == 0:
        return float("nan"), smoothed
    k = below[0] + 1
    f0, f1 = smoothed[k - 1], smoothed[k]
    q = q_per_nm[k - 1] + (f0 - threshold) / (f0 - f1) * (q_per_nm[k] - q_per_nm[k - 1])
    return float(1.0 / q), smoothed


def time_block_halves(frames: np.ndarray, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the first half: the frame range is cut into ``n_blocks`` blocks of consecutive frames
    and a random half of the blocks (the rest of an odd count goes to the second half) is chosen."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return np.zeros(0, dtype=bool)
    first, last = int(frames.min()), int(frames.max())
    n_blocks = max(2, min(int(n_blocks), last - first + 1))
    edges = np.linspace(first, last + 1, n_blocks + 1)
    block = np.clip(np.searchsorted(edges, frames, side="right") - 1, 0, n_blocks - 1)
    chosen = np.zeros(n_blocks, dtype=bool)
    chosen[rng.permutation(n_blocks)[: n_blocks // 2]] = True
    return chosen[block]


def localization_frc(
    frames: np.ndarray,
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    *,
    fov_nm: tuple[float, float],
    pixel_size_nm: float,
    n_blocks: int,
    rng: np.random.Generator,
    smooth_rings: int = 3,
) -> FRCResult:
    """FRC of a localisation table: split by :func:`time_block_halves`, render both halves as histograms of
    ``pixel_size_nm`` over ``fov_nm`` (height, width), correlate."""
    half = time_block_halves(frames, n_blocks, rng)
    x_nm, y_nm = np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64)
    render = lambda m: render_localizations(x_nm[m], y_nm[m], fov_nm=fov_nm, pixel_size_nm=pixel_size_nm, sigma_nm=0)  # noqa: E731
    q, frc = frc_curve(render(half), render(~half), pixel_size_nm)
    resolution, smoothed = frc_resolution(q, frc, smooth_rings=smooth_rings)
    return FRCResult(q_per_nm=q, frc=frc, frc_smoothed=smoothed, resolution_nm=resolution)
