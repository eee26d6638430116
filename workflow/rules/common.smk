# Config validation, output lists and input/param functions. No lambdas in rules; the library in
# scripts/dstorm does the work, and only its stdlib-only config module is imported here.
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, os.path.join(workflow.basedir, "..", "scripts"))

from dstorm.config import (  # noqa: E402
    ConfigError,
    acquisition_names,
    check_config,
    check_keys,
    dataset_config,
    density_label,
    density_value,
    model_density,
    prepare_estimates,
)
from dstorm.locks import record_owner, remove_stale_locks  # noqa: E402
from dstorm.paths import benchmark_path, log_path  # noqa: E402
from dstorm.schema import format_problems, schema_problems  # noqa: E402

if workflow.is_main_process:  # a rerun after kill -9 works as written (see scripts/dstorm/locks.py)
    for removed in remove_stale_locks(os.path.join(os.getcwd(), ".snakemake", "locks")):
        logger.warning(removed)


def record_lock_owner():
    """onstart: note this process beside the locks Snakemake has just taken, so that a later run can tell
    they are stale once this process is gone."""
    lock_files = list(getattr(workflow.persistence, "_lockfile", {}).values())
    if lock_files:
        record_owner(lock_files)


CONFIG_SOURCE = ", ".join(CONFIG_FILES) or "no config file"
try:
    check_keys(config)
    # Datasets that estimate their conditions: their hand-typed keys, noted before the schema fills defaults.
    GIVEN = prepare_estimates(config)
    try:
        validate(config, "../schemas/config.schema.yaml")  # fills in the defaults
    except WorkflowError:
        # snakemake's message stops at the first problem, the schema dumped: list every one, key first
        problems = schema_problems(
            config, os.path.join(workflow.basedir, "schemas", "config.schema.yaml")
        )
        if not problems:
            raise
        raise ConfigError(format_problems(problems)) from None
    check_config(config, base_dir=os.getcwd())
except ConfigError as err:
    raise WorkflowError(f"{err}\n(config: {CONFIG_SOURCE})")

DATASETS = list(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS) or "(?!)",
    density=r"[0-9][0-9.e+-]*|estimated",
    acquisition=r"(?!density_)[A-Za-z0-9][A-Za-z0-9_-]*",


def training_densities(dataset):
    """Density labels of a dataset's training sets (none for a dataset with a given model file)."""
    ts = config["datasets"][dataset].get("training_set")
    return [density_label(x) for x in ts["densities"]] if ts else []


def all_outputs():
    """The default target's inputs: one file of each job that no other job needs. The summary needs every
    acquisition's metrics, hence its reconstruction, its model and the simulations behind them; a job in
    the DAG runs whenever any of its outputs is missing, so the files not named here (previews, TIFFs,
    figures) are made and remade too. Naming one file per job instead of about twenty per acquisition keeps
    planning fast with hundreds of acquisitions (scripts/benchmarks/plan_speed.py)."""
    files = ["results/summary.csv"]
    for d in DATASETS:
        if "estimate" in config["datasets"][d]:
            files.append(f"results/estimate/{d}/conditions.csv")
        save = config["datasets"][d]["reconstruction"]["save_predictions"]
        acquisitions = acquisition_names(config, d)
        if training_densities(d):
            files.append(f"results/evaluate/{d}/training_curves.png")
        if any(has_ground_truth(d, a) for a in acquisitions):
            files.append(f"results/evaluate/{d}/benchmark.png")
        if save:
            files += [
                f"results/reconstruct/{d}/{a}/predictions.tif" for a in acquisitions
            ]
        recon = config["datasets"][d]["reconstruction"]
        if "picasso" in recon["formats"]:
            files += [
                f"results/reconstruct/{d}/{a}/localizations.hdf5" for a in acquisitions
            ]
        if recon["grouping"]["enabled"]:
            files += [
                f"results/reconstruct/{d}/{a}/localizations_grouped.csv"
                for a in acquisitions
            ]
    return files


def has_ground_truth(dataset, acquisition):
    acq = config["datasets"][dataset]["acquisitions"][acquisition]
    return "simulate" in acq or bool(acq.get("ground_truth"))


def ground_truth_path(dataset, acquisition):
    acq = config["datasets"][dataset]["acquisitions"][acquisition]
    if "simulate" in acq:
        return f"results/simulate/{dataset}/{acquisition}/ground_truth.csv"
    return acq.get("ground_truth")


def get_ground_truth(wildcards):
    """The acquisition's ground-truth table as a list: [] when it has none."""
    path = ground_truth_path(wildcards.dataset, wildcards.acquisition)
    return [path] if path else []


