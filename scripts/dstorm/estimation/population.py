"""Step 4 of the estimate: the emitters' density, photons and blinking, by fitting the simulator to the data.

"Signal above background ÷ photons of a fitted spot" is biased at high density and with real blinking: only
isolated spots can be fitted, and where spots crowd the isolated ones that pass the fit checks are the
bright ones; and in real blinking a molecule switches on and off at any time within the exposure, so most
emitter-frames hold a fraction of a whole frame's photons and many are too dim to be fitted at all.

This step asks what population of emitters, seen through the same camera, PSF, background and the same spot
detection and fits, gives the data's statistics:

- ``S``, the mean photo-electrons per frame above the background (camera-calibrated; it does not depend on
  which spots can be fitted): given the density ``d`` and the mean on-fraction of an emitter-frame, it fixes
  the photons ``m`` of a whole frame on (``S = d · m · E[fraction]``, exactly in expectation);
- ``D``, the spots detected per frame, which rises with the density (about as d^0.3 at 5/µm²) even where
  spots overlap; for each blinking candidate the density is where a simulation detects as many
  (secant steps on log D against log d, from a bracket);
- ``M``, the median photo-electrons of the isolated spots that pass :func:`fit_isolated_spots`, which hardly
  moves with the density (d^−0.08) but rises with the share of whole frames: it chooses the blinking,
  interpolated (in log on-time) between the two candidates whose fitted spots bracket the data's.

The candidates are continuous-time blinking (one blink) with mean on-times of 0.5, 1, 3 and 30 frames and
whole-frame photons spread by 20 %, and whole frames of nearly one brightness (30 frames, 5 %). Stacks are
simulated with :mod:`dstorm.simulation` (uniform emitters, the estimated camera, σ and background; common
random numbers, so the statistics change smoothly with ``d``).

The density is the mean number of emitters on for any part of a frame per µm², the simulator's definition;
photons per emitter-frame are those of the fitted population (its mean and median include the dim partial
frames that no fit sees). Standard errors combine the data's errors of ``S`` and ``D`` and, through the
choice of the blinking, of ``M``. Every simulation is seeded from the dataset's seed. Measured on stacks of
another simulator: scripts/benchmarks/independent.py.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from dstorm.cameras import adu_per_electron, mean_offset_adu

log = logging.getLogger(__name__)

__all__ = ["Population", "estimate_population", "detections_per_64x64", "CANDIDATES"]

#: The candidates, in order of brightness of their fitted spots: (mean on-time in frames, relative spread of
#: a whole frame's photons). 30 frames is as good as whole frames; the last has a narrow photon distribution
#: (emitters of one brightness, on for whole frames: the fitted spots are then as bright as they can be).
CANDIDATES = ((0.5, 0.2), (1.0, 0.2), (3.0, 0.2), (30.0, 0.2), (30.0, 0.05))
#: Emitter-frames a simulated stack holds at least (its frames: as many as the data, 60 to 200).
EVENTS_PER_SIMULATION = 6000
#: Isolated spots fitted per simulated stack, at most.
SIM_SPOTS = 1500
#: d log(detections per frame) / d log(density) near 5/µm², for the standard error of the density.
DETECTION_SLOPE = 0.3
#: Simulations per candidate on-time (two to bracket the density, then secant steps).
ROUNDS = 4


def detections_per_64x64(count: float, frames: int, height: int, width: int) -> float:
    """Detections per frame, scaled to a 64 × 64 px field (the simulations' size), data and simulation alike."""
    return count / frames * (64 * 64) / (height * width)


@dataclass
class Population:
    density_per_um2: float
    photons_mean: float  # per emitter-frame, photo-electrons
    photons_median: float
    full_frame_photons: float  # a whole frame on: mean, and relative spread
    full_frame_spread: float
    mean_on_frames: float  # of continuous-time blinking, one blink
    errors: dict
    rounds: list

    def photophysics(self, quantum_efficiency: float = 1.0) -> dict:
        """The config section the simulations of training sets use (photons in photons, not electrons)."""
        m = self.full_frame_photons / quantum_efficiency
        return {
            "model": "continuous",
            "mean_on_frames": round(self.mean_on_frames, 3),
            "mean_blinks": 1.0,
            "photons": {"distribution": "normal", "mean": round(m, 1), "std": round(self.full_frame_spread * m, 1)},
        }


class _Simulations:
    """Simulated stacks of the estimated imaging conditions, and the data's statistics measured on them."""

    def __init__(self, *, camera: dict, sigma_nm: float, background_e: float, pixel_size_nm: float, shape, frames: int,
                 seed: int, fit_options: dict):  # fmt: skip
        from dstorm.config import resolve_camera

        self.base = {
            "name": "estimate", "seed": int(seed), "pixel_size_nm": float(pixel_size_nm),
            "frame_size_px": [int(min(shape[0], 64)), int(min(shape[1], 64))],
            "camera": resolve_camera({**camera, "quantum_efficiency": 1.0}),
            "psf": {"model": "integrated_gaussian", "sigma_nm": [sigma_nm, sigma_nm], "cutoff_sigma": 4},
            "background": {"photons_per_px": max(background_e, 0.0), "variation": 0.0, "length_scale_nm": 3000},
            "structure": {"type": "uniform"},
        }  # fmt: skip
        # a median of up to SIM_SPOTS fits is all a simulation needs (the fits are most of its cost)
        self.fit_options = {**fit_options, "max_spots": min(int(fit_options.get("max_spots", SIM_SPOTS)), SIM_SPOTS)}
        self.frames = int(frames)

    def statistics(self, d: float, m: float, tau: float, cv: float) -> dict:
        """Simulate ``d`` emitters/µm² of continuous-time blinking (mean on-time ``tau``, one blink) with
        whole-frame photons ``m`` ± ``cv``, and measure the data's statistics on the stack."""
        from dstorm.estimation.conditions import EstimationError, detect_spots, fit_isolated_spots, noise_line
        from dstorm.simulation.simulate import Simulator

        ds = copy.deepcopy(self.base)
        ds["photophysics"] = {
            "model": "continuous", "mean_on_frames": tau, "mean_off_frames": 10.0, "mean_blinks": 1.0,
            "photons": {"distribution": "normal", "mean": m, "std": cv * m},
        }  # fmt: skip
        h, w = ds["frame_size_px"]
        area = h * w * (ds["pixel_size_nm"] / 1000) ** 2
        n_frames = int(np.clip(max(EVENTS_PER_SIMULATION / max(d * area, 1e-9), self.frames), 60, 200))
        sim = Simulator(ds)
        # common random numbers: every candidate draws from the same streams, so that the statistics change
        # smoothly with the density and the photons instead of with the noise of each draw
        rngs = sim.streams("population")
        drawn = sim.draw(rngs, density=d, n_frames=n_frames)
        frames = np.concatenate(list(sim.frames(drawn, n_frames, rngs["camera"]))).astype(np.float64)
        cam = ds["camera"]
        gain, offset = adu_per_electron(cam), mean_offset_adu(cam)
        det = detect_spots(frames)
        try:
            fit = fit_isolated_spots(frames, det.strong, det.faint, noise_line(frames), seed=0, **self.fit_options)
            fitted = fit.fits.amplitude[fit.good] / gain
        except EstimationError:
            fitted = np.zeros(0)
        signal = (frames.sum(axis=(1, 2)) - (offset + gain * ds["background"]["photons_per_px"]) * h * w) / gain
        photons = drawn.events.photons
        return {
            "signal_per_um2": float(signal.mean() / area),
            "detections_per_frame": detections_per_64x64(len(det.strong), n_frames, h, w),
            "fitted": fitted,
            "truth_mean": float(photons.mean()) if len(photons) else float("nan"),
            "truth_median": float(np.median(photons)) if len(photons) else float("nan"),
        }


def estimate_population(
    *, signal_e_per_um2: float, signal_se: float, fitted_photons_e: np.ndarray, median_se: float,
    detections_per_frame: float, detections_se: float, camera: dict, sigma_nm: float, background_e: float,
    pixel_size_nm: float, shape, seed: int = 0, fit_options: dict | None = None,
) -> Population | None:  # fmt: skip
    """Fit density, photons and blinking to the data's statistics (see the module docstring); None where no
    simulation of the estimated conditions gives spots to fit (the caller keeps its first guess).

    ``signal_e_per_um2``: mean photo-electrons above background per frame per µm² (and its SE);
    ``fitted_photons_e``: the photo-electrons of the data's isolated spots that passed the fit checks (and
    the SE of their median); ``detections_per_frame``: spots detected per frame, per 64 × 64 px (and its SE);
    ``camera``: the estimated camera as a config section; ``shape``: (frames, height, width) of the data."""
    sims = _Simulations(camera=camera, sigma_nm=sigma_nm, background_e=background_e, pixel_size_nm=pixel_size_nm,
                        shape=shape[1:], frames=shape[0], seed=seed, fit_options=fit_options or {})  # fmt: skip
    target_m = float(np.median(fitted_photons_e))
    rounds: list = []
    candidates = []
    for tau, spread in CANDIDATES:
        # the signal fixes the photons once the density is chosen (S = d · m · E[on-fraction], exactly in
        # expectation), so the search is over the density alone. The spots detected per frame rise with it
        # (about as d^0.3 at 5/µm²) while the median fitted photons hardly move (d^-0.08): the density is where
        # the simulation detects as many spots per frame as the data (secant steps on log D against log d)
        fraction = tau / (1.0 + tau)  # mean on-fraction of an emitter-frame, one blink (emitters.py)
        d0 = signal_e_per_um2 / (target_m * fraction)
        tried = []

        def photons(d):  # whole-frame photons that give the data's signal at density d
            return signal_e_per_um2 / (d * fraction)

        def miss(trial):  # log of the simulation's detections over the data's
            return np.log(trial[1]["detections_per_frame"] / detections_per_frame)

        def run(d):
            st = sims.statistics(d, photons(d), tau, spread)
            tried.append((d, st))
            rounds.append({"mean_on_frames": tau, "density": d, "full_frame_photons": photons(d),
                           "fitted_median": float(np.median(st["fitted"])) if len(st["fitted"]) else None,
                           "detections_per_frame": st["detections_per_frame"]})  # fmt: skip

        run(0.4 * d0)
        run(0.8 * d0)
        for _ in range(ROUNDS - 2):
            (d1, s1), (d2, s2) = sorted(tried, key=lambda x: abs(miss(x)))[:2]
            y1, y2 = miss((d1, s1)), miss((d2, s2))
            if y1 == y2:
                break
            run(float(np.clip(np.exp(np.log(d1) - y1 * (np.log(d2) - np.log(d1)) / (y2 - y1)), d0 / 10, d0 * 3)))
        d, st = min(tried, key=lambda x: abs(miss(x)))
        if len(st["fitted"]) < 10:
            continue
        m = photons(d)
        log.info("population, mean on-time %g frames: density %.4g /µm², whole-frame photons %.5g, %.1f detections per "
                 "frame (data %.1f), median fitted %.4g (data %.4g)", tau, d, m, st["detections_per_frame"],
                 detections_per_frame, np.median(st["fitted"]), target_m)  # fmt: skip
        candidates.append({"tau": tau, "spread": spread, "d": d, "m": m, "fitted_median": float(np.median(st["fitted"])),
                           "mean": st["truth_mean"], "median": st["truth_median"]})  # fmt: skip
    if not candidates:
        return None
    # the on-time at which the simulations' fitted spots are as bright as the data's (longer on-times: more
    # whole frames among the fitted), interpolated in log(on-time) between the bracketing candidates
    med = np.array([c["fitted_median"] for c in candidates]) / target_m
    pairs = [k for k in range(len(candidates) - 1) if (med[k] - 1.0) * (med[k + 1] - 1.0) <= 0]  # in on-time order
    if pairs:
        i = pairs[0]
        j = i + 1
    else:  # outside the candidates' range: the end it lies beyond (the fitted spots brighter than any: the last)
        i = j = len(candidates) - 1 if med.max() < 1.0 else 0
    a, b = candidates[i], candidates[j]
    w = 0.0 if j == i or med[j] == med[i] else float(np.clip((1.0 - med[i]) / (med[j] - med[i]), 0, 1))
    dw = 0.0 if j == i or med[j] == med[i] else float(median_se / target_m / abs(med[j] - med[i]))
    value = {k: (1 - w) * a[k] + w * b[k] for k in ("d", "m", "mean", "median", "spread")}
    tau = float(np.exp((1 - w) * np.log(a["tau"]) + w * np.log(b["tau"])))
    # standard errors: the data's S (through the photons), detections (through the density, slope ~0.3) and M
    rel = float(np.hypot(signal_se / signal_e_per_um2, detections_se / detections_per_frame / DETECTION_SLOPE))
    rel = float(np.hypot(rel, abs(b["d"] - a["d"]) * min(dw, 1.0) / value["d"]))  # the on-time's uncertainty
    errors = {
        "density_per_um2": float(rel * value["d"]),
        "photons_mean": float(value["mean"] * median_se / target_m),
        "photons_median": float(value["median"] * median_se / target_m),
    }
    log.info("population: mean on-time %.3g frames (detections %.1f per frame), density %.4g ± %.2g /µm², %.5g photo-"
             "electrons per emitter-frame", tau, detections_per_frame, value["d"], errors["density_per_um2"],
             value["mean"])  # fmt: skip
    return Population(
        density_per_um2=float(value["d"]), photons_mean=float(value["mean"]), photons_median=float(value["median"]),
        full_frame_photons=float(value["m"]), full_frame_spread=float(value["spread"]), mean_on_frames=tau,
        errors=errors, rounds=rounds,
    )  # fmt: skip
