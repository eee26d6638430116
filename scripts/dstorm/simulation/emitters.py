"""Where emitters are (structures), when they are on (blinking) and how bright (photons).

Positions are in nm in the sample plane, ``x`` along columns and ``y`` along rows, with the field of view
``[0, width_nm) × [0, height_nm)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from dstorm.errors import InputError

__all__ = [
    "UniformStructure",
    "FilamentStructure",
    "TableStructure",
    "structure_from_config",
    "sample_photons",
    "EmitterEvents",
    "sample_events",
    "sample_events_continuous",
    "blink_periods",
    "frames_touched_per_molecule",
    "background_field",
]


class UniformStructure:
    """Emitters anywhere in the field of view, uniformly."""

    def __init__(self, fov_nm: tuple[float, float]):
        self.fov_nm = fov_nm  # (height, width)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        h, w = self.fov_nm
        return np.column_stack([rng.uniform(0, w, n), rng.uniform(0, h, n)])


class FilamentStructure:
    """Random smooth curves (worm-like chains), microtubule-like; emitters uniformly along their length.

    Each curve starts at a uniform point of the field of view with a uniform direction and takes steps of
    ``step_nm`` whose direction changes by N(0, step/persistence) radians. Emitters sit on the curve
    (uniform in arc length, restricted to the field of view) plus an isotropic N(0, width_nm) offset.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        fov_nm: tuple[float, float],
        n_filaments: int,
        length_nm: float,
        persistence_length_nm: float,
        width_nm: float,
        step_nm: float = 10.0,
    ):
        h, w = fov_nm
        self.fov_nm = fov_nm
        self.width_nm = float(width_nm)
        n_steps = max(int(np.ceil(length_nm / step_nm)), 1)
        start = np.column_stack([rng.uniform(0, w, n_filaments), rng.uniform(0, h, n_filaments)])
        theta0 = rng.uniform(0, 2 * np.pi, n_filaments)
        dtheta = rng.normal(0.0, np.sqrt(step_nm / persistence_length_nm), (n_filaments, n_steps))
        theta = theta0[:, None] + np.cumsum(dtheta, axis=1)
        steps = step_nm * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        # the start point sits in the middle of the curve, so filaments cross the field
        path = np.cumsum(steps, axis=1)
        path -= path[:, n_steps // 2 : n_steps // 2 + 1]
        points = (path + start[:, None, :]).reshape(-1, 2)
        inside = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
        self.points = points[inside]
        if len(self.points) == 0:  # every curve left the field: fall back to its start points
            self.points = start
        self.step_nm = step_nm

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        idx = rng.integers(0, len(self.points), n)
        xy = self.points[idx] + rng.normal(0.0, self.width_nm, (n, 2)) if self.width_nm > 0 else self.points[idx]
        h, w = self.fov_nm
        # keep positions in the field: the offset can push an emitter just outside
        xy[:, 0] = np.clip(xy[:, 0], 0, np.nextafter(w, 0))
        xy[:, 1] = np.clip(xy[:, 1], 0, np.nextafter(h, 0))
        return xy


class TableStructure:
    """Positions drawn with replacement from a ground-truth table (those inside the field of view)."""

    def __init__(self, xy_nm: np.ndarray, fov_nm: tuple[float, float], source: str = "table"):
        h, w = fov_nm
        xy = np.asarray(xy_nm, dtype=np.float64)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        if not inside.any():
            raise InputError(f"{source}: no position lies inside the field of view {w:g} × {h:g} nm")
        self.xy = xy[inside]

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.xy[rng.integers(0, len(self.xy), n)]


def structure_from_config(structure: dict, fov_nm: tuple[float, float], rng: np.random.Generator):
    """Build the structure of one simulated stack (filaments draw their geometry from ``rng``)."""
    kind = structure["type"]
    if kind == "uniform":
        return UniformStructure(fov_nm)
    if kind == "filaments":
        return FilamentStructure(
            rng,
            fov_nm=fov_nm,
            n_filaments=structure["n_filaments"],
            length_nm=structure["filament_length_nm"],
            persistence_length_nm=structure["persistence_length_nm"],
            width_nm=structure["width_nm"],
        )
    if kind == "table":
        from dstorm.io import read_localizations  # local import: io imports pandas

        table = read_localizations(structure["path"])
        return TableStructure(table[["x [nm]", "y [nm]"]].to_numpy(), fov_nm, source=str(structure["path"]))
    raise ValueError(f"structure.type: unknown structure {kind!r}")


def sample_photons(rng: np.random.Generator, photons: dict, n: int) -> np.ndarray:
    """Photons of ``n`` emitter-frames from the configured distribution (all >= 1)."""
    kind = photons["distribution"]
    if kind == "uniform":
        values = rng.uniform(photons["low"], photons["high"], n)
    elif kind == "normal":
        values = rng.normal(photons["mean"], photons["std"], n)
    elif kind == "lognormal":
        m, s = float(photons["mean"]), float(photons["std"])
        sigma2 = np.log1p((s / m) ** 2)
        values = rng.lognormal(np.log(m) - sigma2 / 2, np.sqrt(sigma2), n)
    else:
        raise ValueError(f"photophysics.photons.distribution: unknown distribution {kind!r}")
    return np.maximum(values, 1.0)


@dataclass
class EmitterEvents:
    """One row per (emitter, frame) in which the emitter is on; frames are 0-based here."""

    frame: np.ndarray
    emitter: np.ndarray
    x_nm: np.ndarray
    y_nm: np.ndarray
    photons: np.ndarray
    sigma_nm: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, mask) -> "EmitterEvents":
        return EmitterEvents(**{k: v[mask] for k, v in self.__dict__.items()})


