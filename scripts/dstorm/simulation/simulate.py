"""Simulate stacks (frames + ground truth) and training sets (+ patches) for one dataset.

All randomness of one output comes from ``SeedSequence(dataset seed, key of the output)``, split into
independent streams for the emitters, the background, the camera noise and the patch positions, so the
same config gives bit-identical files.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dstorm.architectures import common_frame_multiple
from dstorm.config import seed_sequence_entropy
from dstorm.errors import InputError
from dstorm.io import save_arrays, write_localizations, write_stack
from dstorm.photometry import PRECISION_DENSITY
from dstorm.simulation.camera import camera_from_config
from dstorm.simulation.emitters import (
    EmitterEvents,
    background_field,
    sample_events,
    sample_events_continuous,
    structure_from_config,
)
from dstorm.simulation.patches import PATCH_FORMAT_VERSION, PatchSampler
from dstorm.simulation.psf import IntegratedGaussianPSF

__all__ = ["Simulator", "simulate_training_set", "simulate_acquisition", "drift_trajectory", "CHUNK_FRAMES"]

log = logging.getLogger(__name__)

#: Frames rendered at once. Fixed (not configurable) because the noise streams are drawn chunk by chunk.
CHUNK_FRAMES = 64


@dataclass
class Simulation:
    events: EmitterEvents
    background: np.ndarray  # photons per pixel, (H, W)
    ground_truth: pd.DataFrame


class Simulator:
    """The imaging model of one dataset: PSF, camera, structure, photophysics and background."""

    def __init__(self, dataset: dict):
        self.cfg = dataset
        self.pixel_size_nm = float(dataset["pixel_size_nm"])
        self.shape = tuple(int(v) for v in dataset["frame_size_px"])
        self.fov_nm = (self.shape[0] * self.pixel_size_nm, self.shape[1] * self.pixel_size_nm)
        self.psf = IntegratedGaussianPSF.from_config(dataset["psf"], self.pixel_size_nm)
        self.camera = camera_from_config(dataset["camera"], self.shape)

    def streams(self, *key: str) -> dict[str, np.random.Generator]:
        entropy, spawn_key = seed_sequence_entropy(self.cfg["seed"], *key)
        # the fifth stream (drift) was added later: spawning it leaves the first four as they were
        children = np.random.SeedSequence(entropy, spawn_key=spawn_key).spawn(5)
        return dict(zip(("emitters", "background", "camera", "patches", "drift"), map(np.random.default_rng, children)))

    def draw(self, rngs: dict, *, density: float | list[float], n_frames: int, drift_nm: np.ndarray | None = None) -> Simulation:
        """Emitters, background and the ground-truth table (frames from 1).

        ``drift_nm`` (n_frames, 2), optional: the stage drift (x, y) of each frame. The emitters are imaged
        displaced by it, the ground truth keeps their positions in the sample (frame 1's), and emitter-frames
        that drift out of the field are not imaged and not in the ground truth.

        ``density`` may be a list of densities (a training set over a density range): frame f then holds
        the emitters of level ``f mod len(density)``, each level simulated as a stack of its own over the
        same structure and interleaved, so that any first frames of the stack cover every level."""
        structure = structure_from_config(self.cfg["structure"], self.fov_nm, rngs["emitters"])
        levels = [float(density)] if np.ndim(density) == 0 else [float(d) for d in density]
        levels = levels[: max(1, min(len(levels), n_frames))]
        if len(levels) == 1:
            events = self._events(rngs["emitters"], structure, levels[0], n_frames)
        else:
            parts, first_id = [], 0
            for k, d in enumerate(levels):
                ev = self._events(rngs["emitters"], structure, d, len(range(k, n_frames, len(levels))))
                ev.frame = ev.frame * len(levels) + k
                ev.emitter = ev.emitter + first_id
                first_id = int(ev.emitter.max()) + 1 if len(ev) else first_id
                parts.append(ev)
            events = EmitterEvents(**{f: np.concatenate([getattr(e, f) for e in parts]) for f in parts[0].__dict__})
            events = events.select(np.argsort(events.frame, kind="stable"))
        bg_cfg = self.cfg["background"]
        background = background_field(
            rngs["background"],
            self.shape,
            photons_per_px=bg_cfg["photons_per_px"],
            variation=bg_cfg["variation"],
            length_scale_px=bg_cfg["length_scale_nm"] / self.pixel_size_nm,
        )
        true_x, true_y = events.x_nm, events.y_nm
        if drift_nm is not None:
            x, y = events.x_nm + drift_nm[events.frame, 0], events.y_nm + drift_nm[events.frame, 1]
            inside = (x >= 0) & (x < self.fov_nm[1]) & (y >= 0) & (y < self.fov_nm[0])
            events = events.select(inside)
            true_x, true_y = true_x[inside], true_y[inside]
            events.x_nm, events.y_nm = x[inside], y[inside]
        rows = np.floor(events.y_nm / self.pixel_size_nm).astype(np.int64)
        cols = np.floor(events.x_nm / self.pixel_size_nm).astype(np.int64)
        local_bg = background[rows, cols]
        gt = pd.DataFrame(
            {
                "frame": events.frame + 1,
                "x [nm]": true_x,
                "y [nm]": true_y,
                "sigma [nm]": events.sigma_nm,
                "intensity [photon]": events.photons,
                "offset [photon]": local_bg,
                "bkgstd [photon]": np.sqrt(local_bg),
            }
        )
        return Simulation(events=events, background=background, ground_truth=gt)

    def _events(self, rng: np.random.Generator, structure, density: float, n_frames: int) -> EmitterEvents:
        pp = self.cfg["photophysics"]
        common = dict(n_frames=n_frames, density_per_um2=density, fov_nm=self.fov_nm, structure=structure,
                      psf=self.psf, photons=pp["photons"], mean_on_frames=pp["mean_on_frames"])  # fmt: skip
        if pp.get("model", "frames") == "continuous":
            return sample_events_continuous(rng, mean_off_frames=pp["mean_off_frames"], mean_blinks=pp["mean_blinks"], **common)
        return sample_events(rng, **common)

    def expected_photons(self, sim: Simulation, first: int, stop: int) -> np.ndarray:
        """Noise-free photons per pixel of frames ``[first, stop)`` (0-based): PSFs plus background."""
        ev = sim.events
        lo, hi = np.searchsorted(ev.frame, [first, stop])
        image = self.psf.render(
            stop - first,
            self.shape,
            ev.frame[lo:hi] - first,
            ev.x_nm[lo:hi] / self.pixel_size_nm,
            ev.y_nm[lo:hi] / self.pixel_size_nm,
            ev.photons[lo:hi],
            ev.sigma_nm[lo:hi] / self.pixel_size_nm,
        )
        image += sim.background[None]
        return image

    def frames(self, sim: Simulation, n_frames: int, rng: np.random.Generator, label: str = ""):
        """Yield camera frames (uint16) chunk by chunk, logging progress."""
        t0 = last_log = time.perf_counter()
        for first in range(0, n_frames, CHUNK_FRAMES):
            stop = min(first + CHUNK_FRAMES, n_frames)
            chunk = self.camera(self.expected_photons(sim, first, stop), rng)
            now = time.perf_counter()
            if stop == n_frames or now - last_log > 5:
                last_log = now
                log.info("%s: frames %d/%d (%.0f frames/s)", label, stop, n_frames, stop / max(now - t0, 1e-9))
            yield chunk


def _write_stack_and_truth(sim_: Simulator, sim: Simulation, frames, n_frames, frames_path, gt_path) -> None:
    write_stack(
        frames_path,
        (f for chunk in frames for f in chunk),
        shape=(n_frames, *sim_.shape),
        dtype=np.uint16,
        pixel_size_nm=sim_.pixel_size_nm,
    )
    write_localizations(gt_path, sim.ground_truth)


def drift_trajectory(drift: dict | None, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """The stage drift (x, y) in nm of each frame, (n_frames, 2), zero at frame 1, from an acquisition's
    ``simulate.drift`` section: a constant velocity, a random walk (Gaussian steps of ``random_walk_nm`` per
    frame on each axis) and a sinusoid (amplitude per axis, period in frames)."""
    drift = drift or {}
    t = np.arange(n_frames, dtype=np.float64)[:, None]
    out = t * np.asarray(drift.get("velocity_nm_per_frame", [0.0, 0.0]), dtype=np.float64)
    step = float(drift.get("random_walk_nm", 0.0))
    if step > 0:
        walk = np.cumsum(rng.normal(0.0, step, (n_frames, 2)), axis=0)
        out += walk - walk[0]
    amplitude = np.asarray(drift.get("sinusoid_amplitude_nm", [0.0, 0.0]), dtype=np.float64)
    if np.any(amplitude):
        out += amplitude * np.sin(2 * np.pi * t / float(drift["sinusoid_period_frames"]))
    return out


def simulate_acquisition(
    dataset: dict, name: str, *, density: float, n_frames: int, frames_path: str, ground_truth_path: str,
    drift: dict | None = None, drift_path: str | None = None,
) -> pd.DataFrame:
    """A simulated test acquisition: ``frames.tif`` (uint16 ImageJ TIFF) and ``ground_truth.csv``; with a
    ``drift`` section (the acquisition's ``simulate.drift``), the frames drift and ``drift_path`` receives
    the true trajectory (:func:`dstorm.drift.write_drift`; zeros without drift)."""
    from dstorm.drift import write_drift

    simulator = Simulator(dataset)
    rngs = simulator.streams("acquisition", name)
    trajectory = drift_trajectory(drift, n_frames, rngs["drift"])
    sim = simulator.draw(rngs, density=density, n_frames=n_frames, drift_nm=trajectory if np.any(trajectory) else None)
    log.info(
        "%s/%s: %d frames %s px, %d emitter-frames (%.2f per µm² per frame, target %g)",
        dataset["name"], name, n_frames, simulator.shape, len(sim.events),
        len(sim.events) / n_frames / (simulator.fov_nm[0] * simulator.fov_nm[1] / 1e6), density,
    )  # fmt: skip
    frames = simulator.frames(sim, n_frames, rngs["camera"], label=f"{dataset['name']}/{name}")
    _write_stack_and_truth(simulator, sim, frames, n_frames, frames_path, ground_truth_path)
    if drift_path:
        write_drift(drift_path, trajectory[:, 0], trajectory[:, 1])
    return sim.ground_truth


def simulate_training_set(
    dataset: dict, *, density: float, frames_path: str, ground_truth_path: str, patches_path: str
) -> dict:
    """A training set: frames, ground truth and the patches of the reference recipe (see patches.py).

    Returns the patch file's ``meta`` dict.
    """
    from dstorm.config import density_label

    recipe = dataset["training_set"]
    n_frames = int(recipe["frames"])
    simulator = Simulator(training_data(dataset))
    label = f"density_{density_label(density)}"
    rngs = simulator.streams("training_set", label)
    sim = simulator.draw(rngs, density=training_densities(density, recipe), n_frames=n_frames)
    u = int(recipe["upsampling_factor"])
    sampler = PatchSampler(
        rngs["patches"],
        patch_size_px=recipe["patch_size_px"],
        patches_per_frame=recipe["patches_per_frame"],
        max_patches=recipe["max_patches"],
        min_emitters=recipe["min_emitters"],
        margin_px=np.ceil(3 * recipe["heatmap_sigma_px"] + 1) / u,
    )
    ev = sim.events
    bounds = np.searchsorted(ev.frame, np.arange(n_frames + 1))

    def frames_with_patches():
        first = 0
        for chunk in simulator.frames(sim, n_frames, rngs["camera"], label=f"{dataset['name']}/{label}"):
            for i, image in enumerate(chunk):
                f = first + i
                lo, hi = bounds[f], bounds[f + 1]
                sampler.add_frame(image, f + 1, ev.x_nm[lo:hi] / simulator.pixel_size_nm, ev.y_nm[lo:hi] / simulator.pixel_size_nm)
            first += len(chunk)
            yield chunk

    _write_stack_and_truth(simulator, sim, frames_with_patches(), n_frames, frames_path, ground_truth_path)
    arrays = sampler.arrays()
    n = len(arrays["patches"])
    if n == 0:
        for path in (frames_path, ground_truth_path):  # no partial training set
            Path(path).unlink(missing_ok=True)
        raise InputError(
            f"datasets.{dataset['name']}.training_set: no patch of {recipe['patch_size_px']} px holds "
            f"min_emitters={recipe['min_emitters']} emitters at density {density:g}/µm² "
            f"({sampler.candidates_tried} tried in {n_frames} frames); raise the density, frames or "
            "patch_size_px, or lower min_emitters"
        )
    meta = {
        "format_version": PATCH_FORMAT_VERSION,
        "dataset": dataset["name"],
        "density_per_um2": float(density),
        "pixel_size_nm": simulator.pixel_size_nm,
        "frame_size_px": list(simulator.shape),
        "upsampling_factor": u,
        "patch_size_px": int(recipe["patch_size_px"]),
        "heatmap_sigma_px": float(recipe["heatmap_sigma_px"]),
        "weighting_factor": float(recipe["weighting_factor"]),
        "min_emitters": int(recipe["min_emitters"]),
        "n_patches": n,
        "frames_used": sampler.frames_seen,
        "camera": dataset["camera"],
        "psf": dataset["psf"],
        "photophysics": simulator.cfg["photophysics"],
        "seed": dataset["seed"],
        "coordinates": "xy in camera pixels from the patch corner; pixel j covers [j, j+1)",
    }
    log.info("%s/%s: %d patches from %d frames (%d candidates tried)", dataset["name"], label, n, sampler.frames_seen, sampler.candidates_tried)
    extra = {}
    for kind, at in (("calibration", density), ("precision", PRECISION_DENSITY)):
        frames = sparse_frames(dataset, kind, density=at, u=u, label=label)
        if frames:
            meta[kind] = {
                "frames": len(frames[f"{kind}_frames"]),
                "frame_size_px": list(frames[f"{kind}_frames"].shape[1:]),
                "density_per_um2": at,
                "photophysics": dataset["photophysics"],
                "emitters": int(frames[f"{kind}_offsets"][-1]),
            }
            extra.update(frames)
    save_arrays(patches_path, meta, **arrays, **extra)
    return meta


#: Density levels of a training set over a density range (``training_set.density_range``).
DENSITY_LEVELS = 5


def training_densities(density: float, recipe: dict) -> float | list[float]:
    """The training set's density, or its levels: ``DENSITY_LEVELS`` densities spaced geometrically over
    ``density × training_set.density_range`` (as DECODE trains over a range of densities)."""
    low, high = recipe.get("density_range", (1.0, 1.0))
    if low == high == 1.0:
        return float(density)
    return [float(d) for d in np.geomspace(density * low, density * high, DENSITY_LEVELS)]


def training_data(dataset: dict) -> dict:
    """The dataset as its training frames are simulated: ``training_set.photophysics`` (keys given there)
    over the dataset's photophysics, which describe the acquisitions (and the calibration frames)."""
    override = dataset["training_set"].get("photophysics") or {}
    if not override:
        return dataset
    return {**dataset, "photophysics": {**dataset["photophysics"], **override}}


#: Side of the calibration frames at most, camera pixels (a crop of the simulated frame: the threshold
#: needs emitters, not a large field, and the crop keeps its cost small at any frame size).
CALIBRATION_CROP_PX = 64


def sparse_frames(dataset: dict, kind: str, *, density: float | list[float], u: int, label: str) -> dict[str, np.ndarray]:
    """Frames that look like the acquisitions (the dataset's own photophysics: with continuous blinking,
    dim partial-frame emitters), with their emitters, beside the training set.

    ``kind`` ``calibration``: ``training_set.calibration_frames`` frames at the training density, on which
    training calibrates the detection threshold; ``precision``: ``training_set.precision_frames`` frames at
    :data:`dstorm.photometry.PRECISION_DENSITY`, whose isolated emitters measure the network's precision.
    Each is cropped to at most :data:`CALIBRATION_CROP_PX` (a side every architecture takes at this U) and
    drawn from a random stream of its own. Arrays (patch file, optional): ``<kind>_frames`` (K, h, w) uint16
    ADU; ``<kind>_offsets`` (K + 1,) int64 and ``<kind>_xy`` (M, 2) float32: the emitters of frame k inside
    the crop, camera pixels from its corner (pixel j covers [j, j+1)). Empty without such frames (0)."""
    n = int(dataset["training_set"].get(f"{kind}_frames", 0))
    if n <= 0:
        return {}
    simulator = Simulator(dataset)
    rngs = simulator.streams(kind, label)
    sim = simulator.draw(rngs, density=density, n_frames=n)
    crop = []
    for side in simulator.shape:
        c = min(side, CALIBRATION_CROP_PX)
        c -= c % common_frame_multiple(u)
        crop.append(c)
    h, w = crop
    frames = np.concatenate(list(simulator.frames(sim, n, rngs["camera"], label=f"{dataset['name']}/{label} {kind}")))
    ev = sim.events
    x, y = ev.x_nm / simulator.pixel_size_nm, ev.y_nm / simulator.pixel_size_nm
    inside = (x < w) & (y < h)
    counts = np.bincount(ev.frame[inside], minlength=n)
    log.info("%s/%s: %d %s frames of %d × %d px (%s photophysics), %d emitters", dataset["name"], label, n, kind, h,
             w, dataset["photophysics"].get("model", "frames"), counts.sum())  # fmt: skip
    return {
        f"{kind}_frames": np.ascontiguousarray(frames[:, :h, :w]).astype(np.uint16),
        f"{kind}_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        f"{kind}_xy": np.column_stack([x[inside], y[inside]]).astype(np.float32),
    }
