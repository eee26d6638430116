"""Scores of a reconstruction: the SMLM-challenge localisation metrics against a ground-truth table, and
image metrics of the super-resolved image against the ground truth rendered at the same pixel size.

Pure functions over arrays (numpy/scipy only). Conventions, for reports and tests:

- ``jaccard``, ``precision`` and ``recall`` are fractions in [0, 1]; ``efficiency_pct`` is in percent, as
  in the SMLM 2016 challenge: ``E = 100 - sqrt((100 - 100·Jaccard)² + α² RMSE²)`` with α = 1 nm⁻¹.
- A ratio whose denominator is zero is NaN (precision without localisations, recall without ground truth,
  Jaccard with neither); RMSE, bias and efficiency are NaN without a matched pair.
- Bias is the mean of (localisation − ground truth) over matched pairs, in nm.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from dstorm.evaluation.matching import Matches, match_localizations

__all__ = [
    "LOCALIZATION_METRICS",
    "IMAGE_METRICS",
    "efficiency",
    "localization_metrics",
    "BRIGHTNESS_METRICS",
    "brightness_metrics",
    "matched_errors",
    "pearson",
    "scale_match",
    "ssim",
    "image_metrics",
]

#: Keys of :func:`localization_metrics`, in report order.
LOCALIZATION_METRICS = (
    "n_ground_truth", "n_localizations", "tp", "fp", "fn", "jaccard", "precision", "recall",
    "rmse_lat_nm", "bias_x_nm", "bias_y_nm", "efficiency_pct",
)  # fmt: skip
#: Keys of :func:`brightness_metrics`: recall and RMSE of the dim and the bright ground-truth emitter-frames.
BRIGHTNESS_METRICS = (
    "n_ground_truth_dim", "recall_dim", "rmse_lat_nm_dim", "n_ground_truth_bright", "recall_bright", "rmse_lat_nm_bright",
)  # fmt: skip
#: Keys of :func:`image_metrics`.
IMAGE_METRICS = ("pearson_r", "nrmse", "psnr_db", "ssim")


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def efficiency(jaccard: float, rmse_nm: float, alpha_per_nm: float = 1.0) -> float:
    """SMLM 2016 efficiency in percent from a Jaccard index (fraction) and an RMSE (nm); NaN if either is."""
    return 100.0 - float(np.hypot(100.0 - 100.0 * jaccard, alpha_per_nm * rmse_nm))


def matched_errors(m: Matches, pred_xy: np.ndarray, gt_xy: np.ndarray) -> np.ndarray:
    """(TP, 2) localisation − ground truth, x then y, in the inputs' unit, for the matched pairs."""
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    gt_xy = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    return pred_xy[m.pred_index] - gt_xy[m.gt_index]


def localization_metrics(
    pred_frame, pred_xy, gt_frame, gt_xy, *, tolerance_nm: float = 250.0, alpha_per_nm: float = 1.0
) -> tuple[dict, Matches]:
    """Match per frame (Hungarian, within ``tolerance_nm``) and score; returns ``(metrics, matches)``.

    Frames are matched by equal labels (ThunderSTORM numbering from 1 on both sides); positions in nm.
    """
    m = match_localizations(pred_frame, pred_xy, gt_frame, gt_xy, tolerance_nm)
    err = matched_errors(m, pred_xy, gt_xy)
    jaccard = _ratio(m.tp, m.tp + m.fp + m.fn)
    rmse = float(np.sqrt(np.mean(np.sum(err**2, axis=1)))) if m.tp else float("nan")
    bias = err.mean(axis=0) if m.tp else np.full(2, np.nan)
    metrics = {
        "n_ground_truth": m.n_gt,
        "n_localizations": m.n_pred,
        "tp": m.tp,
        "fp": m.fp,
        "fn": m.fn,
        "jaccard": jaccard,
        "precision": _ratio(m.tp, m.n_pred),
        "recall": _ratio(m.tp, m.n_gt),
        "rmse_lat_nm": rmse,
        "bias_x_nm": float(bias[0]),
        "bias_y_nm": float(bias[1]),
        "efficiency_pct": efficiency(jaccard, rmse, alpha_per_nm),
    }
    return metrics, m


