"""Step 4 of the estimate: the emitters' density, photons and blinking, by fitting the simulator to the data.

"Signal above background ÷ photons of a fitted spot" is biased at high density and with real blinking: only
isolated spots can be fitted, and where spots crowd the isolated ones that pass the fit checks are the
bright ones; and in real blinking a molecule switches on and off at any time within the exposure, so most
emitter-frames hold a fraction of a whole frame's photons and many are too dim to be fitted at all.

This step asks what population of emitters, seen through the same camera, PSF, background and the same spot
detection and fits, gives the data's statistics:

- ``S``, the mean photo-electrons per frame above the background (camera-calibrated; it does not depend on
  which spots can be fitted): ``S = d · E[B]``, B an emitter-frame's photo-electrons;
- ``V``, the fluctuation (:func:`fluctuation`): each pixel's variance over time less the camera's noise
  at its mean, summed over the pixels. By Campbell's theorem ``V = d · E[B²] · Σh²`` (Σh²,
  :func:`pixel_power`, from the estimated σ) for emitters that switch on independently, at any density, any
  overlap and any structure (each pixel's variance is over its own emitters). So ``V / (S · Σh²)`` is
  E[B²] / E[B] with no selection of isolated spots: for each blinking candidate, whose photons are
  ``B = m · f`` (m a whole frame's photons ± SPREAD, f the on-fraction; E[B] = a·m, E[B²] = b·m² from the
  simulator's own draw), it gives ``m = (V / (S Σh²)) · a / b`` and the density ``d = S / (a m)``. The spots
  detected per frame, to which the density used to be matched, rise only as about d^0.3 at 5/µm² and fall
  again where spots merge, so a few per cent of difference between the data's spot detection and the
  simulations' moved the density by tens of per cent (Picasso's EMCCD stacks at 6/µm²: +48 % and −30 %;
  with the fluctuation −1 % and −4 %); they are still logged beside the simulations' as a check;
- ``P``, the persistence: the fraction of the spots of a frame with a spot within 1.5 px in the next frame,
  in a simulation of the candidate at its density and photons.
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
  The fitted spots' median is not used: it hardly moves between models once the fluctuation fixes the photons.

The blinking models are ``continuous`` (continuous-time blinking, one blink) and ``frames`` (whole frames,
the simulator's other model), each with mean on-times of 0.5, 1, 3, 5, 10 and 30 frames, and whole-frame photons
spread by 20 %. Stacks are simulated with :mod:`dstorm.simulation` (uniform emitters, the estimated camera,
σ and background; common random numbers, so the statistics change smoothly between candidates).

The density is the mean number of emitters on for any part of a frame per µm², the simulator's definition;
photons per emitter-frame are those of the fitted population (its mean and median include the dim partial
frames that no fit sees). Standard errors combine the data's errors of ``S`` and ``V`` and, through the
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

__all__ = ["Population", "Fluctuation", "estimate_population", "fluctuation", "pixel_power", "detections_per_64x64",
           "persistence", "MODELS", "ON_TIMES"]

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
#: Blocks of consecutive frames whose means give the standard error of the fluctuation.
FLUCTUATION_BLOCKS = 10
#: Whole-frame photons of the draw that gives a blinking candidate's photon moments (they scale with it).
REFERENCE_PHOTONS = 1000.0
#: A spot persists if the next frame has a spot within this distance, px.
PERSISTENCE_RADIUS_PX = 1.5
#: Fitted spots at the ends and in the middles of runs that :func:`end_ratio` needs, each.
MIN_RUN_SPOTS = 15


def detections_per_64x64(count: float, frames: int, height: int, width: int) -> float:
    """Detections per frame, scaled to a 64 × 64 px field (the simulations' size), data and simulation alike."""
    return count / frames * (64 * 64) / (height * width)


@dataclass
class Fluctuation:
    """The emitters' share of the frames' temporal variance, summed over the pixels (photo-electrons² per
    frame), its standard error, and the autocovariance lags that corrected it."""

    value: float
    se: float
    lags: int


def fluctuation(frames: np.ndarray, *, slope: float, intercept: float, gain: float, chunk: int = 1 << 22) -> Fluctuation:
    """Σ over pixels of each pixel's variance over time, less the camera's noise at its mean (the photon-transfer
    line ``var = slope·mean + intercept``, ADU), in photo-electrons² (``gain``: ADU per photo-electron).

    For emitters that switch on independently at positions drawn with any (structured) density, a pixel's
    variance over time is, by Campbell's theorem, the density near it × E[B²] × the PSF's square at the
    pixel, B an emitter-frame's photons; summed over the pixels it is N · E[B²] · Σh² (N emitters on per
    frame, Σh² :func:`pixel_power`), whatever their overlap, while the signal is N · E[B]. The shot noise of
    those photons, like the background's, is the camera's, which the line removes.

    An emitter on for several frames makes consecutive frames alike, so the variance about the stack's own
    mean reads low by the variance of that mean, σ²/T · (1 + 2 Σ_k (1 − k/T) ρ_k) (ρ_k the autocorrelation
    at lag k); it is added back from the data's autocovariances, summed up to the first lag whose
    autocovariance is not positive (at most T/4; none for frames that do not persist, where this is the
    usual T − 1 denominator). The standard error comes from :data:`FLUCTUATION_BLOCKS` blocks of
    consecutive frames."""
    t, h, w = frames.shape
    if t < 4 * FLUCTUATION_BLOCKS:
        return Fluctuation(float("nan"), float("nan"), 0)
    acov = np.zeros(t)
    per_frame = np.zeros(t)
    noise = 0.0
    rows = max(1, chunk // (2 * t * w))
    for r0 in range(0, h, rows):
        x = np.asarray(frames[:, r0 : r0 + rows], dtype=np.float64)
        mean = x.mean(axis=0)
        y = x - mean
        noise += float(np.sum(slope * mean + intercept))
        per_frame += (y**2).sum(axis=(1, 2))
        f = np.fft.rfft(y, n=2 * t, axis=0)
        acov += np.fft.irfft(f.real**2 + f.imag**2, n=2 * t, axis=0)[:t].sum(axis=(1, 2))
    c = acov / (t - np.arange(t))  # per pair of frames k apart, about the stack's mean (c[0]: over t)

    def mean_variance(lags):
        # every c_k reads low by the variance of the stack's mean, σ² a / T (a = 1 + 2 Σ (1 − k/T) ρ_k), so
        # G = c_0 + 2 Σ (1 − k/T) c_k ≈ σ² a (1 − W/T), W = 1 + 2 Σ (1 − k/T), and σ² a / T = G / (T − W)
        weights = 1 - np.arange(1, lags + 1) / t
        return (c[0] + 2 * float(np.sum(weights * c[1 : lags + 1]))) / (t - 1 - 2 * float(np.sum(weights)))

    # the sum runs while the autocovariance, corrected by the first pass's variance of the mean, is positive
    lags, floor = 0, 0.0
    for _ in range(2):
        lags = 0
        while lags + 1 <= t // 4 and c[lags + 1] > floor:
            lags += 1
        floor = -mean_variance(lags)
    value = c[0] + mean_variance(lags) - noise
    blocks = np.array([b.mean() for b in np.array_split(per_frame, FLUCTUATION_BLOCKS)])
    se = float(np.std(blocks, ddof=1) / np.sqrt(FLUCTUATION_BLOCKS)) * t / (t - 1)
    return Fluctuation(float(value / gain**2), float(se / gain**2), lags)


def pixel_power(sigma_px: float, offsets: int = 32) -> float:
    """Σ over pixels of h², h a Gaussian PSF of σ = ``sigma_px`` pixels with unit integral, integrated over
    each pixel and averaged over the emitter's position within its pixel (separable: the square of the 1-D
    sum, averaged over ``offsets`` positions). About 1 / (4π (σ² + 1/12))."""
    from scipy.special import ndtr

    u = (np.arange(offsets) + 0.5) / offsets
    reach = int(np.ceil(8 * sigma_px)) + 1
    edges = np.arange(-reach, reach + 2, dtype=float)
    p = ndtr((edges[None, 1:] - u[:, None]) / sigma_px) - ndtr((edges[None, :-1] - u[:, None]) / sigma_px)
    return float(np.mean((p**2).sum(axis=1)) ** 2)


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

    def _draw(self, model: str, d: float, m: float, tau: float):
        """The simulator, its random streams and the emitters of ``d`` emitters/µm² of ``model`` blinking (mean
        on-time ``tau``; continuous: one blink) with whole-frame photons ``m`` ± SPREAD."""
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
        return sim, rngs, sim.draw(rngs, density=d, n_frames=n_frames), n_frames

    def moments(self, model: str, tau: float) -> tuple[float, float]:
        """(E[B], E[B²]) of an emitter-frame's photons B per whole-frame photon (per photon²) of ``model``
        blinking with mean on-time ``tau``, from the simulator's own draw (no frames rendered)."""
        # 60 frames (the fewest a draw has) at this density hold EVENTS_PER_SIMULATION emitter-frames
        d = EVENTS_PER_SIMULATION / (60 * np.prod(self.base["frame_size_px"]) * (self.base["pixel_size_nm"] / 1000) ** 2)
        photons = self._draw(model, d, REFERENCE_PHOTONS, tau)[2].events.photons / REFERENCE_PHOTONS
        return float(np.mean(photons)), float(np.mean(photons**2))

    def statistics(self, model: str, d: float, m: float, tau: float) -> dict:
        """Simulate ``d`` emitters/µm² of ``model`` blinking (mean on-time ``tau``; continuous: one blink) with
        whole-frame photons ``m`` ± SPREAD, and measure the data's detection statistics on the stack. The
        stack and its spots stay in ``"stack"`` for :meth:`add_fits`."""
        from dstorm.estimation.conditions import detect_spots

        sim, rngs, drawn, n_frames = self._draw(model, d, m, tau)
        h, w = self.base["frame_size_px"]
        frames = np.concatenate(list(sim.frames(drawn, n_frames, rngs["camera"]))).astype(np.float64)
        det = detect_spots(frames)
        photons = drawn.events.photons
        return {
            "detections_per_frame": detections_per_64x64(len(det.strong), n_frames, h, w),
            "persistence": persistence(det.strong, n_frames, (h, w))[0],
            "truth_mean": float(photons.mean()) if len(photons) else float("nan"),
            "truth_median": float(np.median(photons)) if len(photons) else float("nan"),
            "stack": (frames, det, adu_per_electron(self.base["camera"])),
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
    *, signal_e_per_um2: float, signal_se: float, fluctuation_e2_per_um2: float, fluctuation_se: float,
    fitted_photons_e: np.ndarray, fitted_sides: np.ndarray, median_se: float, detections_per_frame: float,
    persistence_data: tuple[float, float], camera: dict, sigma_nm: float, background_e: float, pixel_size_nm: float,
    shape, seed: int = 0, fit_options: dict | None = None,
) -> Population | None:  # fmt: skip
    """Fit density, photons and blinking to the data's statistics (see the module docstring); None where the
    data show no fluctuation above the camera's noise or no simulation of the estimated conditions gives spots
    to fit (the caller keeps its first guess).

    ``signal_e_per_um2``: mean photo-electrons above background per frame per µm² (and its SE);
    ``fluctuation_e2_per_um2``: :func:`fluctuation` per µm² (and its SE);
    ``fitted_photons_e``: the photo-electrons of the data's isolated spots that passed the fit checks (and
    the SE of their median), and their :func:`track_sides`; ``detections_per_frame``: spots detected per
    frame, per 64 × 64 px (logged beside the simulations' as a check); ``persistence_data``:
    :func:`persistence` of the data's spots (value, SE); ``camera``: the estimated camera as a config
    section; ``shape``: (frames, height, width) of the data."""
    if not (np.isfinite(fluctuation_e2_per_um2) and fluctuation_e2_per_um2 > 0 and signal_e_per_um2 > 0):
        log.warning("population: no fluctuation above the camera's noise (%.4g e²/µm²) or no signal (%.4g e/µm²)",
                    fluctuation_e2_per_um2, signal_e_per_um2)  # fmt: skip
        return None
    sims = _Simulations(camera=camera, sigma_nm=sigma_nm, background_e=background_e, pixel_size_nm=pixel_size_nm,
                        shape=shape[1:], frames=shape[0], seed=seed, fit_options=fit_options or {})  # fmt: skip
    # E[B²] / E[B] of an emitter-frame's photons, at any density and overlap (Campbell's theorem)
    kappa = pixel_power(sigma_nm / pixel_size_nm)
    brightness = fluctuation_e2_per_um2 / (kappa * signal_e_per_um2)
    target_m = float(np.median(fitted_photons_e))
    p_data, p_se = persistence_data
    q_data = fitted_spread(fitted_photons_e)
    r_data = end_ratio(fitted_photons_e, fitted_sides)
    rounds: list = []
    families = []
    for model in MODELS:
        candidates = []
        for tau in ON_TIMES:
            # the candidate's photon moments give the whole-frame photons m from the brightness, and the
            # signal gives the density: E[B] = a·m, E[B²] = b·m², so m = brightness · a / b, d = S / (a·m)
            a, b = sims.moments(model, tau)
            m = brightness * a / b
            d = signal_e_per_um2 / (a * m)
            st = sims.add_fits(sims.statistics(model, d, m, tau))
            rounds.append({"model": model, "mean_on_frames": tau, "density": d, "full_frame_photons": m,
                           **{k: st[k] for k in ("detections_per_frame", "persistence")}})  # fmt: skip
            log.info("population, %s blinking, mean on-time %g frames: density %.4g /µm², whole-frame photons %.5g, "
                     "%.1f detections per frame (data %.1f), persistence %.3f (data %.3f), median fitted %.4g (data %.4g), "
                     "spread %.3f (data %.3f), run ends / middles %.3f (data %.3f)", model, tau, d, m,
                     st["detections_per_frame"], detections_per_frame, st["persistence"], p_data, st["fitted_median"],
                     target_m, st["fitted_spread"], q_data, st["end_ratio"], r_data)  # fmt: skip
            candidates.append({"tau": tau, "d": d, "m": m, "p": st["persistence"], "M": st["fitted_median"],
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
    # d = S² κ b / (a² V) and the mean photons a·m = V a² / (κ S b): their relative errors
    rel_s, rel_v = signal_se / signal_e_per_um2, fluctuation_se / fluctuation_e2_per_um2
    rel = float(np.hypot(np.hypot(2 * rel_s, rel_v), value["d_from_tau_se"] / value["d"]))
    rel_photons = float(np.hypot(np.hypot(rel_s, rel_v), value["d_from_tau_se"] / value["d"]))
    errors = {
        "density_per_um2": float(rel * value["d"]),
        "photons_mean": float(value["mean"] * rel_photons),
        "photons_median": float(value["median"] * np.hypot(rel_photons, median_se / target_m)),
    }
    log.info("population: %s blinking, mean on-time %.3g frames (persistence %.3f ± %.3f), density %.4g ± %.2g /µm², "
             "%.5g photo-electrons per emitter-frame (fitted spots %.4g, data %.4g)", model, value["tau"], p_data, p_se,
             value["d"], errors["density_per_um2"], value["mean"], value["M"], target_m)  # fmt: skip
    return Population(
        density_per_um2=float(value["d"]), photons_mean=float(value["mean"]), photons_median=float(value["median"]),
        full_frame_photons=float(value["m"]), full_frame_spread=SPREAD, model=model, mean_on_frames=value["tau"],
        persistence=p_data, errors=errors, rounds=rounds,
    )  # fmt: skip
