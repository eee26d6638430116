"""Grouping: one molecule's detections in consecutive frames merged into one localisation, as
ThunderSTORM's merging and Picasso's link do.

Frames are taken in order; a detection joins the open group whose last detection is nearest, within
``radius_nm``, one detection per group and frame (nearest pairs first); a group stays open while it has
been missed in at most ``max_gap_frames`` frames. A group's position is the mean of its detections weighted
by their inverse variance (``uncertainty [nm]⁻²``; equal weights where the uncertainty is unknown), its
photons are their sum, its frame its first, and ``detections`` counts them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

__all__ = ["group_ids", "group_table"]


def group_ids(frame, x_nm, y_nm, *, radius_nm: float, max_gap_frames: int) -> np.ndarray:
    """The group of each localisation (0, 1, ... in order of first appearance)."""
    frame = np.asarray(frame, dtype=np.int64)
    n = len(frame)
    order = np.argsort(frame, kind="stable")
    xy = np.column_stack([np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64)])
    ids = np.full(n, -1, dtype=np.int64)
    last_xy = np.zeros((n, 2))
    last_frame = np.zeros(n, dtype=np.int64)
    open_groups = np.zeros(0, dtype=np.int64)
    n_groups = 0
    values, starts = np.unique(frame[order], return_index=True)
    ends = np.append(starts[1:], n)
    for f, lo, hi in zip(values, starts, ends):
        det = order[lo:hi]
        open_groups = open_groups[last_frame[open_groups] >= f - 1 - max_gap_frames]
        assigned = np.full(len(det), -1, dtype=np.int64)
        if len(open_groups):
            pairs = cKDTree(xy[det]).sparse_distance_matrix(cKDTree(last_xy[open_groups]), radius_nm, output_type="ndarray")
            if len(pairs):
                pairs = pairs[np.argsort(pairs["v"], kind="stable")]
                used_d, used_g = np.zeros(len(det), bool), np.zeros(len(open_groups), bool)
                for i, j in zip(pairs["i"], pairs["j"]):
                    if not used_d[i] and not used_g[j]:
                        used_d[i] = used_g[j] = True
                        assigned[i] = open_groups[j]
        new = assigned < 0
        assigned[new] = np.arange(n_groups, n_groups + new.sum())
        n_groups += int(new.sum())
        ids[det] = assigned
        last_xy[assigned] = xy[det]
        last_frame[assigned] = f
        open_groups = np.union1d(open_groups, assigned[new])
    # number the groups in order of first appearance (they are already: new ids grow frame by frame)
    return ids


def group_table(table: pd.DataFrame, *, radius_nm: float, max_gap_frames: int) -> pd.DataFrame:
    """The grouped localisation table (the columns of ``table`` and ``detections``)."""
    g = group_ids(table["frame"], table["x [nm]"], table["y [nm]"], radius_nm=radius_nm, max_gap_frames=max_gap_frames)
    k = int(g.max()) + 1 if len(g) else 0
    u = table["uncertainty [nm]"].to_numpy(dtype=np.float64) if "uncertainty [nm]" in table else np.full(len(table), np.nan)
    known = np.isfinite(u) & (u > 0)
    inverse_variance = np.where(known, 1.0 / np.where(known, u, 1.0) ** 2, 0.0)
    # weights: the inverse variance; detections of unknown precision weigh as the least precise known one
    w = np.where(known, inverse_variance, inverse_variance[known].min() if known.any() else 1.0)
    sw = np.bincount(g, w, k)
    out = {"frame": np.full(k, np.iinfo(np.int64).max)}
    np.minimum.at(out["frame"], g, table["frame"].to_numpy(dtype=np.int64))
    for c in ("x [nm]", "y [nm]"):
        out[c] = np.bincount(g, w * table[c].to_numpy(dtype=np.float64), k) / sw
    for c in ("sigma [nm]", "offset [photon]"):
        if c in table:
            out[c] = np.bincount(g, table[c].to_numpy(dtype=np.float64), k) / np.bincount(g, minlength=k)
    if "intensity [photon]" in table:
        out["intensity [photon]"] = np.bincount(g, table["intensity [photon]"].to_numpy(dtype=np.float64), k)
    if "uncertainty [nm]" in table:
        total = np.bincount(g, inverse_variance, k)
        out["uncertainty [nm]"] = np.where(total > 0, 1.0 / np.sqrt(np.where(total > 0, total, 1.0)), np.nan)
    if "peak [a.u.]" in table:
        out["peak [a.u.]"] = np.full(k, -np.inf)
        np.maximum.at(out["peak [a.u.]"], g, table["peak [a.u.]"].to_numpy(dtype=np.float64))
    if "confidence [a.u.]" in table:
        out["confidence [a.u.]"] = np.bincount(g, table["confidence [a.u.]"].to_numpy(dtype=np.float64), k)
    out["detections"] = np.bincount(g, minlength=k)
    return pd.DataFrame(out)
