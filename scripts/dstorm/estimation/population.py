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
  spots overlap: for each blinking candidate the density is where a simulation detects as many (secant
  steps on log D against log d, from a bracket);
- ``P``, the persistence: the fraction of the spots of a frame with a spot within 1.5 px in the next frame.
  It rises steeply with the mean on-time (an emitter on for about one frame is rarely there in the next)
  and needs no photometry: within each blinking model it chooses the on-time, interpolated in log(on-time)
  between the candidates that bracket the data's (tried from the shortest on-time up, until one persists
  as much as the data);
- ``R``, the brightness of the ends of runs: the median photo-electrons of the fitted spots (those that pass
  :func:`fit_isolated_spots`) with no detection nearby in the previous or the next frame, over that of the
  spots with one in both (:func:`track_sides`, :func:`end_ratio`). At the chosen on-time it tells the two
  blinking models apart wherever runs are long enough to have middles: continuous-time blinking's first and
  last frames of an on-time are partial, so its ends are dimmer (R ≈ 0.7 at 5 frames), while whole frames
  are as bright at the ends (R ≈ 1). It does not depend on the spread of a whole frame's photons, which the
  simulations can only assume;
- ``Q``, the spread (interquartile range over median) of the fitted spots' photo-electrons: it tells the
  models apart where ``R`` cannot (too few middles, e.g. on-times of about a frame): the partial frames of
  continuous-time blinking make a broad distribution, whole frames one as narrow as the photons' own spread.
  The fitted spots' median is not used: it hardly moves between models with the density chosen by ``D``.