def sample_events(
    rng: np.random.Generator,
    *,
    n_frames: int,
    density_per_um2: float,
    fov_nm: tuple[float, float],
    mean_on_frames: float,
    structure,
    psf,
    photons: dict,
) -> EmitterEvents:
    """Blinking emitters with a stationary mean of ``density × area`` emitters on in each frame.

    Emitters switch on at a Poisson rate per frame and stay on for ``K = ceil(T)`` consecutive frames,
    ``T ~ Exponential(mean_on_frames)``, i.e. ``K`` is geometric with ``p = 1 - exp(-1/mean_on_frames)``
    and mean ``1/p``. The activation rate ``density × area × p`` makes the mean number on per frame equal
    to ``density × area``. Activations start ``ceil(30/p)`` frames before the first frame, so the first
    frames are as dense as the rest. Each emitter has one position and one PSF width; its photons are
    drawn anew in every frame it is on.
    """
    area_um2 = fov_nm[0] * fov_nm[1] / 1e6
    p_off = -np.expm1(-1.0 / mean_on_frames)  # p = 1 - exp(-1/tau)
    burn = int(np.ceil(30.0 / p_off))
    rate = density_per_um2 * area_um2 * p_off
    n_emitters = rng.poisson(rate * (n_frames + burn))
    start = rng.integers(-burn, n_frames, n_emitters)
    length = rng.geometric(p_off, n_emitters)
    first = np.maximum(start, 0)
    last = np.minimum(start + length, n_frames)  # exclusive
    keep = last > first
    first, last = first[keep], last[keep]
    n_kept = int(keep.sum())
    xy = structure.sample(rng, n_kept)
    sigma = psf.sample_sigma_nm(rng, n_kept)
    counts = last - first
    emitter = np.repeat(np.arange(n_kept), counts)
    offset_in_run = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    frame = first[emitter] + offset_in_run
    order = np.lexsort((emitter, frame))
    emitter, frame = emitter[order], frame[order]
    return EmitterEvents(
        frame=frame.astype(np.int64),
        emitter=emitter.astype(np.int64),
        x_nm=xy[emitter, 0],
        y_nm=xy[emitter, 1],
        photons=sample_photons(rng, photons, len(frame)),
        sigma_nm=sigma[emitter],
    )


def frames_touched_per_molecule(mean_on_frames: float, mean_off_frames: float, mean_blinks: float) -> float:
    """E[number of frames in which one molecule is on for some part of the exposure], continuous-time model.

    A molecule has ``k`` on-periods (geometric, mean ``n = mean_blinks``), each ``Exponential(τ_on)`` long,
    separated by ``Exponential(τ_off)`` off-periods, and is activated at a uniformly random time, so every
    switching time has a uniform phase within its frame. An interval of length ``T`` at a uniform phase
    touches ``1 + T`` frames on average; two consecutive periods share a frame (counted twice) when the
    off-period between them ends in the frame where it began, with probability
    ``E[max(0, 1 − S)] = 1 − τ_off (1 − e^(−1/τ_off))``. Hence
    ``F = n (1 + τ_on) − (n − 1) (1 − τ_off (1 − e^(−1/τ_off)))``, and an activation rate of
    ``density × area / F`` per frame holds the mean density of emitters on (for any part of a frame)."""
    n, t_on, t_off = float(mean_blinks), float(mean_on_frames), float(mean_off_frames)
    same_frame = 1.0 - t_off * -np.expm1(-1.0 / t_off)
    return n * (1.0 + t_on) - (n - 1.0) * same_frame


