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

from dstorm.config import seed_sequence_entropy
from dstorm.errors import InputError
from dstorm.io import save_arrays, write_localizations, write_stack
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

__all__ = ["Simulator", "simulate_training_set", "simulate_acquisition", "CHUNK_FRAMES"]

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
        children = np.random.SeedSequence(entropy, spawn_key=spawn_key).spawn(4)
        return dict(zip(("emitters", "background", "camera", "patches"), map(np.random.default_rng, children)))

    def draw(self, rngs: dict, *, density: float, n_frames: int) -> Simulation:
        """Emitters, background and the ground-truth table (frames from 1)."""
        structure = structure_from_config(self.cfg["structure"], self.fov_nm, rngs["emitters"])
        pp = self.cfg["photophysics"]
        common = dict(n_frames=n_frames, density_per_um2=density, fov_nm=self.fov_nm, structure=structure,
                      psf=self.psf, photons=pp["photons"], mean_on_frames=pp["mean_on_frames"])  # fmt: skip
        if pp.get("model", "frames") == "continuous":
            events = sample_events_continuous(
                rngs["emitters"], mean_off_frames=pp["mean_off_frames"], mean_blinks=pp["mean_blinks"], **common
            )
        else:
            events = sample_events(rngs["emitters"], **common)
        bg_cfg = self.cfg["background"]
        background = background_field(
            rngs["background"],
            self.shape,
            photons_per_px=bg_cfg["photons_per_px"],
            variation=bg_cfg["variation"],
            length_scale_px=bg_cfg["length_scale_nm"] / self.pixel_size_nm,
        )
        rows = np.floor(events.y_nm / self.pixel_size_nm).astype(np.int64)
        cols = np.floor(events.x_nm / self.pixel_size_nm).astype(np.int64)
        local_bg = background[rows, cols]
        gt = pd.DataFrame(
            {
                "frame": events.frame + 1,
                "x [nm]": events.x_nm,
                "y [nm]": events.y_nm,
                "sigma [nm]": events.sigma_nm,
                "intensity [photon]": events.photons,
                "offset [photon]": local_bg,
                "bkgstd [photon]": np.sqrt(local_bg),
            }
        )
        return Simulation(events=events, background=background, ground_truth=gt)

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


def simulate_acquisition(
    dataset: dict, name: str, *, density: float, n_frames: int, frames_path: str, ground_truth_path: str
) -> pd.DataFrame:
    """A simulated test acquisition: ``frames.tif`` (uint16 ImageJ TIFF) and ``ground_truth.csv``."""
    simulator = Simulator(dataset)
    rngs = simulator.streams("acquisition", name)
    sim = simulator.draw(rngs, density=density, n_frames=n_frames)
    log.info(
        "%s/%s: %d frames %s px, %d emitter-frames (%.2f per µm² per frame, target %g)",
        dataset["name"], name, n_frames, simulator.shape, len(sim.events),
        len(sim.events) / n_frames / (simulator.fov_nm[0] * simulator.fov_nm[1] / 1e6), density,
    )  # fmt: skip
    frames = simulator.frames(sim, n_frames, rngs["camera"], label=f"{dataset['name']}/{name}")
    _write_stack_and_truth(simulator, sim, frames, n_frames, frames_path, ground_truth_path)
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
    simulator = Simulator(dataset)
    label = f"density_{density_label(density)}"
    rngs = simulator.streams("training_set", label)
    sim = simulator.draw(rngs, density=density, n_frames=n_frames)
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
        "seed": dataset["seed"],
        "coordinates": "xy in camera pixels from the patch corner; pixel j covers [j, j+1)",
    }
    save_arrays(patches_path, meta, **arrays)
    log.info("%s/%s: %d patches from %d frames (%d candidates tried)", dataset["name"], label, n, sampler.frames_seen, sampler.candidates_tried)
    return meta
