"""Point-spread functions: expected photons per camera pixel for emitters at sub-pixel positions.

Coordinates are in camera pixels with the ThunderSTORM/EPFL convention: pixel column ``j`` covers
``[j, j + 1)``, so its centre is ``j + 0.5``; likewise rows and ``y``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy.special import erf

__all__ = ["PSF", "IntegratedGaussianPSF"]


class PSF(ABC):
    """Interface of a PSF model. A measured PSF (e.g. an interpolated bead stack) implements the same two
    methods and plugs into :func:`dstorm.simulation.simulate.simulate_stack` unchanged."""

    @abstractmethod
    def sample_sigma_nm(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Per-emitter width (nm) reported in the ground truth; draws from ``rng`` if the model varies."""

    @abstractmethod
    def render(
        self,
        n_frames: int,
        shape: tuple[int, int],
        frame: np.ndarray,
        x_px: np.ndarray,
        y_px: np.ndarray,
        photons: np.ndarray,
        sigma_px: np.ndarray,
    ) -> np.ndarray:
        """Expected photons, array ``(n_frames, H, W)`` float64, from emitters in 0-based ``frame``."""


class IntegratedGaussianPSF(PSF):
    """Gaussian PSF integrated exactly over each pixel (the erf form), cut off in a square window.

    The expected photons of an emitter with ``N`` photons at ``(x, y)`` in pixel ``[i, i+1) × [j, j+1)``
    are ``N/4 · (erf((i+1-x)/(√2 s)) - erf((i-x)/(√2 s))) · (same in y)``. Only pixels whose index differs
    from the emitter's pixel by at most ``ceil(cutoff_sigma · s)`` in both axes receive photons.

    Parameters
    ----------
    sigma_nm : (low, high)
        Each emitter's sigma is drawn uniformly from this range, nm.
    pixel_size_nm : float
        Camera pixel size, nm.
    cutoff_sigma : float
        Half-width of the rendering window in units of sigma.
    """

    def __init__(self, *, sigma_nm: tuple[float, float], pixel_size_nm: float, cutoff_sigma: float = 4.0):
        self.sigma_nm = (float(sigma_nm[0]), float(sigma_nm[1]))
        self.pixel_size_nm = float(pixel_size_nm)
        self.cutoff_sigma = float(cutoff_sigma)

    @classmethod
    def from_config(cls, psf: dict, pixel_size_nm: float) -> "IntegratedGaussianPSF":
        return cls(sigma_nm=psf["sigma_nm"], pixel_size_nm=pixel_size_nm, cutoff_sigma=psf["cutoff_sigma"])

    def sample_sigma_nm(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lo, hi = self.sigma_nm
        return rng.uniform(lo, hi, size=n)

    def half_width_px(self, sigma_px: np.ndarray) -> np.ndarray:
        """Half-width of each emitter's window in pixels."""
        return np.ceil(self.cutoff_sigma * np.asarray(sigma_px)).astype(np.int64)

    def pixel_fractions(self, pos_px: np.ndarray, sigma_px: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Fraction of each emitter's photons in pixels ``floor(pos) + offsets`` along one axis, ``(E, K)``."""
        pos = np.asarray(pos_px, dtype=np.float64)[:, None]
        left = np.floor(pos) + offsets[None, :]
        edges = np.concatenate([left, left[:, -1:] + 1.0], axis=1)
        cdf = erf((edges - pos) / (np.sqrt(2.0) * np.asarray(sigma_px, dtype=np.float64)[:, None]))
        frac = 0.5 * np.diff(cdf, axis=1)
        frac[np.abs(offsets)[None, :] > self.half_width_px(sigma_px)[:, None]] = 0.0
        return frac

    def render(self, n_frames, shape, frame, x_px, y_px, photons, sigma_px):
        h, w = shape
        if len(x_px) == 0:
            return np.zeros((n_frames, h, w))
        k = int(self.half_width_px(np.max(sigma_px)))
        offsets = np.arange(-k, k + 1)
        fx = self.pixel_fractions(x_px, sigma_px, offsets)  # (E, K)
        fy = self.pixel_fractions(y_px, sigma_px, offsets) * np.asarray(photons, dtype=np.float64)[:, None]
        # Render into frames padded by 2k on each side, so that the window of every emitter whose pixel is
        # within k of the frame fits without masking; the others cannot reach the frame. Then crop.
        pad = 2 * k
        hp, wp = h + 2 * pad, w + 2 * pad
        col0 = np.floor(x_px).astype(np.int64)
        row0 = np.floor(y_px).astype(np.int64)
        near = (col0 >= -k) & (col0 < w + k) & (row0 >= -k) & (row0 < h + k)
        frame = np.asarray(frame, dtype=np.int64)
        if not near.all():
            fx, fy, col0, row0, frame = fx[near], fy[near], col0[near], row0[near], frame[near]
        window = offsets[:, None] * wp + offsets[None, :]  # (K, K) flat offsets
        centre = (frame * hp + row0 + pad) * wp + col0 + pad
        index = centre[:, None, None] + window[None]
        values = fy[:, :, None] * fx[:, None, :]
        image = np.bincount(index.ravel(), weights=values.ravel(), minlength=n_frames * hp * wp)
        return image.reshape(n_frames, hp, wp)[:, pad : pad + h, pad : pad + w]
