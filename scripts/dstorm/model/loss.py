"""The Deep-STORM loss: heatmap MSE of the blurred prediction plus an L1 sparsity term."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dstorm.coordinates import gaussian_kernel

__all__ = ["loss_kernel", "deepstorm_loss"]


def loss_kernel(sigma: float = 1.0, size: int = 7, scale: float = 2.0) -> torch.Tensor:
    """The 7×7, σ = 1 Gaussian normalised to sum 1, times 2 (official code), shape ``(1, 1, size, size)``."""
    k = scale * gaussian_kernel(sigma, size)
    return torch.from_numpy(k.astype(np.float32))[None, None]


def deepstorm_loss(
    pred: torch.Tensor, target: torch.Tensor, kernel: torch.Tensor, *, mse_weight: float = 1.0, l1_weight: float = 1.0
) -> torch.Tensor:
    """``mse_weight · mean((target - conv(pred, kernel))²) + l1_weight · mean(|pred|)``.

    Both means run over batch and pixels; the convolution uses 'same' zero padding. Computed in float32
    whatever the autocast precision.
    """
    pred = pred.float()
    blurred = F.conv2d(pred, kernel.to(pred.device, pred.dtype), padding=kernel.shape[-1] // 2)
    return mse_weight * torch.mean((target.float() - blurred) ** 2) + l1_weight * torch.mean(pred.abs())
