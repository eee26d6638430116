"""Estimate one dataset's conditions from its TIFF acquisitions and express them as config sections."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from dstorm.cameras import CAMERA_PRESETS, adu_per_electron, mean_offset_adu
from dstorm.config import resolve_camera
from dstorm.estimation.conditions import Estimates, EstimationError, estimate_conditions, simulator_camera
from dstorm.io import jsonable
from dstorm.stack import TiffStack

__all__ = ["read_frames", "estimate_dataset", "conditions_config", "typed_camera"]

log = logging.getLogger(__name__)

#: Relative half-width of the PSF-width range around the estimate that training sets draw from.
SIGMA_SPREAD = 0.04


def read_frames(paths: list[str], max_frames: int) -> tuple[np.ndarray, float | None, bool]:
    """The first ``max_frames`` frames of each file, stacked; the saturation value of the files' integer
    type (None for floats); whether every value is an integer."""
    stacks, saturation, integer = [], None, True
    shape = None
    for path in paths:
        with TiffStack(path) as stack:
            if shape is not None and (stack.height, stack.width) != shape:
                raise EstimationError(f"{path}: frames of {stack.height}×{stack.width} px, but {paths[0]} has {shape[0]}×{shape[1]}")
            shape = (stack.height, stack.width)
            n = min(stack.n_frames, max_frames)
            batches = []
            for first, batch in stack.batches(64):
                if first >= n:
                    break
                batches.append(batch)
            frames = np.concatenate(batches)[:n]
            if np.issubdtype(stack.dtype, np.integer):
                saturation = float(np.iinfo(stack.dtype).max)
            else:
                integer = integer and bool(np.all(frames == np.round(frames)))
            log.info("%s: %d of %d frames of %d×%d px (%s)", path, n, stack.n_frames, *shape, stack.dtype)
            stacks.append(frames)
    return np.concatenate(stacks).astype(np.float64), saturation, integer


def typed_camera(given: dict[str, Any]) -> dict[str, Any]:
    """What the hand-typed camera keys fix for the estimator: model, quantum efficiency and, where the
    typed keys (or a preset) determine them, the gain (ADU per photo-electron) and the offset (ADU)."""
    cam = dict(given or {})
    out: dict[str, Any] = {"camera_model": cam.get("model"), "quantum_efficiency": cam.get("quantum_efficiency") or 1.0}
    if "preset" in cam:
        full = resolve_camera(cam)
        out["camera_model"] = full["model"]
        out["quantum_efficiency"] = full["quantum_efficiency"]
        cam = full
    if cam.get("e_per_adu") is not None and (cam.get("model") == "scmos" or cam.get("em_gain") is not None):
        out["gain_adu_per_e"] = adu_per_electron(cam)
    if cam.get("baseline_adu") is not None:
        out["offset_adu"] = mean_offset_adu(cam)
    return out


def conditions_config(est: Estimates, *, integer_data: bool, given_camera: dict[str, Any]) -> dict[str, Any]:
    """The estimates as config sections (camera, psf, photophysics, background) the simulator reads; a
    value the data could not support is left out (the simulation then needs it typed)."""
    sections = _all_sections(est, integer_data=integer_data, given_camera=given_camera)
    return {
        name: {k: v for k, v in section.items() if _finite(v)} for name, section in sections.items()
    }


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, str):
        return value != "unknown"
    return value is None or math.isfinite(float(value))


def _all_sections(est: Estimates, *, integer_data: bool, given_camera: dict[str, Any]) -> dict[str, Any]:
    v = est.values
    qe = float(given_camera.get("quantum_efficiency") or CAMERA_PRESETS["ideal"]["quantum_efficiency"])
    camera = simulator_camera(v, quantum_efficiency=qe, em_gain=given_camera.get("em_gain"), integer_data=integer_data)
    sigma = v["psf_sigma_nm"]
    return {
        "camera": camera,
        "psf": {"sigma_nm": [round(sigma * (1 - SIGMA_SPREAD), 2), round(sigma * (1 + SIGMA_SPREAD), 2)]},
        "photophysics": est.diagnostics.get("photophysics") or {
            "photons": {"distribution": "normal", "mean": round(v["photons_mean"], 1), "std": round(v["photons_std"], 1)}
        },
        "background": {
            "photons_per_px": round(max(v["background_photons_per_px"], 0.0), 3),
            "variation": round(v["background_variation"], 3),
        },
    }


def estimate_dataset(
    paths: list[str], *, pixel_size_nm: float, max_frames: int, given: dict[str, Any], seed: int,
    population: bool = False,
) -> tuple[dict[str, Any], Estimates]:
    """Estimate from the files; return the JSON-ready conditions document and the raw :class:`Estimates`.
    ``population``: estimate the density and photons by fitting the simulator (``estimate.density:
    simulation``) instead of the signal ratio."""
    frames, saturation, integer = read_frames(paths, max_frames)
    camera = typed_camera((given or {}).get("camera") or {})
    log.info("estimating from %d frames; typed camera facts: %s", len(frames), camera or "none")
    est = estimate_conditions(frames, pixel_size_nm=pixel_size_nm, saturation=saturation, seed=seed,
                              population=population, **camera)
    values = dict(est.values)
    values["training_density_per_um2"] = float(format(values["density_per_um2"], ".2g"))
    doc = {
        "sources": [str(Path(p)) for p in paths],
        "pixel_size_nm": float(pixel_size_nm),
        "values": values,
        "standard_errors": est.errors,
        "quality": est.diagnostics["quality"],
        "warnings": est.warnings,
        "given": given,
        "config": conditions_config(est, integer_data=integer, given_camera=camera | ((given or {}).get("camera") or {})),
    }
    return jsonable(doc), est
