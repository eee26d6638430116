"""Bad configs stop snakemake before any job runs, with a message that names the key."""

import copy

import pytest

from conftest import REPO, TINY_TRAINING_SET, run_snakemake, tiny_config, validated
from dstorm.config import ConfigError, check_config, density_label


def bad(path: str, value=None, *, delete: bool = False):
    """tiny_config with the value at a dotted path replaced (or deleted)."""
    config = tiny_config()
    keys = path.split(".")
    node = config
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return config


def test_missing_ground_truth_table_is_reported_with_its_path(tmp_path):
    (tmp_path / "cells.tif").write_bytes(b"")
    config = bad("datasets.t.acquisitions.cells", {"path": str(tmp_path / "cells.tif"), "ground_truth": "gt/missing.csv"})
    with pytest.raises(ConfigError, match="datasets.t.acquisitions.cells.ground_truth: ground-truth table not found: gt/missing.csv"):
        check_config(validated(config), base_dir=str(tmp_path))


def test_every_problem_is_listed_at_once():
    config = validated(bad("datasets.t.psf.sigma_nm", [120, 100]))
    config["datasets"]["t"]["training_set"]["patch_size_px"] = 9
    with pytest.raises(ConfigError) as err:
        check_config(config)
    assert "psf.sigma_nm" in str(err.value) and "patch_size_px" in str(err.value)


def test_defaults_fill_every_dataset_independently():
    config = tiny_config()
    config["datasets"]["u"] = copy.deepcopy(config["datasets"]["t"])
    config["datasets"]["u"]["psf"] = {"sigma_nm": [90, 95]}
    config = validated(config)
    assert config["datasets"]["t"]["psf"]["sigma_nm"] == [106, 115]
    assert config["datasets"]["u"]["psf"]["sigma_nm"] == [90, 95]
    assert config["datasets"]["u"]["training_set"]["heatmap_sigma_px"] == 1
    assert config["datasets"]["u"]["training"]["steps_per_epoch"] == 2  # tiny recipe given
    del config["datasets"]["u"]["training"]
    assert validated(config)["datasets"]["u"]["training"]["steps_per_epoch"] == 400  # official default
    assert config["datasets"]["t"]["photophysics"]["photons"]["distribution"] == "uniform"


def test_the_shipped_configs_are_valid():
    import yaml

    for path in (REPO / "config").glob("*.yaml"):
        config = validated(yaml.safe_load(path.read_text()))
        check_config(config, base_dir=str(REPO))


def test_density_labels():
    assert [density_label(d) for d in (6, 6.0, 0.5, 1.25)] == ["6", "6", "0.5", "1.25"]


def test_evaluation_defaults_agree_with_the_library():
    from dstorm.evaluation.evaluate import DEFAULT_OPTIONS

    defaults = dict(validated(tiny_config())["datasets"]["t"]["evaluation"])
    assert defaults.pop("benchmark") is True
    assert defaults == DEFAULT_OPTIONS
    # the SMLM 2016 challenge's scoring (shared/reference/deep-storm.md): 250 nm matching, α = 1 /nm
    assert DEFAULT_OPTIONS["tolerance_nm"] == 250 and DEFAULT_OPTIONS["efficiency_alpha_per_nm"] == 1.0


def test_simulation_params_ignore_later_stages():
    """Editing acquisitions, the training recipe, reconstruction or evaluation must not re-simulate training
    sets: the simulate rules get only the keys simulation reads."""
    from dstorm.config import dataset_config

    base = validated(tiny_config())
    edited = copy.deepcopy(tiny_config())
    edited["datasets"]["t"]["acquisitions"]["new"] = {"simulate": {"density": 3, "frames": 7}}
    edited["datasets"]["t"]["training"]["epochs"] = 5
    edited["datasets"]["t"]["reconstruction"] = {"threshold": 0.2}
    edited["datasets"]["t"]["evaluation"] = {"tolerance_nm": 100}
    assert dataset_config(validated(edited), "t") == dataset_config(base, "t")
    changed = copy.deepcopy(tiny_config())
    changed["datasets"]["t"]["psf"] = {"sigma_nm": [90, 95]}
    assert dataset_config(validated(changed), "t") != dataset_config(base, "t")


def test_paper_benchmark_plans_every_density_with_every_model(tmp_path):
    import re

    import yaml

    config = yaml.safe_load((REPO / "config" / "paper_benchmark.yaml").read_text())
    ds = validated(config)["datasets"]["paper"]
    assert ds["frame_size_px"] == [64, 64] and ds["pixel_size_nm"] == 100
    assert ds["training_set"]["upsampling_factor"] == 8 and ds["training"]["steps_per_epoch"] == 400
    densities = sorted(a["simulate"]["density"] for a in ds["acquisitions"].values())
    assert densities[0] <= 1 and densities[-1] >= 9
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    n_models, n_acqs = len(ds["training_set"]["densities"]), len(ds["acquisitions"])
    assert re.search(rf"\btrain\s+{n_models}\b", out)
    assert re.search(rf"\breconstruct\s+{n_acqs}\b", out)
    assert re.search(rf"\bcross_evaluate\s+{n_acqs * (n_models - 1)}\b", out)


