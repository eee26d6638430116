"""Numeric precision for training and inference, chosen from what the device offers.

One vocabulary for both (``training.precision``, ``reconstruction.precision``): ``"32"`` (fp32, the
reference), ``"bf16-mixed"`` (bfloat16 autocast; fp32 weights, optimiser and accumulations), ``"16-mixed"``
(float16 autocast, GPUs only) and ``"auto"`` (the default), which :func:`choose_precision` resolves:

- a CUDA GPU: ``bf16-mixed`` where it supports bfloat16 (Ampere and later), else ``16-mixed``;
- a CPU with native bfloat16 arithmetic (AVX-512 BF16 or AMX): ``bf16-mixed`` (about 2× fp32 there);
- any other CPU: ``32``: without native support bfloat16 is emulated and about 10× slower than fp32.

The choice depends on the CPU's instruction set, never on a timing, and is logged with its reason. The
accuracy cost of ``bf16-mixed`` is bounded by a test (Jaccard within 0.5 point, RMSE within 1 nm of fp32)
and measured by scripts/benchmarks/throughput.py.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "choose_precision", "autocast"]

#: Every value the config accepts; "auto" is resolved to one of the others.
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX-BF16): torch's own probe, else the
    flags of /proc/cpuinfo."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        if probe is not None and (probe() or (amx is not None and amx())):
            return True
        if probe is not None:
            return False
    except Exception:  # noqa: BLE001 - a private API; fall back to the flags
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(requested, device: torch.device | str) -> tuple[str, str]:
    """``(precision, reason)`` for ``requested`` (one of :data:`PRECISIONS`) on ``device``: "auto" resolved
    as the module docstring says; "16-mixed" on a CPU falls back to "32"; the reason is for the log."""
    requested = str(requested)
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r}; expected one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if device.type == "cuda":
        if requested != "auto":
            return requested, "as configured"
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "auto: the GPU supports bfloat16"
        return "16-mixed", "auto: the GPU has no bfloat16; float16 with loss scaling"
    if requested == "16-mixed":
        return "32", "16-mixed needs a GPU; fp32 on the CPU"
    if requested != "auto":
        return requested, "as configured"
    if cpu_has_native_bf16():
        return "bf16-mixed", "auto: the CPU has native bfloat16 (AVX-512 BF16/AMX)"
    return "32", "auto: the CPU has no native bfloat16 (AVX-512 BF16/AMX), where bf16 would be ~10× slower"


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved ``precision`` for inference (none for "32")."""
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
