"""Shared fixtures: the repository, ../shared/data (skipped where absent) and validated configs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SNAKEFILE = REPO / "workflow" / "Snakefile"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

sys.path.insert(0, str(REPO / "scripts"))


def validated(config: dict) -> dict:
    """Validate against the workflow's schema with defaults filled in, as common.smk does."""
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    return config


def tiny_config(**dataset_overrides) -> dict:
    """A small valid config with one dataset `t`; keyword arguments replace top-level dataset keys."""
    dataset = {
        "seed": 3,
        "camera": {"preset": "epfl2016"},
        "training_set": {"densities": [6], "frames": 4, "patches_per_frame": 20, "max_patches": 50},
        "acquisitions": {"acq": {"simulate": {"density": 2, "frames": 5}}},
    }
    dataset.update(dataset_overrides)
    return {"datasets": {"t": dataset}}


def dataset(**overrides) -> dict:
    """The resolved config of the tiny dataset, as the rules pass it to the library."""
    from dstorm.config import dataset_config

    return dataset_config(validated(tiny_config(**overrides)), "t")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (present only beside the project's own checkout)")
    return SHARED_DATA


def run_snakemake(workdir: Path, config: dict | None, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the workflow's Snakefile in ``workdir`` with ``config`` written to workdir/config.yaml."""
    cmd = [SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(workdir), "--cores", "2"]
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(workdir / "config.yaml")]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