def test_keys_yaml_reads_as_numbers_or_dates_are_refused_by_name():
    import yaml

    from dstorm.config import check_keys

    config = yaml.safe_load("datasets: {t: {acquisitions: {1: {}, 001: {}, 2024-01-05: {}, '7': {}}}, 9: {}}")
    with pytest.raises(ConfigError) as err:
        check_keys(config)
    lines = str(err.value).splitlines()[1:]
    assert lines == [
        '  datasets.t.acquisitions: the key 1 was read by YAML as a number, not a name; quote it (e.g. "1") or begin it with a letter',
        '  datasets.t.acquisitions: the key 2024-01-05 was read by YAML as a date, not a name; quote it (e.g. "2024-01-05") or begin it with a letter',
        '  datasets: the key 9 was read by YAML as a number, not a name; quote it (e.g. "9") or begin it with a letter',
    ]  # 1 and 001 are the same key to YAML: the file's `001` can only be known by quoting it
    check_keys(yaml.safe_load("datasets: {t: {acquisitions: {'1': {}, '001': {}}}}"))  # quoted: names


def test_every_job_has_its_own_log_and_benchmark_file():
    from dstorm.paths import JOBS, benchmark_path, config_jobs, job_names, log_path

    config = tiny_config(training_set={**TINY_TRAINING_SET, "densities": [2, 6]})
    config["datasets"]["t"]["acquisitions"] = {n: {"simulate": {"density": 1, "frames": 2}} for n in ("x_1", "benchmark", "training_curves", "summary")}
    config["datasets"]["t_x"] = copy.deepcopy(config["datasets"]["t"])
    config["datasets"]["t_x"]["acquisitions"] = {"1": {"simulate": {"density": 1, "frames": 2}}}
    jobs = list(config_jobs(validated(config), density_label))
    assert {rule for rule, _ in jobs} == set(JOBS) - {"estimate_conditions"}
    paths = [log_path(r, **w) for r, w in jobs] + [benchmark_path(r, **w) for r, w in jobs]
    assert len(set(paths)) == len(paths) == 2 * len(jobs)
    assert all(len(v) == 1 for v in job_names(iter(jobs)).values())
    assert log_path("reconstruct", dataset="t", acquisition="x_1") == "results/logs/reconstruct/t/x_1.log"
    assert log_path("reconstruct", dataset="t_x", acquisition="1") == "results/logs/reconstruct/t_x/1.log"
    assert log_path("benchmark", dataset="t") != log_path("evaluate", dataset="t", acquisition="benchmark")
    assert log_path("train") == "results/logs/train/{dataset}/density_{density}.log"  # the rule's template


def test_names_differing_only_in_case_are_refused():
    config = tiny_config()
    config["datasets"]["t"]["acquisitions"]["ACQ"] = {"simulate": {"density": 1, "frames": 2}}
    with pytest.raises(ConfigError, match=r"datasets.t.acquisitions.ACQ and datasets.t.acquisitions.acq differ only in case") as err:
        check_config(validated(config))
    assert str(err.value).count("differ only in case") == 1  # one line per pair, not per job


def test_a_dataset_with_a_model_file_needs_no_camera(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"x")
    (tmp_path / "a.tif").write_bytes(b"x")
    config = {"datasets": {"m": {"model": str(tmp_path / "m.pt"), "acquisitions": {"a": {"path": str(tmp_path / "a.tif")}}}}}
    check_config(validated(config))
    config["datasets"]["m"]["acquisitions"]["s"] = {"simulate": {"density": 1, "frames": 2}}
    with pytest.raises(ConfigError, match=r"datasets.m.camera: give a `preset` .* to simulate acquisitions.s"):
        check_config(validated(config))


def test_schema_problems_are_one_line_each_key_first():
    from dstorm.schema import format_problems, schema_problems

    config = tiny_config()
    config["datasets"]["t"]["pixel_size_mn"] = 100
    config["datasets"]["t"]["seed"] = -1
    config["datasets"]["t"]["camera"]["presett"] = "x"
    problems = schema_problems(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    message = format_problems(problems, "my.yaml")
    lines = message.splitlines()
    assert lines[:4] == [
        "invalid config (my.yaml): 3 problem(s)",
        "  datasets.t.camera.presett: unknown key; did you mean preset?",
        "  datasets.t.pixel_size_mn: unknown key; did you mean pixel_size_nm?",
        "  datasets.t.seed: -1 is less than the minimum of 0",
    ]
    assert "What these keys expect" in message and len(lines) < 15
    assert schema_problems(tiny_config(), REPO / "workflow" / "schemas" / "config.schema.yaml") == []