def get_drift_truth(wildcards):
    """A simulated acquisition's true drift trajectory as a list: [] for a TIFF."""
    acq = config["datasets"][wildcards.dataset]["acquisitions"][wildcards.acquisition]
    if "simulate" in acq:
        return [f"results/simulate/{wildcards.dataset}/{wildcards.acquisition}/drift.csv"]
    return []


def get_evaluation_options(wildcards):
    options = dict(config["datasets"][wildcards.dataset]["evaluation"])
    options.pop("benchmark")
    return options


def chosen_model_label(dataset, acquisition):
    density = model_density(config, dataset, acquisition)
    return None if density is None else density_label(density)


def get_evaluation_info(wildcards):
    """Labels written into metrics.json: which acquisition, and the training density of its model."""
    density = getattr(wildcards, "density", None) or chosen_model_label(
        wildcards.dataset, wildcards.acquisition
    )
    return {
        "dataset": wildcards.dataset,
        "acquisition": wildcards.acquisition,
        "model_density": density_value(density),
    }


def other_models(dataset, acquisition):
    """Training densities (labels) whose models also score this acquisition for the benchmark."""
    if not config["datasets"][dataset]["evaluation"]["benchmark"]:
        return []
    if not has_ground_truth(dataset, acquisition):
        return []
    chosen = chosen_model_label(dataset, acquisition)
    return [x for x in training_densities(dataset) if x != chosen]


def get_benchmark_metrics(wildcards):
    """metrics.json of every (acquisition with ground truth, model) pair of the dataset."""
    d = wildcards.dataset
    files = []
    for a in acquisition_names(config, d):
        if has_ground_truth(d, a):
            files.append(f"results/evaluate/{d}/{a}/metrics.json")
            files += [
                f"results/evaluate/{d}/{a}/models/density_{x}.json"
                for x in other_models(d, a)
            ]
    return files


def get_cross_ground_truth(wildcards):
    if wildcards.density not in other_models(wildcards.dataset, wildcards.acquisition):
        raise WorkflowError(
            f"no benchmark of {wildcards.dataset}/{wildcards.acquisition} with the density_{wildcards.density} "
            f"model (it needs a ground truth, evaluation.benchmark, and a model that is not its own)"
        )
    return ground_truth_path(wildcards.dataset, wildcards.acquisition)


def get_histories(wildcards):
    return [
        f"results/train/{wildcards.dataset}/density_{x}/history.csv"
        for x in training_densities(wildcards.dataset)
    ]


def get_history_labels(wildcards):
    return [f"trained at {x}/µm²" for x in training_densities(wildcards.dataset)]


def _stage(rule, output, **wildcards):
    """One stage of an acquisition's summary row: its output, log and benchmark file."""
    return {
        "stage": rule,
        "output": output,
        "log": log_path(rule, **wildcards),
        "benchmark": benchmark_path(rule, **wildcards),
    }


def summary_entries():
    """One entry per acquisition: its labels, metrics.json, and the stages behind it in order (each with its
    output, log and benchmark file), which give the summary its timings and, after a failure, its status.
    """
    entries = []
    for d in DATASETS:
        for a in acquisition_names(config, d):
            acq = config["datasets"][d]["acquisitions"][a]
            label = chosen_model_label(d, a)
            stages = []
            if "simulate" in acq:
                stages.append(
                    _stage(
                        "simulate_acquisition",
                        f"results/simulate/{d}/{a}/frames.tif",
                        dataset=d,
                        acquisition=a,
                    )
                )
            if label is not None:
                train_set = f"results/simulate/{d}/density_{label}/patches.npz"
                model = f"results/train/{d}/density_{label}/model.pt"
                stages.append(
                    _stage("simulate_training_set", train_set, dataset=d, density=label)
                )
                stages.append(_stage("train", model, dataset=d, density=label))
            for rule, output in (
                ("reconstruct", f"results/reconstruct/{d}/{a}/reconstruction.json"),
                ("evaluate", f"results/evaluate/{d}/{a}/metrics.json"),
            ):
                stages.append(_stage(rule, output, dataset=d, acquisition=a))
            entries.append(
                {
                    "dataset": d,
                    "acquisition": a,
                    "kind": "simulated" if "simulate" in acq else "file",
                    "density_per_um2": (
                        acq["simulate"]["density"] if "simulate" in acq else None
                    ),
                    "model_density": density_value(label),
                    "metrics": f"results/evaluate/{d}/{a}/metrics.json",
                    "stages": stages,
                }
            )
    return entries


def get_summary_inputs(wildcards):
    """Every acquisition's metrics.json. The stages' benchmark files are read too (for the timings) but not
    declared: they exist once those jobs are done, and a missing one is an empty cell, not a rerun.
    """
    return [e["metrics"] for e in summary_entries()]


