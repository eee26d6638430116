"""Model files: the weights and everything inference needs, loaded without executing code.

A model file is a ``torch.save`` of plain containers and tensors, read back with
``torch.load(..., weights_only=True)``: a shared model file cannot run code. Contents:

- ``format`` = "dstorm-model", ``format_version``
- ``architecture`` (name) and ``network`` (its hyper-parameters), ``state_dict``
- ``upsampling_factor``, ``normalization`` {mean, std}, ``weighting_factor``, ``heatmap_sigma_px``,
  ``pixel_size_nm`` (camera pixel), ``patch_size_px``
- ``training`` {config_hash, dataset, density_per_um2, epochs, best_val_loss, ...}, ``versions``
"""

from __future__ import annotations

import os
import pickle
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dstorm.io import atomic_output
from dstorm.errors import InputError, MissingInput
from dstorm.model.batches import scale_01, upsample
from dstorm.model.network import build_network, fold_batchnorm
from dstorm.model.precision import autocast

__all__ = ["MODEL_FORMAT", "save_model", "load_model", "LoadedModel", "package_versions"]

MODEL_FORMAT = "dstorm-model"
MODEL_FORMAT_VERSION = 1
_REQUIRED = ("architecture", "network", "state_dict", "upsampling_factor", "normalization", "weighting_factor", "pixel_size_nm")


def package_versions() -> dict[str, str]:
    import lightning
    import numpy
    import scipy

    import dstorm

    versions = {
        "dstorm": dstorm.__version__,
        "torch": torch.__version__,  # a str subclass that weights_only loading refuses: made plain below
        "lightning": lightning.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }
    return {k: str(v) for k, v in versions.items()}


def save_model(path: str | os.PathLike, net: torch.nn.Module, architecture: str, **fields) -> None:
    """Write a model file atomically; ``fields`` are the metadata listed in the module docstring."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "architecture": architecture,
        "network": dict(net.hparams),
        "state_dict": state,
        "versions": package_versions(),
        **fields,
    }
    # through a file object: given a path, torch.save names the archive's folder after the (temporary,
    # random) file name, so the same model would give different bytes each time
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


@dataclass
class LoadedModel:
    """A network in eval mode with its preprocessing; ``predict`` maps raw frames to heatmaps.

    ``precision`` is a resolved one of :data:`dstorm.model.precision.PRECISIONS` (not "auto"): the autocast
    the network runs under; heatmaps always leave ``predict`` as float32.
    """

    net: torch.nn.Module
    info: dict
    device: torch.device
    precision: str = "32"
    #: set by :meth:`compile`: the compiled forward pass and the batch size it was compiled for
    compiled: object = None
    compiled_batch: int = 0

    @property
    def channels_last(self) -> bool:
        weight = next(w for w in self.net.parameters() if w.ndim == 4)
        return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()

    @property
    def upsampling_factor(self) -> int:
        return int(self.info["upsampling_factor"])

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw ``(B, H, W)`` frames -> network input: per-frame [0, 1], (x - mean)/std, and upsampled ×U
        (nearest neighbour) for the architectures that take the upsampled frame."""
        norm = self.info["normalization"]
        x = (scale_01(frames.to(self.device, torch.float32)) - float(norm["mean"])) / float(norm["std"])
        return upsample(x, self.upsampling_factor) if self.net.spec.input_upsampled else x[:, None]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.precision, self.device):
            return self.net(x)

    @torch.inference_mode()
    def compile(self, batch: int, height: int, width: int) -> None:
        """Compile the network for batches of ``batch`` frames of ``height × width`` camera pixels
        (``torch.compile``, Inductor with the weights frozen into the graph as constants, so that they are
        converted and packed once, not at every call: the same outputs, and at bf16 on a CPU about half the
        time of the faithful network; the batch is padded to ``batch`` so that it compiles once). Compiles
        now, on a batch of random frames; raises whatever compiling raises (e.g. no C++ compiler).

        One compiled model per process at a time: compiling clears torch's compiled code (the forward passes
        of all models share one code object, on which torch allows only a few compiled variants before it
        falls back to eager)."""
        import torch._dynamo
        import torch._inductor.config as inductor_config

        torch._dynamo.reset()
        fn = torch.compile(self._forward, dynamic=False)
        x = self._network_input(torch.rand(batch, height, width, generator=torch.Generator().manual_seed(0)))
        with inductor_config.patch(freezing=True):
            fn(x)
        self.compiled, self.compiled_batch = fn, batch

    def _network_input(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(frames)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @torch.inference_mode()
    def predict(self, frames) -> torch.Tensor:
        """Heatmaps ``(B, H·U, W·U)`` (negative values clamped to 0, as the reference does)."""
        frames = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
        if frames.ndim == 2:
            frames = frames[None]
        n = frames.shape[0]
        if self.compiled is not None and n <= self.compiled_batch:
            if n < self.compiled_batch:  # the last batch of a stack: padded to the compiled shape
                frames = torch.cat([frames, frames[-1:].expand(self.compiled_batch - n, *frames.shape[1:])])
            out = self.compiled(self._network_input(frames))[:n]
        else:
            out = self._forward(self._network_input(frames))
        return torch.relu(out[:, 0].float())


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    channels_last: bool = True,
    precision: str = "32",
    fold_bn: bool = False,
) -> LoadedModel:
    """Load a model file safely (``weights_only=True``) with a clear error for anything else.

    ``channels_last`` (the training default) is faster on CPUs and tensor cores, and gives exactly the
    outputs of the training-time network. ``precision`` (resolved, see dstorm.model.precision) is the
    autocast of inference; ``fold_bn`` folds each BatchNorm into its convolution (same outputs up to
    rounding, faster). The defaults reproduce the training-time network bit for bit; reconstruction asks
    for the fast settings (:func:`dstorm.reconstruction.inference_model`).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); expected a Deep-STORM model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated, code-carrying, not torch: one clear message each
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if isinstance(exc, pickle.UnpicklingError) and found:
            # the safe loader met a Python object other than tensors and plain containers; torch's hint to
            # load it unsafely is not repeated
            raise InputError(
                f"{path}: refused: the file holds Python objects ({found.group(1)}) that could run code when "
                "loaded; a Deep-STORM model file holds only tensors and plain data. Ask its author for a model "
                "file written by this project."
            ) from None
        reason = str(exc).split(". ")[0].split("\n")[0].replace("Weights only load failed", "no PyTorch archive")
        raise InputError(
            f"{path}: not a readable Deep-STORM model file (truncated, corrupt or not a PyTorch file: {reason})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(f"{path}: not a Deep-STORM model file of this project (no format '{MODEL_FORMAT}')")
    if payload.get("format_version", 0) > MODEL_FORMAT_VERSION:
        raise InputError(f"{path}: model file format {payload['format_version']} is newer than this version reads")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise InputError(f"{path}: model file lacks {missing}")
    try:
        net = build_network(payload["architecture"], payload["network"], int(payload["upsampling_factor"]))
        net.load_state_dict(payload["state_dict"], strict=True)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise InputError(
            f"{path}: weights do not fit architecture {payload['architecture']!r} {payload['network']}: {exc}"
        ) from None
    device = torch.device(device)
    net = net.to(device).eval()
    if fold_bn:
        fold_batchnorm(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    return LoadedModel(net=net, info=info, device=device, precision=precision)
