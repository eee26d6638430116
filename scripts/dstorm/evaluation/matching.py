"""One-to-one matching of localisations to ground truth, per frame (SMLM 2016 challenge rules).

Within each frame, pairs closer than ``tolerance_nm`` are matched one to one by the Hungarian assignment
(``scipy.optimize.linear_sum_assignment``), which minimises the total distance exactly (DECODE uses a greedy
nearest-first match, which can pair worse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

__all__ = ["Matches", "match_frame", "match_localizations"]


@dataclass
class Matches:
    """Matched pairs (indices into the inputs) and the counts the metrics need."""

    pred_index: np.ndarray  # (TP,)
    gt_index: np.ndarray  # (TP,)
    n_pred: int
    n_gt: int

    @property
    def tp(self) -> int:
        return len(self.pred_index)

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_gt - self.tp

    @property
    def jaccard(self) -> float:
        denominator = self.tp + self.fp + self.fn
        return self.tp / denominator if denominator else 1.0


def match_frame(pred_xy: np.ndarray, gt_xy: np.ndarray, tolerance_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian one-to-one matching of one frame's points within ``tolerance_nm``; returns index pairs."""
    pred_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2)
    gt_xy = np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    if len(pred_xy) == 0 or len(gt_xy) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # only pairs within the tolerance can match: solve on the connected candidates with a large cost elsewhere
    pairs = cKDTree(pred_xy).sparse_distance_matrix(cKDTree(gt_xy), tolerance_nm, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, row_inv = np.unique(pairs["i"], return_inverse=True)
    cols, col_inv = np.unique(pairs["j"], return_inverse=True)
    big = tolerance_nm * (len(rows) + len(cols) + 1) + 1.0
    cost = np.full((len(rows), len(cols)), big)
    cost[row_inv, col_inv] = pairs["v"]
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] <= tolerance_nm
    return rows[r[ok]], cols[c[ok]]


def match_localizations(
    pred_frame: np.ndarray, pred_xy: np.ndarray, gt_frame: np.ndarray, gt_xy: np.ndarray, tolerance_nm: float = 250.0
) -> Matches:
    """Match per frame; frames are any integer labels (the same numbering on both sides)."""
    pred_frame, gt_frame = np.asarray(pred_frame), np.asarray(gt_frame)
    pred_xy, gt_xy = np.asarray(pred_xy, dtype=np.float64).reshape(-1, 2), np.asarray(gt_xy, dtype=np.float64).reshape(-1, 2)
    p_order, g_order = np.argsort(pred_frame, kind="stable"), np.argsort(gt_frame, kind="stable")
    frames = np.union1d(pred_frame, gt_frame)
    p_bounds = np.searchsorted(pred_frame[p_order], frames, side="left"), np.searchsorted(pred_frame[p_order], frames, side="right")
    g_bounds = np.searchsorted(gt_frame[g_order], frames, side="left"), np.searchsorted(gt_frame[g_order], frames, side="right")
    pi, gi = [], []
    for k in range(len(frames)):
        p_idx = p_order[p_bounds[0][k] : p_bounds[1][k]]
        g_idx = g_order[g_bounds[0][k] : g_bounds[1][k]]
        r, c = match_frame(pred_xy[p_idx], gt_xy[g_idx], tolerance_nm)
        pi.append(p_idx[r])
        gi.append(g_idx[c])
    cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)  # noqa: E731
    return Matches(pred_index=cat(pi), gt_index=cat(gi), n_pred=len(pred_xy), n_gt=len(gt_xy))
