"""Configuration helpers shared by the Snakefile and the library.

This module imports only the standard library: the Snakemake process (rules/common.smk) imports it to
check the config and to name outputs, and on a cluster that process may run in an environment without
numpy. Schema validation (types, ranges, typos) happens in common.smk with ``snakemake.utils.validate``
against workflow/schemas/config.schema.yaml; :func:`check_config` adds the checks that need more than
one key or the file system.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import zlib
from typing import Any, Iterator

from dstorm.architectures import ARCHITECTURES
from dstorm.cameras import CAMERA_PRESETS, MODEL_ONLY_KEYS  # the camera models' one owner
from dstorm.errors import InputError

__all__ = [
    "CAMERA_PRESETS",
    "ConfigError",
    "check_config",
    "density_label",
    "density_value",
    "needs_estimate",
    "prepare_estimates",
    "apply_estimates",
    "ESTIMATED",
    "resolve_camera",
    "dataset_config",
    "seed_sequence_entropy",
    "config_hash",
    "acquisition_names",
    "model_density",
    "check_keys",
]


class ConfigError(InputError):
    """A config value that the schema allows but the workflow cannot use; the message names the key."""


#: A training density taken from the conditions estimated from the dataset's acquisitions.
ESTIMATED = "estimated"

#: Sections a user may leave to the estimate (see :func:`needs_estimate`); any key typed in them wins.
ESTIMATED_SECTIONS = ("camera", "psf", "photophysics", "background")


def density_label(density: float | str) -> str:
    """The text of a density in paths: 6 -> '6', 0.5 -> '0.5', 'estimated' (training set ``density_<label>``)."""
    return ESTIMATED if density == ESTIMATED else format(float(density), "g")


def density_value(label: str | float | None) -> float | None:
    """A density label as a number; None for 'estimated' (known only once the estimate exists) or None."""
    return None if label is None or label == ESTIMATED else float(label)


def needs_estimate(dataset: dict[str, Any]) -> bool:
    """A dataset estimates its conditions when it asks to (``estimate``) or names no camera at all."""
    cam = dataset.get("camera") if isinstance(dataset.get("camera"), dict) else {}
    return "estimate" in dataset or ("preset" not in cam and "model" not in cam and not dataset.get("model"))


def prepare_estimates(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Before schema validation (which fills defaults): note each estimating dataset's hand-typed keys and
    give it the defaults that estimation implies. Returns ``{dataset: hand-typed sections}``; edits
    ``config`` in place: ``estimate`` (default: all TIFF acquisitions) and, without a training set or model
    file, ``training_set: {densities: [estimated]}``."""
    given = {}
    datasets = config.get("datasets")
    for name, ds in (datasets if isinstance(datasets, dict) else {}).items():
        if not isinstance(ds, dict) or not needs_estimate(ds):
            continue
        given[name] = copy.deepcopy({k: ds.get(k) or {} for k in ESTIMATED_SECTIONS})
        est = ds.setdefault("estimate", {}) or {}
        ds["estimate"] = est
        acquisitions = ds.get("acquisitions")
        if isinstance(est, dict) and "acquisitions" not in est and isinstance(acquisitions, dict):
            est["acquisitions"] = [a for a, acq in acquisitions.items() if isinstance(acq, dict) and "path" in acq]
        if "training_set" not in ds and not ds.get("model"):
            ds["training_set"] = {"densities": [ESTIMATED]}
    return given


def _deep_fill(given: dict, estimated: dict) -> dict:
    out = copy.deepcopy(estimated)
    for k, v in given.items():
        out[k] = _deep_fill(v, out[k]) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def apply_estimates(dataset: dict[str, Any], conditions: dict[str, Any]) -> dict[str, Any]:
    """The dataset's simulation config with the estimated ``conditions['config']`` sections filled in under
    the hand-typed keys (``dataset['given']``), key by key; the camera is then resolved again."""
    out = copy.deepcopy(dataset)
    given = dataset.get("given") or {}
    name = dataset.get("name")
    missing = [
        f"{section}.{key}"
        for section, key in REQUIRED_ESTIMATES
        if key not in (conditions["config"].get(section) or {})
        and key not in (given.get(section) or {})
        and not (section == "camera" and "preset" in (given.get("camera") or {}))
    ]
    if missing:
        raise ConfigError(
            f"datasets.{name}: the acquisitions could not support an estimate of {', '.join(missing)} (see "
            f"results/estimate/{name}/conditions.json for why); type these keys (for the camera: camera.preset, "
            "or camera.model, e_per_adu, baseline_adu and em_gain for an EMCCD)"
        )
    for section in ESTIMATED_SECTIONS:
        est = conditions["config"].get(section, {})
        if section == "camera":
            out[section] = resolve_camera(_deep_fill(given.get(section) or {}, est))
        else:
            base = copy.deepcopy(out.get(section) or {})
            if "photons" in est:  # an estimated distribution replaces the default one whole (not low/high)
                base.pop("photons", None)
            out[section] = _deep_fill(given.get(section) or {}, _deep_fill(est, base))
    return out


