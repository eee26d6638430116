"""NeNA: the localisation precision from the nearest neighbour in the next frame (Endesfelder et al.,
Histochem. Cell Biol. 2014), without ground truth.

For every localisation of frame ``t`` the distance to the nearest localisation of frame ``t + 1``; where a
molecule is on in both frames, that distance is the difference of two independent localisations, whose
components have variance ``2 s²`` for a per-axis precision ``s``, so its density is
``d / (2 s²) · exp(−d² / (4 s²))``. Other neighbours (other molecules, false detections) add a term that
rises linearly with ``d`` at short range. The histogram of distances below ``max_distance_nm`` is fitted
with ``A · d/(2s²) · exp(−d²/(4s²)) + B · d`` by least squares (scipy's ``curve_fit``); ``s`` is the NeNA
precision (per axis, the convention of Picasso ≥ 0.8.0). It needs molecules on for more than one frame.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

__all__ = ["next_frame_distances", "nena"]


def next_frame_distances(frame, x_nm, y_nm, max_distance_nm: float) -> np.ndarray:
    """Distance from each localisation to its nearest neighbour in the next frame, where below the bound."""
    frame = np.asarray(frame, dtype=np.int64)
    order = np.argsort(frame, kind="stable")
    f, xy = frame[order], np.column_stack([np.asarray(x_nm)[order], np.asarray(y_nm)[order]])
    values, starts = np.unique(f, return_index=True)
    ends = np.append(starts[1:], len(f))
    out = []
    for k in range(len(values) - 1):
        if values[k + 1] != values[k] + 1:
            continue
        tree = cKDTree(xy[starts[k + 1]: ends[k + 1]])
        d, _ = tree.query(xy[starts[k]: ends[k]], distance_upper_bound=max_distance_nm)
        out.append(d[np.isfinite(d)])
    return np.concatenate(out) if out else np.zeros(0)


def _model(d, a, s, b):
    return a * d / (2 * s**2) * np.exp(-(d**2) / (4 * s**2)) + b * d


def nena(frame, x_nm, y_nm, *, max_distance_nm: float = 200.0, bin_nm: float = 2.0, min_pairs: int = 100) -> dict:
    """``{"nena_nm", "nena_se_nm", "nena_pairs"}``: the fitted precision and its standard error (NaN where
    fewer than ``min_pairs`` distances or the fit fails)."""
    d = next_frame_distances(frame, x_nm, y_nm, max_distance_nm)
    out = {"nena_nm": float("nan"), "nena_se_nm": float("nan"), "nena_pairs": int(len(d))}
    if len(d) < min_pairs:
        return out
    edges = np.arange(0.0, max_distance_nm + bin_nm, bin_nm)
    counts, _ = np.histogram(d, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    density = counts / (len(d) * bin_nm)
    sigma = np.sqrt(np.maximum(counts, 1)) / (len(d) * bin_nm)  # Poisson errors of the bins
    s0 = max(float(np.median(d[d < np.percentile(d, 50)])) / 2, bin_nm)
    try:
        (a, s, b), cov = curve_fit(_model, centres, density, p0=(0.5, s0, 1e-6), sigma=sigma,
                                   bounds=([0, bin_nm / 4, 0], [1.0, max_distance_nm, np.inf]))  # fmt: skip
    except (RuntimeError, ValueError):
        return out
    if not np.all(np.isfinite(cov)):
        return out
    out.update(nena_nm=float(s), nena_se_nm=float(np.sqrt(cov[1, 1])))
    return out
