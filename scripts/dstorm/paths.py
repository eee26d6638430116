"""Where each job keeps its log and its Snakemake benchmark record: the one owner of those paths.

Standard library only (the Snakemake process imports it). Every job has a name under its stage folder,
``<stage>/<dataset>/<name>``: ``<name>`` is an acquisition's name, a training set's ``density_<d>``,
``<acquisition>/density_<d>`` for a cross-evaluation, ``<acquisition>.predictions``, ``.picasso`` and
``.grouped`` for the saved predictions, the Picasso export and the grouped table, and ``_<rule>`` for the per-dataset jobs. Acquisition names start with a letter or digit, never
hold a dot and never start with ``density_`` (the config schema), so no two jobs can share a name: a log
or a benchmark file is never written by two jobs. :func:`job_names` lists a config's jobs, and
:func:`dstorm.config.check_config` refuses names that differ only in case (one file on macOS or Windows).
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["JOBS", "log_path", "benchmark_path", "job_names", "config_jobs"]

#: Rule -> the job's name under results/logs/ and results/benchmarks/ (Snakemake wildcards in braces).
JOBS = {
    "estimate_conditions": "estimate/{dataset}/_conditions",
    "simulate_training_set": "simulate/{dataset}/density_{density}",
    "simulate_acquisition": "simulate/{dataset}/{acquisition}",
    "train": "train/{dataset}/density_{density}",
    "reconstruct": "reconstruct/{dataset}/{acquisition}",
    "save_predictions": "reconstruct/{dataset}/{acquisition}.predictions",
    "export_picasso": "reconstruct/{dataset}/{acquisition}.picasso",
    "group_localizations": "reconstruct/{dataset}/{acquisition}.grouped",
    "evaluate": "evaluate/{dataset}/{acquisition}",
    "cross_evaluate": "evaluate/{dataset}/{acquisition}/density_{density}",
    "benchmark": "evaluate/{dataset}/_benchmark",
    "training_curves": "evaluate/{dataset}/_training_curves",
    "summary": "_summary",
}


def _path(root: str, rule: str, suffix: str, wildcards: dict[str, str]) -> str:
    template = f"{root}/{JOBS[rule]}{suffix}"
    return template.format(**wildcards) if wildcards else template


def log_path(rule: str, **wildcards: str) -> str:
    """The rule's log: a template with ``{wildcards}`` for the rule, or one job's file given its wildcards."""
    return _path("results/logs", rule, ".log", wildcards)


def benchmark_path(rule: str, **wildcards: str) -> str:
    """The rule's Snakemake benchmark TSV, like :func:`log_path`."""
    return _path("results/benchmarks", rule, ".tsv", wildcards)


def job_names(jobs: Iterator[tuple[str, dict[str, str]]]) -> dict[str, list[str]]:
    """``{case-folded log path: [the jobs' names]}`` for ``(rule, wildcards)`` pairs: an entry with two
    jobs is a collision (the same file, or the same file on a case-insensitive file system). The names read
    like config keys: ``datasets.<d>`` or ``datasets.<d>.acquisitions.<a>``."""
    seen: dict[str, list[str]] = {}
    for rule, wildcards in jobs:
        names = f"datasets.{wildcards['dataset']}" if "dataset" in wildcards else "the run"
        if "acquisition" in wildcards:
            names += f".acquisitions.{wildcards['acquisition']}"
        seen.setdefault(log_path(rule, **wildcards).casefold(), []).append(names)
    return seen


def config_jobs(config: dict[str, Any], label) -> Iterator[tuple[str, dict[str, str]]]:
    """Every job a (schema-validated) config can run, as ``(rule, wildcards)``; ``label`` names a density."""
    yield "summary", {}
    for d, ds in config["datasets"].items():
        densities = [label(x) for x in (ds.get("training_set") or {}).get("densities", [])]
        if "estimate" in ds:
            yield "estimate_conditions", {"dataset": d}
        for x in densities:
            yield "simulate_training_set", {"dataset": d, "density": x}
            yield "train", {"dataset": d, "density": x}
        yield "benchmark", {"dataset": d}
        yield "training_curves", {"dataset": d}
        for a, acq in (ds.get("acquisitions") or {}).items():
            if "simulate" in acq:
                yield "simulate_acquisition", {"dataset": d, "acquisition": a}
            for rule in ("reconstruct", "save_predictions", "export_picasso", "group_localizations", "evaluate"):
                yield rule, {"dataset": d, "acquisition": a}
            for x in densities:
                yield "cross_evaluate", {"dataset": d, "acquisition": a, "density": x}