#: What a simulation needs from the estimate or the config: (section, key).
REQUIRED_ESTIMATES = (
    ("camera", "model"), ("camera", "e_per_adu"), ("camera", "baseline_adu"),
    ("psf", "sigma_nm"), ("photophysics", "photons"), ("background", "photons_per_px"),
)  # fmt: skip



def resolve_camera(camera: dict[str, Any]) -> dict[str, Any]:
    """Camera parameters with the preset (or the ideal camera's values) filled in under the user's keys."""
    camera = dict(camera)
    preset = camera.pop("preset", None)
    if preset is not None:
        resolved = copy.deepcopy(CAMERA_PRESETS[preset])
    else:
        resolved = copy.deepcopy(CAMERA_PRESETS["ideal"])
        resolved.pop("model")
    resolved.update({k: v for k, v in camera.items() if v is not None})
    if resolved.get("model") == "emccd":
        resolved.setdefault("spurious_charge_e", 0.0)
        resolved.setdefault("em_gain", 1.0)
    resolved.setdefault("read_noise_map", None)
    resolved.setdefault("offset_map", None)
    return resolved


#: The keys of a dataset that simulation reads: only these are the simulate rules' params, so that editing
#: the acquisitions, the training recipe, reconstruction or evaluation does not re-simulate training sets.
SIMULATION_KEYS = (
    "seed", "pixel_size_nm", "frame_size_px", "camera", "psf", "photophysics", "background", "structure", "training_set",
    "estimate", "given",
)  # fmt: skip


def dataset_config(config: dict[str, Any], dataset: str, given: dict | None = None) -> dict[str, Any]:
    """A plain, independent copy of one dataset's simulation inputs (:data:`SIMULATION_KEYS`, camera resolved).

    For a dataset that estimates its conditions, ``given`` (from :func:`prepare_estimates`) supplies its
    hand-typed sections under ``given``."""
    ds = config["datasets"][dataset]
    cfg = copy.deepcopy({k: ds[k] for k in SIMULATION_KEYS if k in ds})
    cfg["name"] = dataset
    if "estimate" in cfg:  # the camera is resolved once the estimate is merged in (apply_estimates)
        cfg["given"] = copy.deepcopy((given or {}).get(dataset, {}))
    else:
        cfg["camera"] = resolve_camera(cfg.get("camera", {}))
    return cfg


def acquisition_names(config: dict[str, Any], dataset: str, kind: str | None = None) -> list[str]:
    """Names of a dataset's acquisitions; ``kind`` 'simulate' or 'path' keeps only that kind."""
    acqs = config["datasets"][dataset].get("acquisitions", {})
    return [n for n, a in acqs.items() if kind is None or kind in a]


def model_density(config: dict[str, Any], dataset: str, acquisition: str) -> float | str | None:
    """The training density whose model reconstructs ``acquisition`` (None for a dataset with a model file).

    The acquisition's ``model_density``, else the dataset's ``reconstruction.model_density``, else: for a
    simulated acquisition the training density nearest its own (the higher on a tie), for a TIFF the highest;
    a dataset training at its estimated density uses that model.
    """
    ds = config["datasets"][dataset]
    if ds.get("model"):
        return None
    acq = ds["acquisitions"][acquisition]
    chosen = acq.get("model_density", ds.get("reconstruction", {}).get("model_density"))
    if chosen is not None:
        return chosen if chosen == ESTIMATED else float(chosen)
    if ESTIMATED in ds["training_set"]["densities"]:
        return ESTIMATED
    densities = [float(d) for d in ds["training_set"]["densities"]]
    if "simulate" in acq:
        target = float(acq["simulate"]["density"])
        return min(densities, key=lambda d: (abs(d - target), -d))
    return max(densities)