def get_summary_entries(wildcards):
    return summary_entries()


def summary_after_failure():
    """After a run with failed jobs (keep-going), write results/summary.csv anyway: finished acquisitions
    with their metrics, failed ones marked with the stage that failed and its log."""
    try:
        from dstorm.evaluation.evaluate import summary_table
    except (
        ImportError
    ) as err:  # the snakemake process's environment may lack numpy/pandas
        logger.warning(f"results/summary.csv not written after the failure: {err}")
        return
    table = summary_table(summary_entries(), "results/summary.csv")
    failed = int((~table["status"].str.startswith("ok")).sum())
    logger.warning(
        f"results/summary.csv: {len(table) - failed} acquisitions evaluated, {failed} failed (see its status column)"
    )


def get_acquisition_frames(wildcards):
    """A simulated acquisition's frames.tif, or the user's TIFF."""
    acq = config["datasets"][wildcards.dataset]["acquisitions"][wildcards.acquisition]
    if "simulate" in acq:
        return (
            f"results/simulate/{wildcards.dataset}/{wildcards.acquisition}/frames.tif"
        )
    return acq["path"]


def get_acquisition_model(wildcards):
    """The dataset's model file, or the model of the chosen training density (see config/README.md)."""
    ds = config["datasets"][wildcards.dataset]
    if ds.get("model"):
        return ds["model"]
    density = model_density(config, wildcards.dataset, wildcards.acquisition)
    return (
        f"results/train/{wildcards.dataset}/density_{density_label(density)}/model.pt"
    )


def get_pixel_size(wildcards):
    return config["datasets"][wildcards.dataset]["pixel_size_nm"]


def get_reconstruction_options(wildcards):
    return dict(config["datasets"][wildcards.dataset]["reconstruction"])


def get_grouping(wildcards):
    return dict(config["datasets"][wildcards.dataset]["reconstruction"]["grouping"])


def get_dataset(wildcards):
    """The dataset's resolved config (camera preset filled in), a plain dict for the script."""
    return dataset_config(config, wildcards.dataset, GIVEN)


def get_conditions(wildcards):
    """The estimated conditions a dataset's simulations read (none for a dataset with typed conditions)."""
    if "estimate" in config["datasets"][wildcards.dataset]:
        return [f"results/estimate/{wildcards.dataset}/conditions.json"]
    return []


def get_estimate_inputs(wildcards):
    """The TIFF acquisitions a dataset estimates its conditions from."""
    ds = config["datasets"][wildcards.dataset]
    return [ds["acquisitions"][a]["path"] for a in ds["estimate"]["acquisitions"]]


def get_estimate_options(wildcards):
    ds = config["datasets"][wildcards.dataset]
    return {
        "pixel_size_nm": ds["pixel_size_nm"],
        "seed": ds["seed"],
        "max_frames": ds["estimate"]["max_frames"],
        "density": ds["estimate"]["density"],
        "given": GIVEN.get(wildcards.dataset, {}),
        "acquisitions": ds["estimate"]["acquisitions"],
    }


def get_training_density(wildcards):
    """The configured density whose label is the `density` wildcard."""
    ts = config["datasets"][wildcards.dataset].get("training_set") or {"densities": []}
    for x in ts["densities"]:
        if density_label(x) == wildcards.density:
            return x if x == "estimated" else float(x)
    raise WorkflowError(
        f"datasets.{wildcards.dataset}.training_set.densities has no density {wildcards.density} "
        f"(configured: {training_densities(wildcards.dataset)})"
    )


def get_training_recipe(wildcards):
    """The dataset's training recipe (schema defaults filled in), checked against the density."""
    get_training_density(wildcards)
    return dict(config["datasets"][wildcards.dataset]["training"])


def get_seed(wildcards):
    return config["datasets"][wildcards.dataset]["seed"]


def get_simulated_acquisition(wildcards):
    acq = config["datasets"][wildcards.dataset]["acquisitions"].get(
        wildcards.acquisition, {}
    )
    if "simulate" not in acq:
        raise WorkflowError(
            f"datasets.{wildcards.dataset}.acquisitions.{wildcards.acquisition} is not a simulated acquisition"
        )
    return acq["simulate"]


def get_structure_table(wildcards):
    """The ThunderSTORM CSV a `table` structure samples from (an input, so edits trigger reruns)."""
    structure = config["datasets"][wildcards.dataset]["structure"]
    return [structure["path"]] if structure["type"] == "table" else []


def get_camera_maps(wildcards):
    camera = config["datasets"][wildcards.dataset].get("camera", {})
    return [camera[k] for k in ("read_noise_map", "offset_map") if camera.get(k)]
