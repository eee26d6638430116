"""The networks: the faithful Deep-STORM network (Nehme et al., Optica 2018, as in the official code) and a
fast one, in one registry.

Every architecture maps a normalised frame to a heatmap U× finer with the same loss and targets, so every
other stage is unchanged. What differs (whether it takes the frame already upsampled ×U, which frame sides
it takes) is stated once, in :mod:`dstorm.architectures`, which the classes and everything else ask.
"""

from __future__ import annotations

import torch
from torch import nn

from dstorm.architectures import ARCHITECTURES, Architecture, architecture

__all__ = ["DeepSTORMNet", "FastNet", "network_class", "build_network", "fold_batchnorm", "conv_macs"]


def _block(c_in: int, c_out: int, momentum: float, eps: float) -> nn.Sequential:
    """Conv 3×3 'same' without bias -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out, momentum=momentum, eps=eps),
        nn.ReLU(inplace=True),
    )


class _Network(nn.Module):
    """What both architectures share: their registry entry (``spec``), orthogonal initialisation of every
    convolution, and the weight count."""

    spec: Architecture

    def _init_orthogonal(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight)

    def conv_weight_count(self) -> int:
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Conv2d))


class DeepSTORMNet(_Network):
    """The faithful network. Encoder 32 -> pool -> 64 -> pool -> 128 -> pool -> 512; decoder ×2 -> 128 -> ×2 -> 64 -> ×2 -> 32;
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
        self._init_orthogonal()

    spec = ARCHITECTURES["deepstorm"]  # takes the frame upsampled ×U; sides divisible by 8 (three poolings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.spec.side_divisor, "(after upsampling)", "the network pools three times")
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < 3:
                x = self.pool(x)
        for block in self.dec:
            x = block(self.up(x))
        return _fp32_head(self.head, x)


def _fp32_head(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output layer in float32 whatever the autocast: the heatmap's values decide which peaks pass the
    detection threshold, and bfloat16's 8-bit mantissa would move them by up to 0.4 %. It costs one 1×1
    convolution."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return head(x.float())


def _check_input(x: torch.Tensor, divisor: int, which: str, why: str) -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected input of shape (batch, 1, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(f"input side {h}×{w} {which} must be divisible by {divisor}: {why}")


class FastNet(_Network):
    """A fast network on the camera's pixels: a small U-Net (two poolings, skip connections, two conv-BN-ReLU
    blocks per level) on the normalised raw frame, whose last layer gives U² channels that a pixel shuffle
    turns into the U× finer heatmap (sub-pixel convolution, Shi et al. 2016). It never convolves at the high
    resolution, where the faithful network spends nearly all of its ≈ 48 GFLOP per 64 × 64 frame at U = 8:
    with the default widths it needs ≈ 1 GFLOP for the same frame. Same targets and loss as the faithful one.

    Parameters
    ----------
    upsampling_factor : U, the heatmap's pixels per camera pixel (part of the architecture: U² channels).
    widths : channels at the camera resolution, 1/2 and 1/4 of it.
    bn_momentum, bn_eps : BatchNorm parameters in PyTorch's convention.
    """

    spec = ARCHITECTURES["fast"]  # the camera's pixels; pools twice, pads other sides (replicating the edge)

    def __init__(
        self,
        upsampling_factor: int = 8,
        widths: tuple[int, ...] = (32, 64, 128),
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ):
        super().__init__()
        if len(widths) != 3:
            raise ValueError("FastNet needs 3 widths (camera resolution, 1/2, 1/4)")
        u = int(upsampling_factor)
        self.hparams = {"upsampling_factor": u, "widths": list(widths), "bn_momentum": bn_momentum, "bn_eps": bn_eps}
        c0, c1, c2 = widths

        def double(c_in, c_out):
            return nn.Sequential(*_block(c_in, c_out, bn_momentum, bn_eps), *_block(c_out, c_out, bn_momentum, bn_eps))

        self.enc0, self.enc1, self.bottom = double(1, c0), double(c0, c1), double(c1, c2)
        self.dec1, self.dec0 = double(c2 + c1, c1), double(c1 + c0, c0)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(c0, u * u, kernel_size=1, bias=False)
        self.shuffle = nn.PixelShuffle(u)
        self._init_orthogonal()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, 1, "", "")
        h, w = x.shape[-2:]
        d = self.spec.side_divisor
        pad_h, pad_w = -h % d, -w % d
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        e0 = self.enc0(x)
        e1 = self.enc1(self.pool(e0))
        b = self.bottom(self.pool(e1))
        d1 = self.dec1(torch.cat([self.up(b), e1], dim=1))
        d0 = self.dec0(torch.cat([self.up(d1), e0], dim=1))
        out = self.shuffle(_fp32_head(self.head, d0))
        u = self.hparams["upsampling_factor"]
        return out[..., : h * u, : w * u] if pad_h or pad_w else out


def network_class(name: str) -> type[nn.Module]:
    """The class of the registered architecture ``name`` (ValueError for an unknown one)."""
    return globals()[architecture(name).class_name]


def build_network(name: str, hparams: dict, upsampling_factor: int | None = None) -> nn.Module:
    """The network ``name`` with ``hparams`` (a model file's ``network``); ``upsampling_factor`` fills in U
    for the architectures that need it (a model file's ``upsampling_factor``)."""
    cls = network_class(name)
    hparams = dict(hparams)
    if upsampling_factor is not None and not cls.spec.input_upsampled:
        hparams.setdefault("upsampling_factor", int(upsampling_factor))
        if int(hparams["upsampling_factor"]) != int(upsampling_factor):
            raise ValueError(f"the network's U = {hparams['upsampling_factor']} but the model's is {upsampling_factor}")
    return cls(**hparams)


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """For inference: every Conv2d directly followed by a BatchNorm2d (in eval mode) becomes one Conv2d with
    the normalisation folded into its weights and bias, and the BatchNorm an identity. Same outputs up to
    rounding, one pass over the activations less per layer. Works in place; returns ``net``."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training:
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
    return net


def conv_macs(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every convolution of ``net`` in one forward pass of ``x``, per frame (hooks
    on the convolutions' output shapes)."""
    total = []
    hooks = [m.register_forward_hook(lambda m, i, o: total.append(o.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups))
             for m in net.modules() if isinstance(m, nn.Conv2d)]  # fmt: skip
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return sum(total) // x.shape[0]
