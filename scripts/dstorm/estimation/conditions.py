"""Imaging conditions from a raw acquisition: camera, background, PSF width, photons and density.

The estimator needs only the frames (in ADU) and the camera pixel size:

1. **Spots.** Local maxima of a white top-hat of the smoothed frames. The threshold starts at Otsu's split
   of the maxima and settles at 6 × the smoothed frame's noise, measured away from the detections.
   Spots kept for fitting have no other detection within ``isolation_px``.
2. **Photon transfer.** A high-pass filter (a 6th difference along rows and columns) removes the spots and
   the background and leaves the noise; its variance against the local mean over every pixel position
   gives the line ``var = k·m + B`` (:func:`noise_line`). It needs no background region and no isolated
   spot, so it holds at any density.
3. **Background samples.** Pixel-frames whose 8 neighbours (the pixel itself left out) show no
   signal (:func:`quiet_neighbourhood`): their cumulants κ1 (mean), κ2 (variance), κ3 (third cumulant),
   pooled per pixel over time with each pixel's own mean removed. Chosen without looking at the pixel
   itself, they are pure background noise even where spots crowd, and κ3 is not clipped.
4. **Camera.** With ``o`` the offset, ``G`` the ADU per photo-electron, ``x = κ1 − o``, the background obeys
   ``κ2 = F·G·x + r²`` and ``κ3 = c·(F·G)²·x``: an EMCCD amplifies each electron by an exponential
   (F = 2, c = 1.5), an sCMOS does not (F = 1, c = 1) and adds Gaussian read noise ``r``. The ratio
   ``κ3 / (k·κ2)`` (1.5 for an EMCCD, at most 1 for an sCMOS) tells the type when the config does not.
   sCMOS: ``F·G = k`` from the line and ``o = κ1 − κ3 / k²``. EMCCD: the read noise is negligible, so
   ``o = κ1 − κ2 / (F·G)``, with ``F·G`` from the line or from ``κ3 / (1.5·κ2)``, whichever a bootstrap
   over frames finds more precise (the background's where it is plentiful, the line's where spots crowd).
5. **PSF and photons.** A second fit of each spot weighted with the line's variance; spots whose reduced
   chi-square says they hold a neighbour, or whose width is more than 10 % off the most common width (two
   emitters fitted as one), are dropped. σ and photons are the medians over the rest; photons =
   amplitude / G / quantum efficiency.
6. **Background and density.** ``(κ1 − o) / G`` photo-electrons per pixel. A first guess of the density is
   the photons of a frame above the background divided by the median photons of a fitted spot, per µm²;
   it is biased where spots crowd (only bright spots stay isolated) and with real blinking (most
   emitter-frames are partial and dim). With ``population=True`` (``estimate.density: simulation``), step 4
   of :mod:`dstorm.estimation.population` replaces it (and the photons per emitter-frame) by fitting the
   simulator to the data: the photons and density that give the data's signal and its fluctuation (each
   pixel's variance over time less the camera's noise, which is E[B²]/E[B] of an emitter-frame's photons B
   at any density), and the blinking model and mean on-time whose simulated stacks give the data's
   frame-to-frame persistence of spots and brightness of fitted spots.

The steps are functions of their own: :func:`detect_spots`, :func:`noise_line` and the camera fit,
:func:`fit_isolated_spots`, and :func:`dstorm.estimation.population.estimate_population`.

Standard errors come from bootstraps (over spots, over frames; seeded). Warnings flag what the data cannot
support; with too few background samples (very dense or very short data), the camera and everything in
photons is not estimated and the warning says which config keys to type instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, special

from dstorm.cameras import EXCESS_NOISE
from dstorm.errors import InputError
from dstorm.estimation.spots import cut_windows, spot_maxima, fit_spots, isolated, otsu_threshold

__all__ = ["EstimationError", "Estimates", "estimate_conditions", "EXCESS_NOISE", "detect_spots", "fit_isolated_spots",
           "simulator_camera", "DEFAULT_EM_GAIN"]

log = logging.getLogger(__name__)



class EstimationError(InputError):
    """The data cannot support an estimate at all (the message says which and why)."""


@dataclass
class Estimates:
    """``values`` (see :func:`estimate_conditions`), their standard ``errors``, ``warnings`` for the user,
    and ``diagnostics``: ``quality`` (counts and fit figures, JSON-ready) and ``fits`` (arrays for plots)."""

    values: dict[str, Any]
    errors: dict[str, float]
    warnings: list[str]
    diagnostics: dict[str, Any] = field(default_factory=dict)


#: Frames processed at a time where a whole stack's temporaries would be large.
CHUNK_FRAMES = 64


def _chunks(t: int):
    return (slice(first, first + CHUNK_FRAMES) for first in range(0, t, CHUNK_FRAMES))


#: Order of the binomial difference filter that isolates the noise (see :func:`noise_line`).
NOISE_FILTER_ORDER = 6


@dataclass
class NoiseLine:
    """The photon-transfer line ``variance = slope·mean + intercept`` (ADU², ADU) measured by
    :func:`noise_line`, with the per-frame sums that a bootstrap over frames needs, and a binned curve
    (mean, variance) for the figure."""

    slope: float
    intercept: float
    samples: int
    frame_sums: np.ndarray  # (T, 5): n, Σx, Σv, Σx², Σx·v per frame
    curve: np.ndarray  # (bins, 2)

    @staticmethod
    def fit(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slope, intercept) by least squares from summed ``frame_sums`` (last axis), batched."""
        n, sx, sv, sxx, sxv = np.moveaxis(sums, -1, 0)
        slope = (sxv - sx * sv / n) / (sxx - sx**2 / n)
        return slope, (sv - slope * sx) / n


