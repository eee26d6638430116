"""Imaging conditions from a raw acquisition: camera, background, PSF width, photons and density.

The estimator needs only the frames (in ADU) and the camera pixel size:

1. **Spots.** Local maxima of a white top-hat of the smoothed frames. The threshold starts at Otsu's split
   of the maxima and settles at 6 × the smoothed frame's noise, measured on the background it leaves.
   Spots kept for fitting have no other detection within ``isolation_px``.
2. **Background samples.** Pixels farther than ``mask_px`` from every detection and away from bright
   top-hat structure (shoulders of merged spots), pooled per pixel over time: their cumulants κ1 (mean),
   κ2 (variance), κ3 (third cumulant), with each pixel's own mean removed.
3. **Camera.** With ``o`` the offset, ``G`` the ADU per photo-electron, ``x = κ1 − o``, the background obeys
   ``κ2 = F·G·x + r²`` and ``κ3 = c·(F·G)²·x``: an EMCCD amplifies each electron by an exponential
   (F = 2, c = 1.5), an sCMOS does not (F = 1, c = 1) and adds Gaussian read noise ``r``. The ratio
   ``κ3 / (k·κ2)`` (1.5 for an EMCCD, at most 1 for an sCMOS) tells the type when the config does not.
   The photon-transfer slope ``k = F·G`` comes from integrated-Gaussian fits of the spots: their residuals'
   variance against the fitted expected value (exact for a linearised fit, see :func:`photon_transfer`)
   on a line through the background's (κ1, κ2). For an EMCCD the read noise is negligible and the
   background alone gives ``k = κ3 / (1.5·κ2)``. Then ``o = κ1 − κ3 / (c·k²)``.
4. **PSF and photons.** A second fit of each spot weighted with that variance model; spots whose reduced
   chi-square says they hold a neighbour, or whose width is more than 10 % off the most common width (two
   emitters fitted as one), are dropped. σ and photons are the medians over the rest; photons =
   amplitude / G / quantum efficiency.
5. **Background and density.** ``(κ1 − o) / G`` photo-electrons per pixel; the density is the photons of a
   frame above the background divided by the mean photons of one emitter, per µm²: unlike a count of
   detections, it does not saturate where spots overlap.

Standard errors come from bootstraps (over spots, over frames; seeded). Warnings flag what the data cannot
support; where no background region is left (very dense data), the camera and everything in photons is not
estimated and the warning says which config keys to type instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from dstorm.estimation.spots import cut_windows, spot_maxima, fit_spots, isolated, otsu_threshold

__all__ = ["EstimationError", "Estimates", "estimate_conditions", "EXCESS_NOISE"]

log = logging.getLogger(__name__)

#: Excess-noise factor F and third-cumulant ratio c (κ3 = c·k²·(m − o)) of each camera model.
EXCESS_NOISE = {"emccd": (2.0, 1.5), "scmos": (1.0, 1.0)}


class EstimationError(ValueError):
    """The data cannot support an estimate at all (the message says which and why)."""


@dataclass
class Estimates:
    """``values`` (see :func:`estimate_conditions`), their standard ``errors``, ``warnings`` for the user,
    and ``diagnostics``: ``quality`` (counts and fit figures, JSON-ready) and ``fits`` (arrays for plots)."""

    values: dict[str, Any]
    errors: dict[str, float]
    warnings: list[str]
    diagnostics: dict[str, Any] = field(default_factory=dict)


def photon_transfer(resid: np.ndarray, model: np.ndarray, resid_maker: np.ndarray, iterations: int = 3, anchor=None):
    """``(k, c)`` of the variance model ``var = k·m + c`` from fit residuals, exactly for a linearised fit.

    A residual is ``e = M·ε`` (``M`` the fit's residual maker, ``ε`` the pixels' noise), so
    ``E[e_i²] = Σ_j M_ij² (k·m_j + c) = k·Σ_j M_ij² m_j + c·Σ_j M_ij²``: linear in (k, c) with known
    regressors. Weighted least squares (weights 1 / predicted variance², the variance of a squared Gaussian
    residual being 2σ⁴), iterated because the weights depend on the answer.

    ``anchor = (m0, v0)``, a point the line must pass through (the background's mean and variance, which
    pixels far from any spot measure cleanly), leaves only the slope free: faint unmodelled neighbours
    then cannot tilt the line by raising its low end.
    """
    m2 = resid_maker**2
    x1 = np.einsum("npq,nq->np", m2, model).ravel()
    x2 = m2.sum(axis=2).ravel()
    y = (resid**2).ravel()
    if anchor is None:  # y = k·x1 + c·x2
        design, known = np.column_stack([x1, x2]), 0.0
    else:  # c = v0 − k·m0: y − v0·x2 = k·(x1 − m0·x2)
        m0, v0 = anchor
        design, known = (x1 - m0 * x2)[:, None], v0 * x2
    weight = np.ones_like(y)
    for _ in range(iterations):
        sw = np.sqrt(weight)
        coef = np.linalg.lstsq(design * sw[:, None], (y - known) * sw, rcond=None)[0]
        weight = 1.0 / np.maximum(design @ coef + known, 1e-6 * max(abs(coef[0]), 1e-12)) ** 2
    k = float(coef[0])
    return (k, float(coef[1])) if anchor is None else (k, float(v0 - k * m0))


def background_moments(frames: np.ndarray, free: np.ndarray, min_samples: int = 5) -> dict[str, Any]:
    """Pooled per-pixel temporal cumulants (k-statistics) of the background samples ``free``.

    Each pixel's own mean is removed, so a spatially varying background does not inflate the variance;
    the cumulants are linear in the pixel's photon level, so their weighted means keep the camera's
    relations."""
    n = free.sum(axis=0).astype(np.float64)
    x = np.where(free, frames, 0.0)
    mean = x.sum(axis=0) / np.maximum(n, 1)
    d = np.where(free, frames - mean, 0.0)
    m2 = (d**2).sum(axis=0) / np.maximum(n, 1)
    m3 = (d**3).sum(axis=0) / np.maximum(n, 1)
    use = n >= min_samples
    n_u = n[use]
    if not use.any():
        nan = float("nan")
        return {"k1": nan, "k2": nan, "k3": nan, "samples": 0, "pixels": 0, "mean_map": np.full(n.shape, np.nan)}
    k2 = n_u / (n_u - 1) * m2[use]
    k3 = n_u**2 / ((n_u - 1) * (n_u - 2)) * m3[use]
    w = n_u / n_u.sum()
    return {
        "k1": float(np.sum(w * mean[use])),
        "k2": float(np.sum(w * k2)),
        "k3": float(np.sum(w * k3)),
        "samples": int(n_u.sum()),
        "pixels": int(use.sum()),
        "mean_map": np.where(use, mean, np.nan),
    }


#: Noise of a Gaussian-smoothed (sigma 1 px) white-noise image per unit pixel noise: 1 / (2 √π σ).
SMOOTH_NOISE_GAIN = 1.0 / (2.0 * np.sqrt(np.pi))


#: The fewest fitted spots an estimate is made from (below 100 it comes with a warning).
MIN_SPOTS = 20

#: The least fraction of pixel-frames free of spots for a camera calibration.
MIN_BACKGROUND_FRACTION = 0.05

#: The same for an sCMOS, whose gain comes from spot-fit residuals (an EMCCD's from the background alone),
#: and for a camera of unknown type.
SCMOS_MIN_BACKGROUND_FRACTION = 0.15

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
    maxima, hats = spot_maxima(frames)
    # thresholds: start from Otsu's split of the maxima, then 6 × the noise of the smoothed frame, the noise
    # measured on the background samples that the current threshold leaves (3 rounds)
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
    free_fraction = float((~mask).mean())
    log.info(
        "%d frames of %d×%d px: %d spots above %.4g (top-hat, file units), %d fainter maxima above %.4g; "
        "%.1f%% of pixel-frames are background",
        t, h, w, len(strong), 2 * faint_threshold, len(faint) - len(strong), faint_threshold, 100 * free_fraction,
    )  # fmt: skip
    spots = strong.select(isolated(strong, faint, radius_px=isolation_px, shape=(h, w), margin_px=half))
    if len(spots) > max_spots:
        rng = np.random.default_rng(seed)
        spots = spots.select(np.sort(rng.choice(len(spots), max_spots, replace=False)))
    if len(spots) < 10:
        raise EstimationError(
            f"only {len(spots)} isolated spots in {t} frames (of {len(strong)} detected): too few to fit the PSF "
            "and calibrate the camera; use more frames or type the conditions into the config"
        )
    log.info("%d isolated spots (no other detection within %g px) go to the fits", len(spots), isolation_px)
    windows = cut_windows(frames, spots, half)
    flat = windows.reshape(len(windows), -1)
    fit1 = fit_spots(windows, sigma0=1.0)
    # only spots of the most common width: where spots crowd, the isolated maxima are often two emitters
    # closer than the PSF, fitted as one wider, brighter spot. Start from the half with the smallest
    # residuals for their brightness (a crowded window fits worse), then keep those that the current noise
    # model calls clean.
    single = fit1.ok & (np.abs(fit1.sigma / width_mode(fit1.sigma[fit1.ok]) - 1) < SINGLE_WIDTH)
    rough = np.sum((flat - fit1.model) ** 2, axis=1) / np.sum(np.abs(fit1.model - fit1.background[:, None]) + 1, axis=1)
    use = single & (rough <= np.median(rough[single]))
    for _ in range(4):
        k, c = photon_transfer(flat[use] - fit1.model[use], fit1.model[use], fit1.resid_maker[use])
        var1 = np.maximum(k * fit1.model + c, 1e-3 * k)
        chi2 = np.sum((flat - fit1.model) ** 2 / var1, axis=1) / (flat.shape[1] - 5)
        use = single & (chi2 < 1.5)
    ptc_resid, ptc_model, ptc_maker = flat[use] - fit1.model[use], fit1.model[use], fit1.resid_maker[use]
    # below 5 % of background pixels, undetected overlapping spots dominate the background's cumulants:
    # better no camera (the user is told to type it) than a wrong one
    calibrated = bg["samples"] >= 1000 and free_fraction >= MIN_BACKGROUND_FRACTION and bg["k2"] > 0 and k > 0
    ratio, inferred = float("nan"), None
    if calibrated:
        # the line through the background's (mean, variance), fitted to the clean spots
        ratio = bg["k3"] / (k * bg["k2"])  # with the free spot line's slope, the more robust one where spots crowd
        k, c = photon_transfer(ptc_resid, ptc_model, ptc_maker, anchor=(bg["k1"], bg["k2"]))
        inferred = "emccd" if ratio > 1.25 else "scmos"
        if camera_model and camera_model != inferred:
            warnings.append(
                f"camera: the config says {camera_model} but the noise's third cumulant suggests {inferred} "
                f"(ratio {ratio:.2f}; 1.5 for an EMCCD, at most 1 for an sCMOS)"
            )
    model_type = camera_model or inferred
    if free_fraction < SCMOS_MIN_BACKGROUND_FRACTION and (camera_model is None or model_type != "emccd"):
        # an sCMOS's gain rests on the spots' photon transfer, which neighbours bias where spots crowd; and
        # with so little background, the type itself is no safe guess: an EMCCD calibrates here only if typed
        calibrated = False
    if model_type is None or (not calibrated and (gain_adu_per_e is None or offset_adu is None)):
        model_type = camera_model  # a type guessed from crowded data is not reported either
        gain = offset = read_var = float("nan")
        model_type = model_type or "unknown"
    else:
        factor, c3 = EXCESS_NOISE[model_type]
        if calibrated:
            slope = k
            if model_type == "emccd":
                # EM gain makes the read noise negligible beside the amplified shot noise, so the background
                # alone gives the slope: κ2 = k·x and κ3 = 1.5·k²·x, hence k = κ3 / (1.5·κ2). More precise
                # than the spot residuals, which a fit's imperfections inflate or trim.
                slope = bg["k3"] / (c3 * bg["k2"])
                if abs(slope / k - 1) > 0.15:
                    warnings.append(
                        f"camera: the background's cumulants give {slope / factor:.3g} ADU/e⁻ but the spot residuals "
                        f"{k / factor:.3g}; the gain is uncertain"
                    )
        gain = slope / factor if gain_adu_per_e is None else float(gain_adu_per_e)
        offset = bg["k1"] - bg["k3"] / (c3 * (factor * gain) ** 2) if offset_adu is None else float(offset_adu)
        if calibrated:  # read noise: the spot line's intercept c = r² − k·o, or the background's variance
            read_var = c + k * offset if model_type == "emccd" else bg["k2"] - factor * gain * (bg["k1"] - offset)
        else:
            read_var = float("nan")

    log.info(
        "camera: %s (third-cumulant ratio %.3g), offset %.4g ADU, %.4g ADU per photo-electron, read noise %.3g ADU",
        model_type, ratio, offset, gain, np.sqrt(max(read_var, 0.0)) if np.isfinite(read_var) else float("nan"),
    )  # fmt: skip
    if k > 0:  # (without a calibration, the spots' own variance line still weighs pixels and flags blends)
        fit2 = fit_spots(windows, weights=(1.0 / var1).reshape(windows.shape), start=fit1.params())
        good = fit2.ok & (fit2.chi2 < 1.5)
    else:  # no noise model at all: the unweighted fits, without a chi-square check
        fit2, good = fit1, fit1.ok.copy()
    if good.any():
        good &= np.abs(fit2.sigma / width_mode(fit2.sigma[good]) - 1) < SINGLE_WIDTH
    if good.sum() < MIN_SPOTS:
        raise EstimationError(
            f"only {int(good.sum())} of {len(spots)} isolated spots passed the fit checks in {t} frames (want >= "
            f"{MIN_SPOTS}): too few to estimate the PSF; use more frames or type the conditions into the config"
        )
    sigma_px = fit2.sigma[good]
    photons_e = fit2.amplitude[good] / gain
    bg_e = (bg["k1"] - offset) / gain
    # density needs no camera: the frame's ADU above the background level over one spot's ADU
    level = bg["k1"] if np.isfinite(bg["k1"]) else float(np.median(fit2.background[good]))
    signal_adu = frames.sum(axis=(1, 2)) - level * h * w  # (no background pixel left: the spot fits' level)
    spot_adu = fit2.amplitude[good]
    area_um2 = h * w * (pixel_size_nm / 1000) ** 2
    if bg["pixels"]:
        mean_map = ndimage.gaussian_filter(np.nan_to_num(bg["mean_map"], nan=bg["k1"]), 3.0)
        bg_map_e = (mean_map - offset) / gain
        variation = float((np.percentile(bg_map_e, 99) - np.percentile(bg_map_e, 1)) / 2 / max(bg_e, 1e-9))
    else:
        variation = float("nan")

    # standard errors: bootstrap over spots (σ, photons) and over frames (density), seeded
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    n_good = int(good.sum())
    boot = rng.integers(0, n_good, size=(200, n_good))
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
        "psf_sigma_nm": float(np.std(np.median(sigma_px[boot], axis=1)) * pixel_size_nm),
        "photons_median": float(np.std(np.median(photons_e[boot], axis=1)) / quantum_efficiency),
        "density_per_um2": float(np.std(np.mean(signal_adu[frames_boot], axis=1) / np.median(spot_adu[boot], axis=1)) / area_um2),
        "density_per_um2_frame_to_frame_sd": float(np.std(signal_adu) / np.median(spot_adu) / area_um2),
    }
    quality = {
        "frames_used": int(t),
        "spots_detected": int(len(strong)),
        "spots_isolated": int(len(spots)),
        "spots_fitted": n_good,
        "background_fraction": free_fraction,
        "background_samples": int(bg["samples"]),
        "third_cumulant_ratio": float(ratio),
        "inferred_camera_model": inferred,
        "photon_transfer_slope": float(k),
        "photon_transfer_intercept": float(c),
        "background_cumulants_adu": [float(bg["k1"]), float(bg["k2"]), float(bg["k3"])],
    }
    if n_good < 100:
        warnings.append(
            f"psf/photons: only {n_good} isolated spots passed the fit checks (want >= 100); sigma, photons, gain "
            "and density are unreliable. Use more frames or give these values in the config."
        )
    if not calibrated:
        warnings.append(
            f"camera: too little background ({bg['samples']} background samples, {free_fraction:.1%} of the "
            f"pixel-frames in {t} frames free of spots; want >= {SCMOS_MIN_BACKGROUND_FRACTION:.0%}, or "
            f"{MIN_BACKGROUND_FRACTION:.0%} for a camera typed as an EMCCD): the data are too crowded to calibrate the "
            + (
                "camera; the typed camera is used"
                if np.isfinite(gain)
                else "camera, so photons and background are not estimated either. Type the camera (camera.preset, or "
                "camera.model, e_per_adu, em_gain for an EMCCD, and baseline_adu) into the config, or estimate from "
                "more or sparser frames"
            )
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
        "ptc_model": ptc_model,
        "ptc_resid": ptc_resid,
        "ptc_maker": ptc_maker,
    }
    return Estimates(values=values, errors=errors, warnings=warnings, diagnostics={"quality": quality, "fits": fits})
