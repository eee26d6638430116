"""The camera models, in one place: presets, the keys only one model has, the excess noise of each, and the
conversions between a camera section of the config and what the data show (ADU per photo-electron, mean
offset). The config checks, the simulator and the estimator all ask here. Standard library only (the
Snakemake process imports it through dstorm.config).

The simulator's models (:mod:`dstorm.simulation.camera`): an sCMOS turns photo-electrons into
``floor(e / e_per_adu + N(0, read noise) / e_per_adu + baseline)``; an EMCCD first multiplies each
electron's charge by an exponential of mean ``em_gain`` (the excess-noise factor 2).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CAMERA_PRESETS", "MODEL_ONLY_KEYS", "EXCESS_NOISE", "adu_per_electron", "mean_offset_adu"]

#: Named cameras. ``ideal`` counts photons exactly; ``epfl2016`` is the EMCCD of the EPFL SMLM 2016
#: challenge (as used by DECODE); ``zerocostdl4mic`` is the ZeroCostDL4Mic notebook's camera
#: (ADU = Poisson(photons) + 4.5 N(0, 1) + 50); ``scmos_typical`` has a current sCMOS's typical figures
#: (QE 0.72, read noise 1.6 e⁻ rms, 0.46 e⁻/ADU, offset 100 ADU).
CAMERA_PRESETS: dict[str, dict[str, Any]] = {
    "ideal": {
        "model": "scmos",
        "quantum_efficiency": 1.0,
        "read_noise_e": 0.0,
        "e_per_adu": 1.0,
        "baseline_adu": 0.0,
        "bit_depth": 16,
    },
    "epfl2016": {
        "model": "emccd",
        "quantum_efficiency": 0.9,
        "read_noise_e": 74.4,
        "spurious_charge_e": 0.002,
        "em_gain": 300.0,
        "e_per_adu": 45.0,
        "baseline_adu": 100.0,
        "bit_depth": 16,
    },
    "scmos_typical": {
        "model": "scmos",
        "quantum_efficiency": 0.72,
        "read_noise_e": 1.6,
        "e_per_adu": 0.46,
        "baseline_adu": 100.0,
        "bit_depth": 16,
    },
    "zerocostdl4mic": {
        "model": "scmos",
        "quantum_efficiency": 1.0,
        "read_noise_e": 4.5,
        "e_per_adu": 1.0,
        "baseline_adu": 50.0,
        "bit_depth": 16,
    },
}

#: Keys that only one camera model has.
MODEL_ONLY_KEYS = {"emccd": ("spurious_charge_e", "em_gain"), "scmos": ("read_noise_map", "offset_map")}

#: Excess-noise factor F and third-cumulant ratio c of each model: the background's variance is
#: ``F·k·(m − o) + r²`` and its third cumulant ``c·k²·(m − o)``, with ``k`` the ADU per photo-electron.
EXCESS_NOISE = {"emccd": (2.0, 1.5), "scmos": (1.0, 1.0)}


def adu_per_electron(camera: dict[str, Any]) -> float:
    """ADU per photo-electron of a resolved camera section: ``em_gain / e_per_adu`` (EMCCD) or ``1 / e_per_adu``."""
    gain = float(camera.get("em_gain") or 1.0) if camera.get("model") == "emccd" else 1.0
    return gain / float(camera["e_per_adu"])


def mean_offset_adu(camera: dict[str, Any]) -> float:
    """The mean ADU of a dark pixel: ``baseline − 0.5``, the mean of ``floor(x + baseline)``."""
    return float(camera["baseline_adu"]) - 0.5
