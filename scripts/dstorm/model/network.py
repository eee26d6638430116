"""The Deep-STORM fully convolutional network (Nehme et al., Optica 2018), as in the official code."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DeepSTORMNet", "ARCHITECTURES", "build_network"]


def _block(c_in: int, c_out: int, momentum: float, eps: float) -> nn.Sequential:
    """Conv 3×3 'same' without bias -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out, momentum=momentum, eps=eps),
        nn.ReLU(inplace=True),
    )


class DeepSTORMNet(nn.Module):
    """Encoder 32 -> pool -> 64 -> pool -> 128 -> pool -> 512; decoder ×2 -> 128 -> ×2 -> 64 -> ×2 -> 32;
    1×1 linear head without bias. No skip connections. Orthogonal initialisation of every convolution.

    The input is the frame already upsampled ×U (nearest neighbour), shape ``(B, 1, H, W)`` with ``H`` and
    ``W`` divisible by 8; the output has the same shape. BatchNorm uses Keras' defaults (momentum 0.99,
    i.e. PyTorch ``momentum=0.01``; eps 1e-3).

    Parameters
    ----------
    encoder : channels of the four encoder blocks (the last one is the bottleneck).
    decoder : channels of the three decoder blocks.
    bn_momentum, bn_eps : BatchNorm parameters in PyTorch's convention.
    """

    def __init__(
        self,
        encoder: tuple[int, ...] = (32, 64, 128, 512),
        decoder: tuple[int, ...] = (128, 64, 32),
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ):
        super().__init__()
        if len(encoder) != 4 or len(decoder) != 3:
            raise ValueError("DeepSTORMNet needs 4 encoder and 3 decoder widths (three poolings, three upsamplings)")
        self.hparams = {"encoder": list(encoder), "decoder": list(decoder), "bn_momentum": bn_momentum, "bn_eps": bn_eps}
        c = [1, *encoder]
        self.enc = nn.ModuleList(_block(c[i], c[i + 1], bn_momentum, bn_eps) for i in range(4))
        d = [encoder[-1], *decoder]
        self.dec = nn.ModuleList(_block(d[i], d[i + 1], bn_momentum, bn_eps) for i in range(3))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(decoder[-1], 1, kernel_size=1, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected input of shape (batch, 1, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(
                f"input side {h}×{w} (after upsampling) must be divisible by 8: the network pools three times"
            )
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < 3:
                x = self.pool(x)
        for block in self.dec:
            x = block(self.up(x))
        return self.head(x)

    def conv_weight_count(self) -> int:
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Conv2d))


#: Architecture name -> class; model files name their architecture and load only a known one.
ARCHITECTURES = {"deepstorm": DeepSTORMNet}


def build_network(name: str, hparams: dict) -> nn.Module:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](**hparams)