def _difference_taps(order: int) -> np.ndarray:
    k = np.arange(order + 1)
    return (-1.0) ** k * special.comb(order, k)


def noise_line(frames: np.ndarray, *, order: int = NOISE_FILTER_ORDER, saturation: float | None = None, bins: int = 30) -> NoiseLine:
    """Photon transfer from every pixel of every frame: ``var = k·m + B``, at any density.

    The separable ``order``-th difference ``h ⊗ h`` (binomial taps 1, −6, 15, −20, 15, −6, 1) passes
    almost nothing of a smooth image: of a Gaussian PSF of σ ≈ 1 px, about 10⁻⁴ of its power and less of the
    background. What is left is noise: ``d = Σ h_p y_p`` has ``E[d²] = Σ h_p² var_p``. With ``var = k·m + B``
    per pixel, ``v = d² / Σh²`` has mean ``k·x + B`` where ``x = Σ h_p² y_p / Σh²`` is the pixels' own
    h²-weighted mean, measured without bias from the same data. Ordinary least squares of v on x over all
    positions gives (k, B) with no background region and no isolated spot needed. It is unweighted on
    purpose: weights that favour dim positions favour the range where x's own noise, correlated with d²
    through the noise's skew, biases the slope. Positions that touch a saturated pixel are left out.
    """
    h = _difference_taps(order)
    norm = float(np.sum(h**2)) ** 2
    half = order // 2
    inner = (slice(None), slice(half, -half), slice(half, -half))

    def apply(image, taps):
        return ndimage.correlate1d(ndimage.correlate1d(image, taps, axis=1), taps, axis=2)[inner]

    t = len(frames)
    sums = np.zeros((t, 5))
    xs, vs = [], []
    stride = max(1, t * (frames.shape[1] - order) * (frames.shape[2] - order) // 200_000)
    for part in _chunks(t):
        chunk = frames[part]
        v = apply(chunk, h) ** 2 / norm
        x = apply(chunk, h**2) / norm
        ok = np.ones_like(x, dtype=bool)
        if saturation is not None:
            ok = ~ndimage.maximum_filter(chunk >= saturation, size=(1, order + 1, order + 1))[inner]
        x, v = np.where(ok, x, 0.0), np.where(ok, v, 0.0)
        sums[part] = np.stack([ok.sum(axis=(1, 2)), x.sum(axis=(1, 2)), v.sum(axis=(1, 2)),
                               (x**2).sum(axis=(1, 2)), (x * v).sum(axis=(1, 2))], axis=1)  # fmt: skip
        xs.append(x[ok][::stride])  # about 200 000 positions for the figure's binned curve
        vs.append(v[ok][::stride])
    slope, intercept = NoiseLine.fit(sums.sum(axis=0))
    x, v = np.concatenate(xs), np.concatenate(vs)
    order_ = np.argsort(x)
    parts = np.array_split(order_, bins) if len(x) >= bins else [order_]
    curve = np.array([[x[b].mean(), v[b].mean()] for b in parts if len(b)])
    return NoiseLine(float(slope), float(intercept), int(sums[:, 0].sum()), sums, curve)


def power_sums(frames: np.ndarray, free: np.ndarray, centre: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Sums over frames of the powers 0–3 of ``frames − centre`` where ``free``, per pixel: (4, H·W); with
    ``counts`` (B, T), a bootstrap's frame multiplicities, one sum per replicate: (4, B, H·W). They give
    each pixel's temporal cumulants in :func:`pooled_cumulants`."""
    total = 0.0
    for part in _chunks(len(frames)):
        f = free[part].reshape(len(free[part]), -1)
        d = np.where(f, (frames[part] - centre).reshape(f.shape), 0.0)
        powers = np.stack([f.astype(np.float64), d, d**2, d**3])
        total = total + (powers.sum(axis=1) if counts is None else counts[:, part] @ powers)
    return total


def pooled_cumulants(sums: np.ndarray, centre: np.ndarray | float = 0.0, min_samples: int = 5) -> tuple[np.ndarray, ...]:
    """Pooled per-pixel k-statistics κ1, κ2, κ3 from power sums (4, ..., pixels) about ``centre`` (per
    pixel), and the samples used.

    Each pixel's own mean is removed, so a spatially varying background does not inflate the variance;
    the cumulants are linear in the pixel's photon level, so their sample-weighted means keep the camera's
    relations. Leading axes (a bootstrap's replicates) are kept."""
    n, s1, s2, s3 = sums
    use = n >= min_samples
    nn = np.where(use, n, 3.0)
    mean = s1 / nn
    m2 = s2 / nn - mean**2
    m3 = s3 / nn - 3 * mean * s2 / nn + 2 * mean**3
    k2 = nn / (nn - 1) * m2
    k3 = nn**2 / ((nn - 1) * (nn - 2)) * m3
    w = np.where(use, n, 0.0)
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k1 = (w * (mean + np.ravel(centre))).sum(axis=-1) / total
        return k1, (w * k2).sum(axis=-1) / total, (w * k3).sum(axis=-1) / total, total


def background_moments(frames: np.ndarray, free: np.ndarray, min_samples: int = 5) -> dict[str, Any]:
    """Pooled per-pixel temporal cumulants of the background samples ``free`` (see :func:`pooled_cumulants`),
    in ADU, and each pixel's mean (NaN where it has fewer than ``min_samples``)."""
    n = free.sum(axis=0)
    total = sum(np.where(free[part], frames[part], 0.0).sum(axis=0) for part in _chunks(len(frames)))
    mean_map = np.where(n >= min_samples, total / np.maximum(n, 1), np.nan)
    centre = np.nan_to_num(mean_map, nan=float(np.nanmean(mean_map)) if np.isfinite(mean_map).any() else 0.0)
    k1, k2, k3, samples = pooled_cumulants(power_sums(frames, free, centre), centre, min_samples)
    return {"k1": float(k1), "k2": float(k2), "k3": float(k3), "samples": int(samples),
            "pixels": int((n >= min_samples).sum()), "mean_map": mean_map, "centre": centre}  # fmt: skip


def quiet_neighbourhood(frames: np.ndarray, level: np.ndarray, variance: np.ndarray, *, radius: int = 1, threshold: float = 1.5) -> np.ndarray:
    """Pixel-frames whose neighbours show no signal: the mean of the (2·radius + 1)² square around the
    pixel, the pixel itself left out, lies within ``threshold`` standard errors of the background
    ``level`` (H, W) whose per-pixel noise ``variance`` is given.

    The pixel's own value takes no part in its choice, so its chosen samples are background noise with
    unbiased cumulants (choosing on the value itself would clip the noise's tail and bias κ3). An emitter
    near enough to put a photo-electron into the pixel (≈ 3.5 px for σ ≈ 1.1 px) puts tens into its nearest
    neighbours and is not missed, as spot detection misses emitters merged into a brighter neighbour's blob
    where spots crowd. What light is left biases the offset only through its spread (o − G·κ3 of the
    left-over photo-electrons; their mean cancels, its shot noise being the camera's too): 3 × 3 and 1.5
    standard errors keep twice the samples of a 5 × 5 square at 3 and that bias near 0.1·G ADU at 4/µm².
    """
    size = 2 * radius + 1
    count = ndimage.uniform_filter(np.ones(frames.shape[1:]), size=size, mode="constant") * size**2 - 1
    limit = level + threshold * np.sqrt(np.maximum(variance, 0.0) / count)
    out = np.empty(frames.shape, dtype=bool)
    for part in _chunks(len(frames)):
        box = ndimage.uniform_filter(frames[part], size=(1, size, size), mode="constant") * size**2
        out[part] = (box - frames[part]) / count < limit
    return out


def _level_map(mean_map: np.ndarray, sigma_px: float = 3.0) -> np.ndarray:
    """A pixel-mean map smoothed over ``sigma_px``, its gaps (NaN) filled from their surroundings."""
    ok = np.isfinite(mean_map)
    num = ndimage.gaussian_filter(np.where(ok, mean_map, 0.0), sigma_px)
    den = ndimage.gaussian_filter(ok.astype(np.float64), sigma_px)
    filled = num / np.maximum(den, 1e-12)
    return np.where(den > 1e-6, filled, np.nanmean(mean_map) if ok.any() else np.nan)


#: Noise of a Gaussian-smoothed (sigma 1 px) white-noise image per unit pixel noise: 1 / (2 √π σ).
SMOOTH_NOISE_GAIN = 1.0 / (2.0 * np.sqrt(np.pi))


#: The fewest fitted spots an estimate is made from (below 100 it comes with a warning).
MIN_SPOTS = 20

#: The fewest background samples (pixel-frames with quiet neighbours) a camera calibration is made from: the
#: offset rests on their third cumulant.
MIN_BACKGROUND_SAMPLES = 2000

#: The third-cumulant ratio κ3 / (k·κ2) above which the camera is taken for an EMCCD (1.5; an sCMOS ≤ 1).
EMCCD_RATIO = 1.25

#: Bootstrap replicates (over frames) for the camera's standard errors.
BOOTSTRAP = 100

#: Reduced chi-square (of the fit weighted with the photon-transfer line) below which a spot counts as a
#: single emitter; where fewer than CLEAN_SPOTS pass, the CLEAN_SPOTS best-fitting ones are used.
CHI2_LIMIT = 1.5
CLEAN_SPOTS = 30

#: Spots whose fitted width is within this fraction of the most common width count as single emitters.
SINGLE_WIDTH = 0.1


def width_mode(sigma: np.ndarray) -> float:
    """The most common fitted width: the peak of a histogram of log σ (bins of 1 %) smoothed over ±3 %."""
    logs = np.log(sigma[np.isfinite(sigma) & (sigma > 0)])
    edges = np.arange(logs.min(), logs.max() + 0.02, 0.01)
    hist, edges = np.histogram(logs, edges)
    smooth = ndimage.gaussian_filter1d(hist.astype(np.float64), 3.0)
    i = int(np.argmax(smooth))
    return float(np.exp(0.5 * (edges[i] + edges[i + 1])))


def _signal_mask(shape, spots, hats, hat_threshold, radius_px):
    """Pixels within ``radius_px`` of a spot, or within 2 px of a top-hat value above ``hat_threshold`` (the
    shoulders of spots merged with a brighter neighbour, which have no maximum of their own)."""
    mask = np.zeros(shape, dtype=bool)
    mask[spots.frame, spots.row, spots.col] = True
    mask = ndimage.binary_dilation(mask, structure=_disk(radius_px)[None])
    return mask | ndimage.binary_dilation(hats > hat_threshold, structure=_disk(2)[None])


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy**2 + xx**2 <= radius**2


#: EM gain written into an estimated EMCCD camera when none is typed: only the product em_gain / e_per_adu
#: (the ADU per photo-electron that the data show) and the excess noise matter to the simulation.
DEFAULT_EM_GAIN = 100.0


def simulator_camera(values: dict[str, Any], *, quantum_efficiency: float = 1.0, em_gain: float | None = None,
                     integer_data: bool = True) -> dict[str, Any]:  # fmt: skip
    """The estimated camera (``values`` of :func:`estimate_conditions`) as the simulator's camera section."""
    gain = values["gain_adu_per_e"]
    camera: dict[str, Any] = {
        "model": values["camera_model"],
        "quantum_efficiency": float(quantum_efficiency),
        # the simulator's ADU are floor(electrons / e_per_adu + baseline): the mean is baseline - 0.5
        "baseline_adu": round(values["offset_adu"] + (0.5 if integer_data else 0.0), 3),
    }
    if not np.isfinite(gain):
        e_per_adu = float("nan")
    elif values["camera_model"] == "emccd":
        em_gain = float(em_gain or DEFAULT_EM_GAIN)
        e_per_adu = em_gain / gain
        camera.update(em_gain=em_gain, e_per_adu=round(e_per_adu, 5), spurious_charge_e=0.0)
    else:
        e_per_adu = 1.0 / gain
        camera.update(e_per_adu=round(e_per_adu, 5))
    camera["read_noise_e"] = round(values["read_noise_adu"] * e_per_adu, 4)
    return camera


@dataclass
class Detections:
    """Step 1 (:func:`detect_spots`): local maxima above the faint threshold, the strong ones (twice it) that
    may be fitted, and the moments of the pixels far from any of them (a first look at the background)."""

    faint: Any
    strong: Any
    threshold: float
    background: dict[str, Any]


def detect_spots(frames: np.ndarray, *, mask_px: int = 5) -> Detections:
    """Local maxima of a white top-hat of the smoothed frames. The threshold starts at Otsu's split of the
    maxima / 3, then settles at 6 × the smoothed frame's noise, measured on the pixels farther than
    ``mask_px`` from every detection (3 rounds)."""
    t, h, w = frames.shape
    maxima, hats = spot_maxima(frames)
    first_threshold = faint_threshold = otsu_threshold(maxima.score) / 3
    for round_ in range(4):
        faint = maxima.select(maxima.score > faint_threshold)
        mask = _signal_mask(frames.shape, faint, hats, faint_threshold, mask_px)
        bg = background_moments(frames, ~mask)
        if not np.isfinite(bg["k2"]):  # no background left to measure the noise on: keep the first guess
            break
        if round_ < 3:
            faint_threshold = 6 * SMOOTH_NOISE_GAIN * np.sqrt(bg["k2"])
            log.debug("threshold round %d: %.4g (first %.4g), background %.1f%%", round_, faint_threshold, first_threshold, 100 * (~mask).mean())
    strong = maxima.select(maxima.score > 2 * faint_threshold)
    log.info(
        "%d frames of %d×%d px: %d spots above %.4g (top-hat, file units), %d fainter maxima above %.4g",
        t, h, w, len(strong), 2 * faint_threshold, len(faint) - len(strong), faint_threshold,
    )  # fmt: skip
    return Detections(faint=faint, strong=strong, threshold=float(faint_threshold), background=bg)


@dataclass
class SpotFit:
    """Step 3 (:func:`fit_isolated_spots`): the isolated spots, their windows and fits, which fits pass the
    checks (``good``), and the warnings."""

    spots: Any
    windows: np.ndarray
    fits: Any
    good: np.ndarray
    warnings: list[str]


def fit_isolated_spots(
    frames: np.ndarray, strong, faint, line: NoiseLine, *, isolation_px: float = 4.0, max_spots: int = 5000,
    seed: int = 0, half: int = 3,
) -> SpotFit:  # fmt: skip
    """Fit the strong spots with no other detection within ``isolation_px``: an unweighted integrated-Gaussian
    fit, then one weighted with the photon-transfer line's variance whose reduced chi-square flags windows
    holding a neighbour; spots more than 10 % off the most common width (two emitters fitted as one) are
    dropped. Raises :class:`EstimationError` when too few spots are left."""
    t, h, w = frames.shape
    warnings: list[str] = []
    spots = strong.select(isolated(strong, faint, radius_px=isolation_px, shape=(h, w), margin_px=half))
    if len(spots) > max_spots:
        spots = spots.select(np.sort(np.random.default_rng(seed).choice(len(spots), max_spots, replace=False)))
    if len(spots) < 10:
        raise EstimationError(
            f"only {len(spots)} isolated spots in {t} frames (of {len(strong)} detected): too few to fit the PSF; "
            "use more frames or type the conditions into the config"
        )
    log.info("%d isolated spots (no other detection within %g px) go to the fits", len(spots), isolation_px)
    windows = cut_windows(frames, spots, half)
    fit1 = fit_spots(windows, sigma0=1.0)
    if line.slope > 0:  # weighted by the photon-transfer line; its chi-square flags windows with a neighbour
        var1 = np.maximum(line.slope * fit1.model + line.intercept, 1e-3 * line.slope)
        fit2 = fit_spots(windows, weights=(1.0 / var1).reshape(windows.shape), start=fit1.params())
        # where spots crowd, few windows are free of a neighbour: then the best-fitting CLEAN_SPOTS
        chi2_limit = CHI2_LIMIT
        if np.sum(fit2.ok & (fit2.chi2 < chi2_limit)) < CLEAN_SPOTS and fit2.ok.any():
            chi2_limit = float(np.sort(fit2.chi2[fit2.ok])[min(CLEAN_SPOTS, int(fit2.ok.sum())) - 1])
            warnings.append(
                f"psf/photons: crowded data: fewer than {CLEAN_SPOTS} spots fit a single emitter (reduced chi-square "
                f"< {CHI2_LIMIT}); the {CLEAN_SPOTS} best (up to {chi2_limit:.3g}) are used, so σ and photons may be "
                "biased by neighbours"
            )
        good = fit2.ok & (fit2.chi2 <= chi2_limit)
    else:  # no noise model at all: the unweighted fits, without a chi-square check
        fit2, good = fit1, fit1.ok.copy()
    # only spots of the most common width: where spots crowd, isolated maxima are often two emitters closer
    # than the PSF, fitted as one wider, brighter spot
    if good.any():
        good &= np.abs(fit2.sigma / width_mode(fit2.sigma[good]) - 1) < SINGLE_WIDTH
    if good.sum() < MIN_SPOTS:
        raise EstimationError(
            f"only {int(good.sum())} of {len(spots)} isolated spots passed the fit checks in {t} frames (want >= "
            f"{MIN_SPOTS}): too few to estimate the PSF; use more frames or type the conditions into the config"
        )
    return SpotFit(spots=spots, windows=windows, fits=fit2, good=good, warnings=warnings)


def estimate_conditions(
    frames: np.ndarray,
    *,
    pixel_size_nm: float,
    camera_model: str | None = None,
    quantum_efficiency: float = 1.0,
    saturation: float | None = None,
    gain_adu_per_e: float | None = None,
    offset_adu: float | None = None,
    isolation_px: float = 4.0,
    mask_px: int = 5,
    max_spots: int = 5000,
    seed: int = 0,
    population: bool = False,
) -> Estimates:
    """Estimate the imaging conditions of ``frames`` (T, H, W) in ADU; see the module docstring.

    ``camera_model`` ('emccd'/'scmos') skips inferring the camera type; ``gain_adu_per_e`` and
    ``offset_adu``, where the user knows them, replace the estimates in everything downstream (photons,
    background, density); ``quantum_efficiency`` turns photo-electrons into photons; ``saturation`` is the
    value of a saturated pixel. Raises :class:`EstimationError` when no spot at all can be fitted.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise EstimationError(f"need a stack of at least 2 frames, got shape {frames.shape}")
    t, h, w = frames.shape
    warnings: list[str] = []
    half = 3
    det = detect_spots(frames, mask_px=mask_px)
    faint, strong, bg = det.faint, det.strong, det.background

    # the camera's noise: the photon-transfer line from every pixel, then background samples chosen by
    # their quiet neighbours (starting from the level far from detections, or the frames' low end)
    line = noise_line(frames, saturation=saturation)
    level = _level_map(bg["mean_map"]) if bg["pixels"] else ndimage.gaussian_filter(np.percentile(frames, 10, axis=0), 3.0)
    for _ in range(2):
        free = quiet_neighbourhood(frames, level, line.slope * level + line.intercept)
        bg = background_moments(frames, free)
        if not bg["pixels"]:
            break
        level = _level_map(bg["mean_map"])
    free_fraction = float(free.mean())
    log.info(
        "photon transfer over %d positions: variance = %.4g·mean %+.4g; %d background samples (%.1f%% of "
        "pixel-frames have quiet neighbours), cumulants %.4g, %.4g, %.4g",
        line.samples, line.slope, line.intercept, bg["samples"], 100 * free_fraction, bg["k1"], bg["k2"], bg["k3"],
    )  # fmt: skip

    # a frame bootstrap of the whole calibration, for its standard errors
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    counts = np.stack([np.bincount(rng.integers(0, t, t), minlength=t) for _ in range(BOOTSTRAP)]).astype(np.float64)
    boot_k1, boot_k2, boot_k3, _ = pooled_cumulants(power_sums(frames, free, bg["centre"], counts), bg["centre"])
    boot_slope, boot_intercept = NoiseLine.fit(counts @ line.frame_sums)

    calibrated = bg["samples"] >= MIN_BACKGROUND_SAMPLES and bg["k2"] > 0 and bg["k3"] > 0 and line.slope > 0
    ratio = bg["k3"] / (line.slope * bg["k2"]) if calibrated else float("nan")
    inferred = None
    if calibrated:
        inferred = "emccd" if ratio > EMCCD_RATIO else "scmos"
        if camera_model and camera_model != inferred:
            warnings.append(
                f"camera: the config says {camera_model} but the noise's third cumulant suggests {inferred} "
                f"(ratio {ratio:.2f}; 1.5 for an EMCCD, at most 1 for an sCMOS)"
            )
    model_type = camera_model or inferred
    boot = {}
    if model_type is None or (not calibrated and (gain_adu_per_e is None or offset_adu is None)):
        gain = offset = read_var = float("nan")
        model_type = model_type or "unknown"
    else:
        factor, c3 = EXCESS_NOISE[model_type]

        def camera(k1, k2, k3, slope_line, intercept_line):
            """(gain, offset, read noise²) from the background's cumulants and the photon-transfer line;
            for an EMCCD both ways, (slope from κ3 / (1.5·κ2), or from the line)."""
            gain_ = slope_line / factor if gain_adu_per_e is None else np.full_like(slope_line, gain_adu_per_e)
            offset_ = k1 - k3 / (c3 * (factor * gain_) ** 2) if offset_adu is None else np.full_like(k1, offset_adu)
            if model_type == "emccd":
                # EM gain makes the read noise negligible beside the amplified shot noise: κ2 = k·x and
                # κ3 = 1.5·k²·x give k = κ3 / (1.5·κ2) from the background alone, and with either slope
                # o = κ1 − κ2 / k (κ2 is far less noisy than κ3)
                gain_ = np.stack([k3 / (c3 * k2) / factor if gain_adu_per_e is None else gain_, gain_])
                offset_ = k1 - k2 / (factor * gain_) if offset_adu is None else np.stack([offset_, offset_])
            return gain_, offset_, intercept_line + slope_line * offset_  # read noise²: B = r² − k·o

        cumulants = (np.float64(bg[k]) for k in ("k1", "k2", "k3"))
        gain, offset, read_var = camera(*cumulants, np.float64(line.slope), np.float64(line.intercept))
        if calibrated:
            boot_gain, boot_offset, _ = camera(boot_k1, boot_k2, boot_k3, boot_slope, boot_intercept)
            if model_type == "emccd":
                # the more precise of the two slopes (by the bootstrap): the background's where it is
                # plentiful, the line's where spots crowd
                pick = int(np.argmin(np.nanstd(boot_offset, axis=-1)))
                log.info(
                    "EMCCD gain from the background's cumulants %.4g ± %.2g ADU/e⁻ (offset %.4g ± %.2g), from the "
                    "photon-transfer line %.4g ± %.2g (offset %.4g ± %.2g): using the %s",
                    gain[0], np.std(boot_gain[0]), offset[0], np.std(boot_offset[0]), gain[1], np.std(boot_gain[1]),
                    offset[1], np.std(boot_offset[1]), ("cumulants", "line")[pick],
                )  # fmt: skip
                if abs(gain[0] / gain[1] - 1) > 0.15:
                    warnings.append(
                        f"camera: the background's cumulants give {gain[0]:.3g} ADU/e⁻ but the photon-transfer line "
                        f"{gain[1]:.3g}; the gain is uncertain"
                    )
                gain, offset, read_var = gain[pick], offset[pick], read_var[pick]
                boot_gain, boot_offset = boot_gain[pick], boot_offset[pick]
            boot = {"gain": boot_gain, "offset": boot_offset, "background": (boot_k1 - boot_offset) / boot_gain}
        elif model_type == "emccd":
            gain, offset, read_var = gain[1], offset[1], read_var[1]
        gain, offset, read_var = float(gain), float(offset), float(read_var)

    log.info(
        "camera: %s (third-cumulant ratio %.3g), offset %.4g ADU, %.4g ADU per photo-electron, read noise %.3g ADU",
        model_type, ratio, offset, gain, np.sqrt(max(read_var, 0.0)) if np.isfinite(read_var) else float("nan"),
    )  # fmt: skip

    fitted = fit_isolated_spots(frames, strong, faint, line, isolation_px=isolation_px, max_spots=max_spots, seed=seed)
    warnings += fitted.warnings
    spots, windows, fit2, good = fitted.spots, fitted.windows, fitted.fits, fitted.good
    sigma_px = fit2.sigma[good]
    photons_e = fit2.amplitude[good] / gain
    bg_e = (bg["k1"] - offset) / gain
    # density needs no camera: the frame's ADU above the background level over one spot's ADU
    level_adu = bg["k1"] if np.isfinite(bg["k1"]) else float(np.median(fit2.background[good]))
    signal_adu = frames.sum(axis=(1, 2)) - level_adu * h * w  # (no background sample left: the spot fits' level)
    spot_adu = fit2.amplitude[good]
    area_um2 = h * w * (pixel_size_nm / 1000) ** 2
    if bg["pixels"]:
        bg_map_e = (_level_map(bg["mean_map"]) - offset) / gain
        variation = float((np.percentile(bg_map_e, 99) - np.percentile(bg_map_e, 1)) / 2 / max(bg_e, 1e-9))
    else:
        variation = float("nan")

    # standard errors: bootstrap over spots (σ, photons) and over frames (density, camera), seeded
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    n_good = int(good.sum())
    spot_boot = rng.integers(0, n_good, size=(200, n_good))
    frames_boot = rng.integers(0, t, size=(200, t))

    values = {
        "camera_model": model_type,
        "offset_adu": float(offset),
        "gain_adu_per_e": float(gain),
        "read_noise_adu": float(np.sqrt(max(read_var, 0.0))),
        "psf_sigma_nm": float(np.median(sigma_px) * pixel_size_nm),
        "photons_median": float(np.median(photons_e) / quantum_efficiency),
        "photons_mean": float(np.mean(photons_e) / quantum_efficiency),
        # robust spread (interquartile range / 1.349): a few coincident pairs fitted as one spot do not widen it
        "photons_std": float(np.subtract(*np.percentile(photons_e, [75, 25])) / 1.349 / quantum_efficiency),
        "background_photons_per_px": float(bg_e / quantum_efficiency),
        "background_variation": min(max(variation, 0.0), 1.0) if np.isfinite(variation) else float("nan"),
        "density_per_um2": float(np.mean(signal_adu) / np.median(spot_adu) / area_um2),
    }
    errors = {
        "psf_sigma_nm": float(np.std(np.median(sigma_px[spot_boot], axis=1)) * pixel_size_nm),
        "photons_median": float(np.std(np.median(photons_e[spot_boot], axis=1)) / quantum_efficiency),
        "density_per_um2": float(np.std(np.mean(signal_adu[frames_boot], axis=1) / np.median(spot_adu[spot_boot], axis=1)) / area_um2),
        "density_per_um2_frame_to_frame_sd": float(np.std(signal_adu) / np.median(spot_adu) / area_um2),
    }
    if boot:
        errors["offset_adu"] = float(np.std(boot["offset"]))
        errors["gain_adu_per_e"] = float(np.std(boot["gain"]))
        errors["background_photons_per_px"] = float(np.std(boot["background"]) / quantum_efficiency)
    quality = {
        "frames_used": int(t),
        "spots_detected": int(len(strong)),
        "spots_isolated": int(len(spots)),
        "spots_fitted": n_good,
        "background_fraction": free_fraction,
        "background_samples": int(bg["samples"]),
        "third_cumulant_ratio": float(ratio),
        "inferred_camera_model": inferred,
        "photon_transfer_slope": line.slope,
        "photon_transfer_intercept": line.intercept,
        "photon_transfer_positions": line.samples,
        "background_cumulants_adu": [float(bg["k1"]), float(bg["k2"]), float(bg["k3"])],
    }
    photophysics = pop = None
    if population and np.isfinite(gain) and gain > 0 and np.isfinite(bg_e):
        from dstorm.estimation.population import detections_per_64x64, estimate_population, fluctuation, persistence, track_sides

        signal_e = signal_adu / gain
        fluct = fluctuation(frames, slope=line.slope, intercept=line.intercept, gain=gain)
        quality["fluctuation_e2_per_um2"] = fluct_per_um2 = fluct.value / area_um2
        quality["fluctuation_lags"] = fluct.lags
        pop = estimate_population(
            signal_e_per_um2=float(np.mean(signal_e) / area_um2),
            signal_se=float(np.std(np.mean(signal_e[frames_boot], axis=1)) / area_um2),
            fluctuation_e2_per_um2=fluct_per_um2, fluctuation_se=fluct.se / area_um2,
            fitted_photons_e=photons_e, fitted_sides=track_sides(strong, spots.select(good), t, (h, w)),
            median_se=errors["photons_median"] * quantum_efficiency,
            detections_per_frame=detections_per_64x64(len(strong), t, h, w),
            persistence_data=persistence(strong, t, (h, w)),
            camera=simulator_camera(values), sigma_nm=values["psf_sigma_nm"], background_e=float(bg_e),
            pixel_size_nm=pixel_size_nm, shape=(t, h, w), seed=seed,
            fit_options={"isolation_px": isolation_px, "max_spots": max_spots},
        )  # fmt: skip
        if pop is None:
            warnings.append(
                "density/photons: the frames vary no more than the camera's noise, or no simulation of the estimated "
                "conditions gave spots to fit; the density is the signal above background over the photons of a fitted "
                "spot, which underestimates it where spots crowd"
            )
    if pop is not None:
        quality["density_signal_ratio_per_um2"] = values["density_per_um2"]  # step 4 replaces this first guess
        quality["fitted_photons_median"] = values["photons_median"]
        quality["population_rounds"] = pop.rounds
        values.update(
            density_per_um2=pop.density_per_um2, photons_mean=pop.photons_mean / quantum_efficiency,
            photons_median=pop.photons_median / quantum_efficiency,
            full_frame_photons=pop.full_frame_photons / quantum_efficiency, full_frame_photons_spread=pop.full_frame_spread,
            blinking=pop.model, mean_on_frames=pop.mean_on_frames, persistence=pop.persistence,
        )  # fmt: skip
        errors.update(
            density_per_um2=pop.errors["density_per_um2"], photons_mean=pop.errors["photons_mean"] / quantum_efficiency,
            photons_median=pop.errors["photons_median"] / quantum_efficiency,
        )  # fmt: skip
        photophysics = pop.photophysics(quantum_efficiency)
    if n_good < 100:
        warnings.append(
            f"psf/photons: only {n_good} isolated spots passed the fit checks (want >= 100); sigma, photons, gain "
            "and density are unreliable. Use more frames or give these values in the config."
        )
    if not calibrated:
        warnings.append(
            f"camera: too little background ({bg['samples']} pixel-frames with quiet neighbours in {t} frames, "
            f"want >= {MIN_BACKGROUND_SAMPLES}): the data are too crowded to calibrate the "
            + (
                "camera; the typed camera is used"
                if np.isfinite(gain)
                else "camera, so photons and background are not estimated either. Type the camera (camera.preset, or "
                "camera.model, e_per_adu, em_gain for an EMCCD, and baseline_adu) into the config, or estimate from "
                "more or sparser frames"
            )
        )
    elif boot and errors["background_photons_per_px"] > 0.1 * abs(values["background_photons_per_px"]):
        warnings.append(
            f"camera: the offset is uncertain (± {errors['offset_adu']:.2g} ADU, so the background ± "
            f"{errors['background_photons_per_px']:.2g} photons/px) with {bg['samples']} background samples; "
            "estimate from more frames or type camera.baseline_adu"
        )
    if saturation is not None:
        saturated = float(np.mean(frames >= saturation))
        quality["saturated_fraction"] = saturated
        if saturated > 1e-5:
            warnings.append(
                f"camera: {saturated:.2%} of pixels sit at the saturation value {saturation:g}; photons and "
                "the photon-transfer fit are biased low"
            )
    if np.isfinite(bg_e) and bg_e <= 0:
        warnings.append(f"background: estimated {bg_e:.3g} photo-electrons per pixel; the offset estimate is off")
    log.info(
        "%d spots fitted: PSF sigma %.4g nm, median %.4g photons, background %.4g photons/px, density %.3g /µm²",
        n_good, values["psf_sigma_nm"], values["photons_median"], values["background_photons_per_px"], values["density_per_um2"],
    )  # fmt: skip
    for w_ in warnings:
        log.warning("%s", w_)
    fits = {
        "sigma_px": sigma_px,
        "photons_e": photons_e,
        "windows": windows[good],
        "model": fit2.model[good].reshape(-1, *windows.shape[1:]),
        "noise_curve": line.curve,
    }
    return Estimates(values=values, errors=errors, warnings=warnings,
                     diagnostics={"quality": quality, "fits": fits, "photophysics": photophysics})  # fmt: skip