def seed_sequence_entropy(seed: int, *keys: str) -> tuple[int, tuple[int, ...]]:
    """(entropy, spawn_key) for ``numpy.random.SeedSequence``: one independent, stable stream per output.

    The keys name the output (e.g. ``("training_set", "density_6")``); CRC-32 makes them integers that do
    not change between Python processes (unlike ``hash``).
    """
    return int(seed), tuple(zlib.crc32(k.encode("utf-8")) for k in keys)


def config_hash(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable config fragment, stable across runs and key order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_errors(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                kind = {int: "a number", float: "a number", bool: "true/false"}.get(type(k), f"a {type(k).__name__}")
                yield (
                    f"{where or 'the config'}: the key {k} was read by YAML as {kind}, not a name; quote it "
                    f"(e.g. \"{k}\") or begin it with a letter"
                )
            else:
                yield from _key_errors(v, f"{where}.{k}" if where else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _key_errors(v, f"{where}[{i}]")


def check_keys(config: dict[str, Any]) -> None:
    """Before the schema: refuse keys that YAML did not read as text (``1:``, ``001:``, ``2024-05-01:``).

    Names become paths, so ``001`` read as the integer 1 would silently be renamed; a quoted key is a name."""
    _refuse(list(_key_errors(config, "")))


def _refuse(errors: list[str]) -> None:
    """Raise :class:`ConfigError` with one line per problem, key first."""
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))


def _simulates(ds: dict[str, Any]) -> list[str]:
    """What of a dataset is simulated (and so needs a camera): its training sets and simulated acquisitions."""
    what = ["training_set"] if "training_set" in ds else []
    return what + [f"acquisitions.{a}" for a, acq in ds.get("acquisitions", {}).items() if "simulate" in acq]


def _collision_errors(config: dict[str, Any]) -> Iterator[str]:
    from dstorm.paths import config_jobs, job_names

    reported = set()
    for path, jobs in job_names(config_jobs(config, density_label)).items():
        names = tuple(sorted(set(jobs)))
        if len(jobs) > 1 and names not in reported:
            reported.add(names)
            yield (
                f"{' and '.join(names)} differ only in case: their outputs and logs would be one file on a "
                f"case-insensitive file system (macOS, Windows), e.g. {path}; rename one"
            )


def _errors(config: dict[str, Any], base_dir: str) -> Iterator[str]:
    def exists(path: str) -> bool:
        return os.path.isfile(path if os.path.isabs(path) else os.path.join(base_dir, path))

    for name, ds in config["datasets"].items():
        key = f"datasets.{name}"
        cam = ds.get("camera", {})
        simulated = _simulates(ds)
        if "estimate" in ds:
            yield from _estimate_errors(key, ds)
        elif "preset" not in cam and "model" not in cam and simulated:
            yield (
                f"{key}.camera: give a `preset` ({', '.join(CAMERA_PRESETS)}) or a `model` (emccd, scmos) to simulate "
                f"{', '.join(simulated)}"
            )
        model = resolve_camera(cam).get("model")
        wrong = MODEL_ONLY_KEYS["scmos" if model == "emccd" else "emccd"]
        for k in wrong:
            if cam.get(k) is not None:
                yield f"{key}.camera.{k}: only for {'scmos' if model == 'emccd' else 'emccd'} cameras, this one is {model}"
        for k in MODEL_ONLY_KEYS["scmos"]:
            if cam.get(k) and not exists(cam[k]):
                yield f"{key}.camera.{k}: file not found: {cam[k]}"

        lo, hi = ds["psf"]["sigma_nm"]
        if lo > hi:
            yield f"{key}.psf.sigma_nm: expected [low, high] with low <= high, got [{lo}, {hi}]"
        ph = ds["photophysics"]["photons"]
        if ph["distribution"] == "uniform" and ph["low"] > ph["high"]:
            yield f"{key}.photophysics.photons: expected low <= high, got low={ph['low']}, high={ph['high']}"

        st = ds["structure"]
        if st["type"] == "table":
            if not st.get("path"):
                yield f"{key}.structure.path: required when structure.type is 'table' (a ThunderSTORM CSV)"
            elif not exists(st["path"]):
                yield f"{key}.structure.path: file not found: {st['path']}"

        if ("training_set" in ds) == bool(ds.get("model")):
            yield f"{key}: give exactly one of `training_set` (simulate and train) or `model` (a trained model file)"
        if ds.get("model") and not exists(ds["model"]):
            yield f"{key}.model: model file not found: {ds['model']}"
        if "training_set" in ds:
            yield from _training_set_errors(key, ds)

        for acq_name, acq in ds.get("acquisitions", {}).items():
            akey = f"{key}.acquisitions.{acq_name}"
            if ("simulate" in acq) == ("path" in acq):
                yield f"{akey}: give exactly one of `simulate` (a simulated test acquisition) or `path` (a TIFF stack)"
                continue
            if "path" in acq and not exists(acq["path"]):
                yield f"{akey}.path: acquisition file not found: {acq['path']}"
            if ds.get("model") and acq.get("model_density") is not None:
                yield f"{akey}.model_density: the dataset uses the model file {ds['model']}; remove this key"
            elif "training_set" in ds:
                chosen = acq.get("model_density", ds.get("reconstruction", {}).get("model_density"))
                labels = [density_label(d) for d in ds["training_set"]["densities"]]
                if chosen is not None and density_label(chosen) not in labels:
                    yield f"{akey}: model_density {density_label(chosen)} is not a training density of the dataset ({', '.join(labels)})"
            gt = acq.get("ground_truth")
            if gt and "simulate" in acq:
                yield f"{akey}.ground_truth: simulated acquisitions make their own ground truth; remove this key"
            elif gt and not exists(gt):
                yield f"{akey}.ground_truth: ground-truth table not found: {gt}"


def _estimate_errors(key: str, ds: dict[str, Any]) -> Iterator[str]:
    names = ds["estimate"]["acquisitions"]
    if not names:
        yield (
            f"{key}.estimate: no TIFF acquisition to estimate the imaging conditions from; add an acquisition "
            "with a `path`, or give the camera (`camera.preset` or `camera.model`) and the other conditions"
        )
    for a in names:
        acq = ds.get("acquisitions", {}).get(a)
        if acq is None or "path" not in acq:
            yield f"{key}.estimate.acquisitions: {a!r} is not a TIFF acquisition (`path`) of this dataset"


def _training_set_errors(key: str, ds: dict[str, Any]) -> Iterator[str]:
    ts = ds["training_set"]
    h, w = ds["frame_size_px"]
    name = ds["training"]["architecture"]
    if name not in ARCHITECTURES:
        yield f"{key}.training.architecture: {name!r} is not an architecture; known: {', '.join(ARCHITECTURES)}"
        return
    arch = ARCHITECTURES[name]
    if ts["patch_size_px"] % arch.frame_multiple(ts["upsampling_factor"]):
        yield (
            f"{key}.training_set.patch_size_px: patch_size_px × upsampling_factor must be divisible by "
            f"{arch.side_divisor} (architecture {name!r} pools {arch.side_divisor.bit_length() - 1} times), "
            f"got {ts['patch_size_px']} × {ts['upsampling_factor']}"
        )
    if ts["patch_size_px"] > min(h, w):
        yield f"{key}.training_set.patch_size_px: {ts['patch_size_px']} is larger than frame_size_px {[h, w]}"
    low, high = ts["density_range"]
    if not low <= 1.0 <= high:
        yield f"{key}.training_set.density_range: [{low:g}, {high:g}] should hold 1 (low <= 1 <= high: factors of the density)"
    labels = [density_label(d) for d in ts["densities"]]
    if len(set(labels)) != len(labels):
        yield f"{key}.training_set.densities: two densities share the label {labels} (use distinct values)"


def check_config(config: dict[str, Any], base_dir: str = ".") -> None:
    """Raise :class:`ConfigError` listing every problem the schema cannot see (one per line, key first).

    ``config`` must already be schema-validated with defaults filled in; relative paths are resolved
    against ``base_dir`` (Snakemake's working directory).
    """
    _refuse(list(_errors(config, base_dir)) + list(_collision_errors(config)))
