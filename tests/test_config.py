"""Bad configs stop snakemake before any job runs, with a message that names the key."""

import copy

import pytest

from conftest import REPO, run_snakemake, tiny_config, validated
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


CASES = {
    "typo in a key": (bad("datasets.t.camra", {"preset": "ideal"}), ["'camra' was unexpected", "['datasets']['t']"]),
    "value out of range": (bad("datasets.t.pixel_size_nm", -5), ["['datasets']['t']['pixel_size_nm']", "minimum of 0"]),
    "unknown camera preset": (bad("datasets.t.camera.preset", "andor"), ["['camera']['preset']", "'epfl2016'"]),
    "wrong type": (bad("datasets.t.training_set.densities", "six"), ["['training_set']['densities']", "not of type 'array'"]),
    "missing required key": (bad("datasets", {"t": {"camera": {"preset": "ideal"}}}), ["'datasets.t: give exactly one of `training_set`"[1:]]),
    "model file not found": (bad("datasets.t.model", "old/model.pt"), ["datasets.t.model: model file not found: old/model.pt"]),
    "sigma range reversed": (bad("datasets.t.psf.sigma_nm", [120, 100]), ["datasets.t.psf.sigma_nm: expected [low, high]"]),
    "patch not divisible by 8": (
        bad("datasets.t.training_set.patch_size_px", 9),
        ["datasets.t.training_set.patch_size_px: patch_size_px × upsampling_factor must be divisible by 8"],
    ),
    "acquisition both kinds": (
        bad("datasets.t.acquisitions.acq.path", "x.tif"),
        ["datasets.t.acquisitions.acq: give exactly one of `simulate`"],
    ),
    "missing acquisition file": (
        bad("datasets.t.acquisitions.cells", {"path": "data/cells.tif"}),
        ["datasets.t.acquisitions.cells.path: acquisition file not found: data/cells.tif"],
    ),
    "reserved acquisition name": (
        bad("datasets.t.acquisitions.density_3", {"simulate": {"density": 3, "frames": 2}}),
        ["'density_3' does not match"],
    ),
    "model density not trained": (
        bad("datasets.t.acquisitions.acq.model_density", 3),
        ["datasets.t.acquisitions.acq: model_density 3 is not a training density of the dataset (6)"],
    ),
    "emccd key on an scmos camera": (
        bad("datasets.t.camera", {"preset": "ideal", "em_gain": 100}),
        ["datasets.t.camera.em_gain: only for emccd cameras"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_stops_snakemake_naming_the_key(tmp_path, case):
    config, expected = CASES[case]
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for text in expected:
        assert text in output, output
    assert not (tmp_path / "results").exists()


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
