"""Inputs and heatmap targets built per batch, on the training device, from the compact patch file.

Memory holds only the low-resolution patches and emitter positions (a few MB for the official 10,000
patches); the upsampled inputs and heatmaps (``B × 1 × P·U × P·U``) exist for one batch at a time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dstorm.coordinates import gaussian_kernel

__all__ = ["normalization_stats", "scale_01", "upsample", "heatmaps", "PatchStore"]


def normalization_stats(patches: np.ndarray) -> tuple[float, float]:
    """Mean of per-patch means and mean of per-patch standard deviations after per-patch [0, 1] scaling,
    exactly as the reference computes them on the training patches (float64, population std).

    Nearest-neighbour upsampling repeats every pixel U² times, so these equal the statistics of the
    upsampled patches.
    """
    x = patches.astype(np.float64)
    lo = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - lo
    x01 = np.divide(x - lo, span, out=np.zeros_like(x), where=span > 0)
    return float(x01.mean(axis=(1, 2)).mean()), float(x01.std(axis=(1, 2)).mean())


def scale_01(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling of ``(B, H, W)`` to [0, 1]; a constant image becomes 0."""
    lo = x.amin(dim=(-2, -1), keepdim=True)
    span = x.amax(dim=(-2, -1), keepdim=True) - lo
    return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1), torch.zeros_like(x))


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, H, W)`` -> ``(B, 1, H·U, W·U)`` by nearest neighbour (``np.kron`` with a block of ones)."""
    return F.interpolate(x[:, None], scale_factor=factor, mode="nearest")


def heatmaps(
    xy: torch.Tensor,
    owner: torch.Tensor,
    batch: int,
    shape_px: tuple[int, int],
    *,
    upsampling_factor: int,
    kernel: torch.Tensor,
    weighting_factor: float,
) -> torch.Tensor:
    """Targets of a batch: spikes (set to 1) at each emitter's high-resolution pixel, blurred, × weight.

    ``xy`` are (x, y) camera-pixel positions relative to each patch's corner, ``owner`` the patch (0..batch-1)
    each belongs to. Same result as :func:`dstorm.coordinates.heatmap`, for a whole batch at once.
    """
    r = kernel.shape[-1] // 2
    h, w = shape_px[0] * upsampling_factor, shape_px[1] * upsampling_factor
    hp, wp = h + 2 * r, w + 2 * r
    pos = torch.floor(xy.double() * upsampling_factor).long() + r
    cols, rows = pos[:, 0], pos[:, 1]
    ok = (cols >= 0) & (cols < wp) & (rows >= 0) & (rows < hp)
    spikes = torch.zeros(batch * hp * wp, device=xy.device, dtype=torch.float32)
    spikes[((owner * hp + rows) * wp + cols)[ok]] = 1.0
    blurred = F.conv2d(spikes.view(batch, 1, hp, wp), kernel.to(xy.device, torch.float32))  # valid = crop
    return weighting_factor * blurred


class PatchStore:
    """The patch file's arrays as tensors on one device, and the batch builder.

    Parameters
    ----------
    patches : (N, P, P) raw counts; offsets : (N + 1,); xy : (M, 2) float; meta : the patch file's meta.
    mean, std : normalisation statistics (of the training patches).
    upsample_inputs : whether the network takes the input upsampled ×U (the faithful one) or at the camera's
        resolution (``input_upsampled`` of its entry in dstorm.architectures).
    """

    def __init__(self, patches, offsets, xy, meta: dict, mean: float, std: float, device="cpu", upsample_inputs=True):
        self.meta = meta
        self.upsample_inputs = bool(upsample_inputs)
        self.u = int(meta["upsampling_factor"])
        self.p = int(meta["patch_size_px"])
        self.weighting = float(meta["weighting_factor"])
        self.mean, self.std = float(mean), float(std)
        self.device = torch.device(device)
        self.patches = torch.as_tensor(np.asarray(patches, dtype=np.float32), device=self.device)
        self.offsets = torch.as_tensor(np.asarray(offsets, dtype=np.int64), device=self.device)
        self.xy = torch.as_tensor(np.asarray(xy, dtype=np.float32), device=self.device)
        kernel = gaussian_kernel(float(meta["heatmap_sigma_px"]))
        self.kernel = torch.as_tensor(kernel.astype(np.float32), device=self.device)[None, None]

    def to(self, device) -> "PatchStore":
        device = torch.device(device)
        if device == self.device:
            return self
        arrays = (self.patches.cpu().numpy(), self.offsets.cpu().numpy(), self.xy.cpu().numpy())
        return PatchStore(*arrays, self.meta, self.mean, self.std, device, self.upsample_inputs)

    def inputs(self, index: torch.Tensor) -> torch.Tensor:
        """Network inputs: per-patch [0, 1] scaling and normalisation, then ``(B, 1, P·U, P·U)`` by
        upsampling, or ``(B, 1, P, P)`` for a network on the camera's pixels."""
        x = (scale_01(self.patches[index]) - self.mean) / self.std
        return upsample(x, self.u) if self.upsample_inputs else x[:, None]

    def targets(self, index: torch.Tensor) -> torch.Tensor:
        """Heatmaps ``(B, 1, P·U, P·U)`` of the patches ``index``."""
        start = self.offsets[index]
        counts = self.offsets[index + 1] - start
        owner = torch.repeat_interleave(torch.arange(len(index), device=self.device), counts)
        first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        emitter = start[owner] + torch.arange(len(owner), device=self.device) - first
        return heatmaps(
            self.xy[emitter], owner, len(index), (self.p, self.p),
            upsampling_factor=self.u, kernel=self.kernel, weighting_factor=self.weighting,
        )  # fmt: skip

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.device)
        return self.inputs(index), self.targets(index)
