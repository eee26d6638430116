"""Camera noise models: expected photons per pixel -> digital counts (ADU), as uint16.

Both models follow DECODE's and the SMLM challenge's conventions. Output is
``floor(electrons / e_per_adu + baseline)`` clipped to ``[0, 2**bit_depth - 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tifffile

from dstorm.errors import InputError

__all__ = ["EMCCD", "SCMOS", "camera_from_config"]


def _to_adu(electrons: np.ndarray, e_per_adu: float, baseline: np.ndarray | float, bit_depth: int) -> np.ndarray:
    adu = np.floor(electrons / e_per_adu + baseline)
    return np.clip(adu, 0, 2**bit_depth - 1).astype(np.uint16)


@dataclass(frozen=True, kw_only=True)
class EMCCD:
    """Electron-multiplying CCD.

    electrons = Gamma(shape=Poisson(photons · qe + spurious_charge_e), scale=em_gain) + N(0, read_noise_e);
    with ``em_gain == 1`` the Gamma stage is skipped (a conventional CCD). The EM stage doubles the
    shot-noise variance (excess-noise factor 2).
    """

    quantum_efficiency: float
    read_noise_e: float
    spurious_charge_e: float
    em_gain: float
    e_per_adu: float
    baseline_adu: float
    bit_depth: int = 16

    def __call__(self, photons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        electrons = rng.poisson(photons * self.quantum_efficiency + self.spurious_charge_e).astype(np.float64)
        if self.em_gain > 1:
            electrons = rng.gamma(electrons, self.em_gain)
        if self.read_noise_e > 0:
            electrons += rng.normal(0.0, self.read_noise_e, size=electrons.shape)
        return _to_adu(electrons, self.e_per_adu, self.baseline_adu, self.bit_depth)

    def mean_electrons(self, photons):
        """Mean photo-electrons (before gain) for an expected photon count."""
        return np.asarray(photons) * self.quantum_efficiency + self.spurious_charge_e

    def theory_mean_variance(self, photons):
        """(mean, variance) of the ADU output before clipping, including the floor's -0.5 and 1/12."""
        mu = self.mean_electrons(photons)
        g = self.em_gain
        excess = 2.0 if g > 1 else 1.0
        mean = mu * g / self.e_per_adu + self.baseline_adu - 0.5
        var = (excess * mu * g**2 + self.read_noise_e**2) / self.e_per_adu**2 + 1.0 / 12.0
        return mean, var


@dataclass(frozen=True, kw_only=True)
class SCMOS:
    """Scientific CMOS: electrons = Poisson(photons · qe) + N(0, read noise per pixel).

    ``read_noise_map`` (electrons rms) and ``offset_map`` (ADU), when given, are frame-sized per-pixel
    arrays that replace ``read_noise_e`` and ``baseline_adu``.
    """

    quantum_efficiency: float
    read_noise_e: float
    e_per_adu: float
    baseline_adu: float
    bit_depth: int = 16
    read_noise_map: np.ndarray | None = field(default=None, repr=False)
    offset_map: np.ndarray | None = field(default=None, repr=False)

    @property
    def read_noise(self):
        return self.read_noise_e if self.read_noise_map is None else self.read_noise_map

    @property
    def baseline(self):
        return self.baseline_adu if self.offset_map is None else self.offset_map

    def __call__(self, photons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        electrons = rng.poisson(photons * self.quantum_efficiency).astype(np.float64)
        if self.read_noise_map is not None or self.read_noise_e > 0:
            electrons += rng.normal(0.0, 1.0, size=electrons.shape) * self.read_noise
        return _to_adu(electrons, self.e_per_adu, self.baseline, self.bit_depth)

    def theory_mean_variance(self, photons):
        """(mean, variance) of the ADU output before clipping, for a read-noise-dominated floor.

        With no read noise and ``e_per_adu == 1`` the output is the integer electron count: mean and
        variance are exactly ``qe · photons`` plus the baseline (if integer).
        """
        mu = np.asarray(photons) * self.quantum_efficiency
        rn = np.asarray(self.read_noise)
        if np.all(rn == 0) and self.e_per_adu == 1:
            return mu + np.floor(self.baseline), mu
        mean = mu / self.e_per_adu + self.baseline - 0.5
        var = (mu + rn**2) / self.e_per_adu**2 + 1.0 / 12.0
        return mean, var


def _read_map(path: str | None, shape: tuple[int, int], key: str) -> np.ndarray | None:
    if not path:
        return None
    try:
        data = tifffile.imread(path).astype(np.float64)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file gets the same clear message
        raise InputError(f"camera.{key}: cannot read TIFF {path}: {exc}") from None
    if data.shape != tuple(shape):
        raise InputError(f"camera.{key}: {path} has shape {data.shape}, expected the frame size {tuple(shape)}")
    if not np.all(np.isfinite(data)) or np.any(data < 0):
        raise InputError(f"camera.{key}: {path} must hold finite values >= 0")
    return data


def camera_from_config(camera: dict, frame_shape: tuple[int, int]) -> EMCCD | SCMOS:
    """Build a camera from a resolved camera config (see :func:`dstorm.config.resolve_camera`)."""
    common = dict(
        quantum_efficiency=float(camera["quantum_efficiency"]),
        read_noise_e=float(camera["read_noise_e"]),
        e_per_adu=float(camera["e_per_adu"]),
        baseline_adu=float(camera["baseline_adu"]),
        bit_depth=int(camera["bit_depth"]),
    )
    if camera["model"] == "emccd":
        return EMCCD(
            **common,
            spurious_charge_e=float(camera["spurious_charge_e"]),
            em_gain=float(camera["em_gain"]),
        )
    return SCMOS(
        **common,
        read_noise_map=_read_map(camera.get("read_noise_map"), frame_shape, "read_noise_map"),
        offset_map=_read_map(camera.get("offset_map"), frame_shape, "offset_map"),
    )