The blinking models are ``continuous`` (continuous-time blinking, one blink) and ``frames`` (whole frames,
the simulator's other model), each with mean on-times of 0.5, 1, 3, 5, 10 and 30 frames, and whole-frame photons
spread by 20 %. Stacks are simulated with :mod:`dstorm.simulation` (uniform emitters, the estimated camera,
σ and background; common random numbers, so the statistics change smoothly with ``d``).

The density is the mean number of emitters on for any part of a frame per µm², the simulator's definition;
photons per emitter-frame are those of the fitted population (its mean and median include the dim partial
frames that no fit sees). Standard errors combine the data's errors of ``S`` and ``D`` and, through the
choice of the on-time, of ``P``. Every simulation is seeded from the dataset's seed. Measured on stacks of
another simulator: scripts/benchmarks/independent.py.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from dstorm.cameras import adu_per_electron

log = logging.getLogger(__name__)

__all__ = ["Population", "estimate_population", "detections_per_64x64", "persistence", "MODELS", "ON_TIMES"]

#: The blinking models tried, and the mean on-times (frames) of each.
MODELS = ("continuous", "frames")
ON_TIMES = (0.5, 1.0, 3.0, 5.0, 10.0, 30.0)
#: Relative spread of a whole frame's photons in the simulations.
SPREAD = 0.2
#: Emitter-frames a simulated stack holds at least (its frames: as many as the data, 60 to 200).
EVENTS_PER_SIMULATION = 6000
#: Isolated spots fitted per simulated stack, at most: as many as the data's (``max_spots``), since at high
#: density few of them pass the fit checks and the spread of their photons needs every one.
SIM_SPOTS = 5000
#: d log(detections per frame) / d log(density) near 5/µm², for the standard error of the density.
DETECTION_SLOPE = 0.3
#: Simulations per candidate on-time (two to bracket the density, then secant steps).
ROUNDS = 4
#: A spot persists if the next frame has a spot within this distance, px.
PERSISTENCE_RADIUS_PX = 1.5
#: Fitted spots at the ends and in the middles of runs that :func:`end_ratio` needs, each.
MIN_RUN_SPOTS = 15


def detections_per_64x64(count: float, frames: int, height: int, width: int) -> float:
    """Detections per frame, scaled to a 64 × 64 px field (the simulations' size), data and simulation alike."""
    return count / frames * (64 * 64) / (height * width)


def _near(spots, n_frames: int, shape, offsets, query=None) -> list[np.ndarray]:
    """For each offset, and each spot of ``query`` (default: ``spots``), whether frame + offset has a spot of
    ``spots`` within :data:`PERSISTENCE_RADIUS_PX` (False where that frame does not exist). The spots are
    dilated once for all offsets."""
    from scipy import ndimage

    query = spots if query is None else query
    h, w = shape
    present = np.zeros((n_frames, h, w), dtype=bool)
    present[spots.frame, spots.row, spots.col] = True
    r = int(np.floor(PERSISTENCE_RADIUS_PX))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    near = ndimage.binary_dilation(present, structure=((yy**2 + xx**2) <= PERSISTENCE_RADIUS_PX**2)[None])
    frame, row, col = np.asarray(query.frame), np.asarray(query.row), np.asarray(query.col)
    found = []
    for offset in offsets:
        other = frame + offset
        inside = (other >= 0) & (other < n_frames)
        out = np.zeros(len(other), dtype=bool)
        out[inside] = near[other[inside], row[inside], col[inside]]
        found.append(out)
    return found


def persistence(spots, n_frames: int, shape) -> tuple[float, float]:
    """The fraction of the spots of frames 0 … T − 2 with a spot within :data:`PERSISTENCE_RADIUS_PX` in the
    next frame, and its standard error (binomial, over the spots). ``spots``: ``frame``, ``row``, ``col``."""
    keep = np.asarray(spots.frame) < n_frames - 1
    n = int(keep.sum())
    if n == 0:
        return float("nan"), float("nan")
    p = float(_near(spots, n_frames, shape, (1,))[0][keep].mean())
    return p, float(np.sqrt(max(p * (1 - p), 1e-6) / n))


def track_sides(spots, fitted, n_frames: int, shape) -> np.ndarray:
    """For each spot of ``fitted`` (a subset of ``spots``, the detections), where it lies in its run of
    consecutive frames: 0 at an end (no detection near it in the previous or the next frame), 1 in the middle
    (one in both), −1 in the first or the last frame of the stack (unknown)."""
    before, after = _near(spots, n_frames, shape, (-1, 1), fitted)
    sides = (before & after).astype(int)
    frame = np.asarray(fitted.frame)
    sides[(frame == 0) | (frame == n_frames - 1)] = -1
    return sides


def end_ratio(photons: np.ndarray, sides: np.ndarray) -> float:
    """Median photons of the fitted spots at the ends of runs over those in the middle (NaN for fewer than
    :data:`MIN_RUN_SPOTS` of either). In continuous-time blinking the first and last frames of an on-time
    are partial, so the ends are dimmer than the middles; with whole frames they are as bright. Unlike the
    spread of all fitted photons, the ratio does not depend on the spread of a whole frame's photons."""
    ends, middles = photons[sides == 0], photons[sides == 1]
    if len(ends) < MIN_RUN_SPOTS or len(middles) < MIN_RUN_SPOTS:
        return float("nan")
    return float(np.median(ends) / np.median(middles))


def fitted_spread(photons: np.ndarray) -> float:
    """Interquartile range over the median of fitted photons (NaN for fewer than 10)."""
    if len(photons) < 10:
        return float("nan")
    q25, q50, q75 = np.percentile(photons, [25, 50, 75])
    return float((q75 - q25) / q50)


def on_fraction(model: str, tau: float) -> float:
    """Mean fraction of a whole frame's photons in an emitter-frame: τ/(1 + τ) for continuous-time blinking
    with one blink (an on-time of mean τ at a random phase touches 1 + τ frames), 1 for whole frames."""
    return tau / (1.0 + tau) if model == "continuous" else 1.0


@dataclass
class Population:
    density_per_um2: float
    photons_mean: float  # per emitter-frame, photo-electrons
    photons_median: float
    full_frame_photons: float  # a whole frame on: mean, and relative spread
    full_frame_spread: float
    model: str  # blinking: continuous or frames
    mean_on_frames: float
    persistence: float  # the data's
    errors: dict
    rounds: list

    def photophysics(self, quantum_efficiency: float = 1.0) -> dict:
        """The config section the simulations of training sets use (photons in photons, not electrons)."""
        m = self.full_frame_photons / quantum_efficiency
        section = {"model": self.model, "mean_on_frames": round(self.mean_on_frames, 3)}
        if self.model == "continuous":
            section["mean_blinks"] = 1.0
        section["photons"] = {"distribution": "normal", "mean": round(m, 1), "std": round(self.full_frame_spread * m, 1)}
        return section


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

    def statistics(self, model: str, d: float, m: float, tau: float) -> dict:
        """Simulate ``d`` emitters/µm² of ``model`` blinking (mean on-time ``tau``; continuous: one blink) with
        whole-frame photons ``m`` ± SPREAD, and measure the data's detection statistics on the stack. The
        stack and its spots stay in ``"stack"`` for :meth:`add_fits`."""
        from dstorm.estimation.conditions import detect_spots
        from dstorm.simulation.simulate import Simulator

        ds = copy.deepcopy(self.base)
        ds["photophysics"] = {
            "model": model, "mean_on_frames": tau, "mean_off_frames": 10.0, "mean_blinks": 1.0,
            "photons": {"distribution": "normal", "mean": m, "std": SPREAD * m},
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
        det = detect_spots(frames)
        photons = drawn.events.photons
        return {
            "detections_per_frame": detections_per_64x64(len(det.strong), n_frames, h, w),
            "persistence": persistence(det.strong, n_frames, (h, w))[0],
            "truth_mean": float(photons.mean()) if len(photons) else float("nan"),
            "truth_median": float(np.median(photons)) if len(photons) else float("nan"),
            "stack": (frames, det, adu_per_electron(ds["camera"])),
        }

    def add_fits(self, st: dict) -> dict:
        """``st`` (from :meth:`statistics`) with the median and spread of the photo-electrons of its stack's
        isolated spots that pass the fit checks (NaN for fewer than 10): the fits are most of the cost, so
        only the stack the density search chose is fitted."""
        from dstorm.estimation.conditions import EstimationError, fit_isolated_spots, noise_line

        frames, det, gain = st["stack"]
        try:
            found = fit_isolated_spots(frames, det.strong, det.faint, noise_line(frames), seed=0, **self.fit_options)
            fitted = found.fits.amplitude[found.good] / gain
            sides = track_sides(det.strong, found.spots.select(found.good), len(frames), frames.shape[1:])
        except EstimationError:
            fitted, sides = np.zeros(0), np.zeros(0, dtype=int)
        return {**st, "fitted_median": float(np.median(fitted)) if len(fitted) >= 10 else float("nan"),
                "fitted_spread": fitted_spread(fitted), "end_ratio": end_ratio(fitted, sides)}  # fmt: skip


def _bracket(values: np.ndarray, target: float) -> tuple[int, int, float]:
    """(i, j, w): the neighbours i, i + 1 whose values bracket ``target`` and the weight of j in a linear
    interpolation; outside the range, the nearer end (i = j)."""
    ok = np.flatnonzero(np.isfinite(values))
    for a, b in zip(ok[:-1], ok[1:]):
        if (values[a] - target) * (values[b] - target) <= 0:
            return int(a), int(b), 0.0 if values[b] == values[a] else float(np.clip((target - values[a]) / (values[b] - values[a]), 0, 1))
    end = int(ok[np.argmin(np.abs(values[ok] - target))]) if len(ok) else 0
    return end, end, 0.0


def estimate_population(
    *, signal_e_per_um2: float, signal_se: float, fitted_photons_e: np.ndarray, fitted_sides: np.ndarray, median_se: float,
    detections_per_frame: float, detections_se: float, persistence_data: tuple[float, float], camera: dict,
    sigma_nm: float, background_e: float, pixel_size_nm: float, shape, seed: int = 0, fit_options: dict | None = None,
) -> Population | None:  # fmt: skip
    """Fit density, photons and blinking to the data's statistics (see the module docstring); None where no
    simulation of the estimated conditions gives spots to fit (the caller keeps its first guess).

    ``signal_e_per_um2``: mean photo-electrons above background per frame per µm² (and its SE);
    ``fitted_photons_e``: the photo-electrons of the data's isolated spots that passed the fit checks (and
    the SE of their median), and their :func:`track_sides`; ``detections_per_frame``: spots detected per frame, per 64 × 64 px (and its SE);
    ``persistence_data``: :func:`persistence` of the data's spots (value, SE); ``camera``: the estimated
    camera as a config section; ``shape``: (frames, height, width) of the data."""
    sims = _Simulations(camera=camera, sigma_nm=sigma_nm, background_e=background_e, pixel_size_nm=pixel_size_nm,
                        shape=shape[1:], frames=shape[0], seed=seed, fit_options=fit_options or {})  # fmt: skip
    target_m = float(np.median(fitted_photons_e))
    p_data, p_se = persistence_data
    q_data = fitted_spread(fitted_photons_e)
    r_data = end_ratio(fitted_photons_e, fitted_sides)
    rounds: list = []
    families = []
    for model in MODELS:
        candidates = []
        for tau in ON_TIMES:
            # the signal fixes the photons once the density is chosen, so the search is over the density
            # alone: where the simulation detects as many spots per frame as the data (secant steps on
            # log D against log d; D rises about as d^0.3 at 5/µm² while M hardly moves)
            fraction = on_fraction(model, tau)
            d0 = signal_e_per_um2 / (target_m * fraction)
            tried = []

            def photons(d):  # whole-frame photons that give the data's signal at density d
                return signal_e_per_um2 / (d * fraction)

            def miss(trial):  # log of the simulation's detections over the data's
                return np.log(max(trial[1]["detections_per_frame"], 1e-9) / detections_per_frame)

            def run(d):  # the density search needs the detections only: no fits
                st = sims.statistics(model, d, photons(d), tau)
                tried.append((d, st))
                rounds.append({"model": model, "mean_on_frames": tau, "density": d, "full_frame_photons": photons(d),
                               **{k: st[k] for k in ("detections_per_frame", "persistence")}})  # fmt: skip

            run(0.4 * d0)
            run(0.8 * d0)
            for _ in range(ROUNDS - 2):
                (d1, s1), (d2, s2) = sorted(tried, key=lambda x: abs(miss(x)))[:2]
                y1, y2 = miss((d1, s1)), miss((d2, s2))
                if y1 == y2 or abs(y1) < 0.5 * detections_se / detections_per_frame:
                    break  # (matched within half the data's own standard error: closer is noise)
                run(float(np.clip(np.exp(np.log(d1) - y1 * (np.log(d2) - np.log(d1)) / (y2 - y1)), d0 / 10, d0 * 3)))
            d, st = min(tried, key=lambda x: abs(miss(x)))
            st = sims.add_fits(st)
            log.info("population, %s blinking, mean on-time %g frames: density %.4g /µm², whole-frame photons %.5g, "
                     "%.1f detections per frame (data %.1f), persistence %.3f (data %.3f), median fitted %.4g (data %.4g), "
                     "spread %.3f (data %.3f), run ends / middles %.3f (data %.3f)", model, tau, d, photons(d),
                     st["detections_per_frame"], detections_per_frame, st["persistence"], p_data, st["fitted_median"],
                     target_m, st["fitted_spread"], q_data, st["end_ratio"], r_data)  # fmt: skip
            candidates.append({"tau": tau, "d": d, "m": photons(d), "p": st["persistence"], "M": st["fitted_median"],
                               "q": st["fitted_spread"], "r": st["end_ratio"], "mean": st["truth_mean"],
                               "median": st["truth_median"]})  # fmt: skip
            if st["persistence"] >= p_data:
                break  # persistence rises with the on-time: the longer ones cannot bracket the data's
        # the on-time at which the simulations' spots persist as the data's do, in log(on-time)
        i, j, w = _bracket(np.array([c["p"] for c in candidates]), p_data)
        a, b = candidates[i], candidates[j]
        # (a statistic that one end lacks, e.g. no spot fitted in a crowded simulation, is the other end's)
        value = {k: float(np.nansum([(1 - w) * a[k], w * b[k]]) / np.nansum([(1 - w) * np.isfinite(a[k]), w * np.isfinite(b[k])]))
                 if np.isfinite(a[k]) or np.isfinite(b[k]) else float("nan") for k in ("d", "m", "mean", "median", "M", "q", "r")}  # fmt: skip
        value["tau"] = float(np.exp((1 - w) * np.log(a["tau"]) + w * np.log(b["tau"])))
        dp = abs(b["p"] - a["p"]) if j != i else float("nan")
        value["d_from_tau_se"] = abs(b["d"] - a["d"]) * min(p_se / dp, 1.0) if np.isfinite(dp) and dp > 0 else 0.0
        families.append((model, value))
    usable = [(model, v) for model, v in families if np.isfinite(v["q"]) and v["q"] > 0]
    if not usable:
        return None
    # the blinking model whose fitted spots look like the data's at the chosen on-time: where runs of frames
    # are long enough, by the brightness of the runs' ends against their middles (partial frames at the ends
    # of continuous blinking's on-times; whole frames as bright at the ends), which does not depend on the
    # spread of a whole frame's photons; otherwise by the spread of all fitted photons (continuous blinking's
    # partial frames make a broad distribution; whole frames one as narrow as the photons' own spread)
    by_ends = np.isfinite(r_data) and r_data > 0 and all(np.isfinite(v["r"]) and v["r"] > 0 for _, v in usable)
    statistic, data_value = ("r", r_data) if by_ends else ("q", q_data)
    model, value = min(usable, key=lambda f: abs(np.log(f[1][statistic] / data_value)))
    log.info("population: blinking model chosen by %s (data %.3f; %s)", "the run ends' brightness" if by_ends else
             "the fitted photons' spread", data_value, ", ".join(f"{m} {v[statistic]:.3f}" for m, v in usable))  # fmt: skip
    rel = float(np.hypot(signal_se / signal_e_per_um2, detections_se / detections_per_frame / DETECTION_SLOPE))
    rel = float(np.hypot(rel, value["d_from_tau_se"] / value["d"]))
    errors = {
        "density_per_um2": float(rel * value["d"]),
        "photons_mean": float(value["mean"] * np.hypot(rel, signal_se / signal_e_per_um2)),
        "photons_median": float(value["median"] * np.hypot(rel, median_se / target_m)),
    }
    log.info("population: %s blinking, mean on-time %.3g frames (persistence %.3f ± %.3f), density %.4g ± %.2g /µm², "
             "%.5g photo-electrons per emitter-frame (fitted spots %.4g, data %.4g)", model, value["tau"], p_data, p_se,
             value["d"], errors["density_per_um2"], value["mean"], value["M"], target_m)  # fmt: skip
    return Population(
        density_per_um2=float(value["d"]), photons_mean=float(value["mean"]), photons_median=float(value["median"]),
        full_frame_photons=float(value["m"]), full_frame_spread=SPREAD, model=model, mean_on_frames=value["tau"],
        persistence=p_data, errors=errors, rounds=rounds,
    )  # fmt: skip