def brightness_metrics(m: Matches, errors: np.ndarray, gt_photons, split_photons: float) -> dict:
    """Recall and RMSE of the ground-truth emitter-frames below (``dim``) and at or above (``bright``)
    ``split_photons``; ``errors`` are :func:`matched_errors` of ``m``. NaN where a group is empty or, for
    the RMSE, has no match. Without photons (``gt_photons`` None) every value is NaN."""
    if gt_photons is None:
        return {k: float("nan") for k in BRIGHTNESS_METRICS}
    bright = np.asarray(gt_photons, dtype=np.float64) >= split_photons
    matched_bright = bright[m.gt_index]
    out = {}
    for name, group, matched in (("dim", ~bright, ~matched_bright), ("bright", bright, matched_bright)):
        n, tp = int(group.sum()), int(matched.sum())
        out[f"n_ground_truth_{name}"] = n
        out[f"recall_{name}"] = _ratio(tp, n)
        out[f"rmse_lat_nm_{name}"] = float(np.sqrt(np.mean(np.sum(errors[matched] ** 2, axis=1)))) if tp else float("nan")
    return {k: out[k] for k in BRIGHTNESS_METRICS}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' pixels (NaN if either is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def scale_match(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``a·image + b`` with ``a, b`` the least-squares fit to ``reference`` (CSBDeep's ``norm_minmse``),
    so that intensity scale and offset do not count as error."""
    x = np.asarray(image, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    xc = x - x.mean()
    var = np.dot(xc.ravel(), xc.ravel())
    a = np.dot(xc.ravel(), (y - y.mean()).ravel()) / var if var > 0 else 0.0
    return a * xc + y.mean()


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) with an 11-tap Gaussian window of ``sigma`` pixels
    (scikit-image's ``gaussian_weights=True, use_sample_covariance=False`` variant); the mean is taken
    away from the borders the window does not cover fully, as scikit-image does."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    blur = lambda x: gaussian_filter(x, sigma, truncate=3.5, mode="reflect")  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    pad = (int(3.5 * sigma + 0.5) * 2 + 1) // 2
    inner = s[pad:-pad, pad:-pad] if min(s.shape) > 2 * pad else s
    return float(inner.mean())


def image_metrics(image: np.ndarray, truth: np.ndarray, *, blur_px: float) -> dict:
    """Scores of ``image`` (the super-resolved image) against ``truth`` (the ground truth rendered on the same
    grid): Pearson r after a Gaussian blur of ``blur_px`` pixels of both; NRMSE (RMSE over the range of the
    truth), PSNR and SSIM after the truth is scaled to [0, 1] and the image is least-squares matched to it.
    All four are invariant to the image's intensity scale and offset."""
    image = np.asarray(image, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if image.shape != truth.shape:
        raise ValueError(f"image {image.shape} and ground-truth rendering {truth.shape} differ in shape")
    r = pearson(gaussian_filter(image, blur_px), gaussian_filter(truth, blur_px)) if blur_px > 0 else pearson(image, truth)
    lo, hi = truth.min(), truth.max()
    if hi <= lo:
        return {"pearson_r": r, "nrmse": float("nan"), "psnr_db": float("nan"), "ssim": float("nan")}
    t = (truth - lo) / (hi - lo)
    fitted = scale_match(image, t)
    rmse = float(np.sqrt(np.mean((fitted - t) ** 2)))
    return {
        "pearson_r": r,
        "nrmse": rmse,
        "psnr_db": float(20 * np.log10(1.0 / rmse)) if rmse > 0 else float("inf"),
        "ssim": ssim(fitted, t, data_range=1.0),
    }
