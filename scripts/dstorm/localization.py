"""Localisation from a predicted heatmap: local maxima above a threshold, refined by the centre of mass.

The ZeroCostDL4Mic recipe: a high-resolution pixel is a peak where it equals the maximum of its
``k × k`` neighbourhood and exceeds ``threshold × weighting factor``; its position is the centre of mass of
that ``k × k`` window; confidence = window sum / weighting factor. Positions follow the project's
convention (``dstorm.coordinates``): high-resolution pixel ``j`` has its centre at ``(j + 0.5)/U`` camera
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Peaks", "find_peaks"]


@dataclass
class Peaks:
    """Peaks of a batch: image index in the batch, position in camera pixels, peak value and window sum."""

    index: torch.Tensor
    x_px: torch.Tensor
    y_px: torch.Tensor
    peak: torch.Tensor
    mass: torch.Tensor


def find_peaks(pred: torch.Tensor, *, upsampling_factor: int, threshold: float, neighbourhood: int = 3) -> Peaks:
    """Peaks of heatmaps ``pred`` ``(B, H·U, W·U)`` above the absolute value ``threshold``."""
    if neighbourhood < 3 or neighbourhood % 2 == 0:
        raise ValueError(f"neighbourhood must be an odd number >= 3, got {neighbourhood}")
    r = neighbourhood // 2
    pred = pred.float()
    # only the pixels above the threshold can be peaks: test their k × k windows alone (a dense max-pool
    # over the whole high-resolution heatmap cost more than the fast network itself)
    b, i, j = torch.nonzero(pred > threshold, as_tuple=True)
    offsets = torch.arange(-r, r + 1, device=pred.device)
    rows = (i + r)[:, None] + offsets  # (P, k)
    cols = (j + r)[:, None] + offsets
    padded = F.pad(pred, (r, r, r, r))  # zeros: the window sum's padding
    # pixels beyond the edge must never win the maximum: zeros cannot beat a candidate above a threshold >= 0
    outside = padded if threshold >= 0 else F.pad(pred, (r, r, r, r), value=float("-inf"))
    is_max = outside[b[:, None, None], rows[:, :, None], cols[:, None, :]].amax(dim=(1, 2)) == pred[b, i, j]
    b, i, j, rows, cols = b[is_max], i[is_max], j[is_max], rows[is_max], cols[is_max]
    window = padded[b[:, None, None], rows[:, :, None], cols[:, None, :]]  # (P, k, k)
    mass = window.sum(dim=(1, 2))
    safe = torch.where(mass > 0, mass, torch.ones_like(mass))
    dy = (window.sum(dim=2) * offsets).sum(dim=1) / safe
    dx = (window.sum(dim=1) * offsets).sum(dim=1) / safe
    u = float(upsampling_factor)
    return Peaks(
        index=b,
        x_px=(j.double() + dx.double() + 0.5) / u,
        y_px=(i.double() + dy.double() + 0.5) / u,
        peak=pred[b, i, j],
        mass=mass,
    )
