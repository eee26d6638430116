"""The benchmark's other (acquisition, model) pairs: reconstruct with another model of the dataset, then
score exactly like the evaluate stage. Imports torch (through the reconstruction); the evaluate stage does not."""

from __future__ import annotations

import tempfile

from dstorm.evaluation.evaluate import evaluate_acquisition
from dstorm.reconstruction import outputs_in, reconstruct

__all__ = ["cross_evaluate"]


def cross_evaluate(
    *,
    frames: str,
    model: str,
    ground_truth: str,
    metrics: str,
    pixel_size_nm: float,
    reconstruction: dict | None = None,
    options: dict | None = None,
    seed: tuple[int, tuple[int, ...]] = (0, ()),
    info: dict | None = None,
) -> dict:
    """Reconstruct ``frames`` with ``model`` in a temporary folder and score it like
    :func:`evaluate_acquisition`, keeping only the metrics: the benchmark's other (acquisition, model)
    pairs."""
    recon_opts = {k: v for k, v in (reconstruction or {}).items() if k in ("threshold", "neighbourhood", "batch_size", "precision", "compile")}
    with tempfile.TemporaryDirectory(prefix="dstorm-cross-") as tmp:
        outs = outputs_in(tmp)
        reconstruct(frames, model, outs, pixel_size_nm=pixel_size_nm, **recon_opts)
        return evaluate_acquisition(
            localizations=outs["localizations"], super_resolution=outs["super_resolution"],
            widefield=outs["widefield"], reconstruction=outs["summary"], ground_truth=ground_truth,
            outputs={"metrics": metrics}, options=options, seed=seed, info=info,
        )  # fmt: skip
