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

#: `make test` runs two workers on two cores, and each starts PyTorch (in its own process and in the jobs of
#: the workflows it runs) with two threads, so four busy threads often share two cores. OpenMP's threads spin
#: while they wait for each other by default, and spinning threads that share a core starve the ones with
#: work: two training loops at once took 3.6× the time of one alone, 1.8× with passive waiting, which costs
#: 14–28 % alone (scripts/benchmarks/oversubscription.py). On a fresh clone the suite went from 17 min 13 s
#: (user CPU 28.0 min) to 14 min 1 s (22.1 min). Set before anything loads PyTorch; the jobs inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


#: A training recipe that runs in seconds on a CPU.
TINY_RECIPE = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "bn_momentum": 0.1}
#: A training set of tiny patches (16 × 16 high-resolution pixels), for fast training tests.
TINY_TRAINING_SET = {
    "densities": [6], "frames": 6, "upsampling_factor": 2, "patch_size_px": 8,
    "patches_per_frame": 20, "max_patches": 60, "min_emitters": 2, "calibration_frames": 4,
    "precision_frames": 4,
}  # fmt: skip


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
        "training_set": TINY_TRAINING_SET,
        "training": TINY_RECIPE,
        "acquisitions": {"acq": {"simulate": {"density": 2, "frames": 5}}},
    }
    dataset.update(dataset_overrides)
    return copy.deepcopy({"datasets": {"t": dataset}})


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


@pytest.fixture(scope="session")
def tiny_patches(tmp_path_factory) -> Path:
    """A patch file of 60 tiny patches (U = 2, 8-px patches), simulated once per test session."""
    from dstorm.simulation.simulate import simulate_training_set

    out = tmp_path_factory.mktemp("tiny_patches")
    ds = dataset(training_set=TINY_TRAINING_SET)
    simulate_training_set(
        ds, density=6, frames_path=out / "frames.tif", ground_truth_path=out / "gt.csv", patches_path=out / "patches.npz"
    )
    return out / "patches.npz"


#: The files that take minutes, first (their longest tests on a fresh clone of stop 32, 2 cores: test_slurm
#: 250 s, test_end_to_end 280, test_workflow 270, test_bad_inputs 180, test_estimation 140, test_training 90;
#: the rest together a few minutes). `make test` runs whole files on 2 workers (--dist loadfile) in this order
#: (--no-loadscope-reorder: xdist's own order, the files with the most tests first, put test_slurm and
#: test_end_to_end last, where one worker ran them alone at the end).
LONG_FILES = ("test_slurm.py", "test_bad_inputs.py", "test_workflow.py", "test_end_to_end.py", "test_estimation.py", "test_training.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))  # stable: each file's own order kept