def blink_periods(rng: np.random.Generator, start: np.ndarray, mean_on: float, mean_off: float, mean_blinks: float):
    """The on-periods of molecules activated at times ``start`` (frames): ``(molecule, begin, end)``, in
    order of molecule then time. Each molecule has a geometric number of periods (mean ``mean_blinks``),
    ``Exponential(mean_on)`` long, separated by ``Exponential(mean_off)`` off-periods."""
    n_mol = len(start)
    blinks = rng.geometric(1.0 / mean_blinks, n_mol) if mean_blinks > 1 else np.ones(n_mol, dtype=np.int64)
    mol = np.repeat(np.arange(n_mol), blinks)
    on = rng.exponential(mean_on, len(mol))
    off = rng.exponential(mean_off, len(mol))
    step = on + off  # a period starts after the (on + off) of the molecule's earlier periods
    before = np.cumsum(step) - step
    first_of_mol = np.cumsum(blinks) - blinks
    begin = start[mol] + before - before[first_of_mol[mol]]
    return mol, begin, begin + on


def sample_events_continuous(
    rng: np.random.Generator,
    *,
    n_frames: int,
    density_per_um2: float,
    fov_nm: tuple[float, float],
    mean_on_frames: float,
    mean_off_frames: float,
    mean_blinks: float,
    structure,
    psf,
    photons: dict,
) -> EmitterEvents:
    """Molecules that blink in continuous time at fixed positions (see :func:`frames_touched_per_molecule`).

    Molecules are activated at a Poisson rate, uniformly in time from a burn-in before the first frame (so
    the first frames are as dense as the rest) to the end; each blinks ``k`` times (geometric, mean
    ``mean_blinks``) and then bleaches. An emitter-frame is a (molecule, frame) pair in which the molecule is
    on for some part of the exposure; its photons are ``P × t``, ``t`` the fraction of the frame it was on
    and ``P`` drawn from ``photons`` (the photons of a whole frame on, drawn anew for each emitter-frame).
    Repeated blinks of a molecule keep its position and PSF width; ``emitter`` numbers the molecules.
    """
    area_um2 = fov_nm[0] * fov_nm[1] / 1e6
    t_on, t_off, n_b = float(mean_on_frames), float(mean_off_frames), float(mean_blinks)
    rate = density_per_um2 * area_um2 / frames_touched_per_molecule(t_on, t_off, n_b)
    burn = int(np.ceil(10.0 * n_b * (t_on + t_off) + 10.0 * t_on)) + 1
    n_mol = rng.poisson(rate * (n_frames + burn))
    mol, begin, end = blink_periods(rng, rng.uniform(-burn, n_frames, n_mol), t_on, t_off, n_b)
    visible = (end > 0) & (begin < n_frames)
    mol, begin, end = mol[visible], begin[visible], end[visible]
    # split each period into the frames it touches, with its on-time in each
    f0 = np.floor(begin).astype(np.int64)
    f1 = np.ceil(end).astype(np.int64)  # exclusive
    counts = f1 - f0
    period = np.repeat(np.arange(len(mol)), counts)
    frame = f0[period] + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    on_time = np.minimum(end[period], frame + 1.0) - np.maximum(begin[period], frame)
    inside = (frame >= 0) & (frame < n_frames) & (on_time > 0)
    frame, on_time, molecule = frame[inside], on_time[inside], mol[period[inside]]
    # two blinks of one molecule within one frame are one emitter-frame
    key = molecule * np.int64(n_frames) + frame
    unique, index = np.unique(key, return_inverse=True)
    on_time = np.bincount(index, weights=on_time, minlength=len(unique))
    molecule, frame = unique // n_frames, unique % n_frames
    # positions and widths of the molecules seen, in order of first appearance
    seen, molecule = np.unique(molecule, return_inverse=True)
    xy = structure.sample(rng, len(seen))
    sigma = psf.sample_sigma_nm(rng, len(seen))
    order = np.lexsort((molecule, frame))
    molecule, frame, on_time = molecule[order], frame[order], np.minimum(on_time[order], 1.0)
    full = sample_photons(rng, photons, len(frame))
    return EmitterEvents(
        frame=frame.astype(np.int64),
        emitter=molecule.astype(np.int64),
        x_nm=xy[molecule, 0],
        y_nm=xy[molecule, 1],
        photons=full * on_time,
        sigma_nm=sigma[molecule],
    )


def background_field(
    rng: np.random.Generator, shape: tuple[int, int], *, photons_per_px: float, variation: float, length_scale_px: float
) -> np.ndarray:
    """Background photons per pixel: ``b0 · (1 + variation · f)``, ``f`` a smooth zero-mean field in [-1, 1].

    ``f`` is white noise blurred by a Gaussian of ``length_scale_px`` (periodic edges), centred and scaled
    by its largest absolute value. With ``variation == 0`` the field is uniform and no random number is
    drawn.
    """
    if variation == 0 or photons_per_px == 0:
        return np.full(shape, float(photons_per_px))
    noise = gaussian_filter(rng.normal(size=shape), length_scale_px, mode="wrap")
    noise -= noise.mean()
    noise /= np.max(np.abs(noise))
    return photons_per_px * (1.0 + variation * noise)
