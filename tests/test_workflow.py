"""The workflow itself: lint, dry run, entry scripts as Snakemake runs them, and a tiny real run."""

import hashlib
import json
import re
import runpy
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import tifffile
import yaml

from conftest import REPO, TINY_TRAINING_SET, dataset, run_snakemake, tiny_config

RECONSTRUCTION_FILES = [
    "super_resolution.tif", "super_resolution.png", "super_resolution_uncorrected.tif", "widefield.tif",
    "widefield.png", "localizations.csv", "localizations_uncorrected.csv", "drift.csv", "drift.png", "rendered.tif",
    "rendered.png", "reconstruction.json",
]  # fmt: skip
#: With reconstruction.formats [thunderstorm, picasso] and grouping enabled.
OPTIONAL_RECONSTRUCTION_FILES = ["predictions.tif", "localizations.hdf5", "localizations.yaml", "localizations_grouped.csv"]
from dstorm.io import load_arrays
from dstorm.model.modelfile import load_model


def test_lint_is_clean():
    result = run_snakemake(REPO, None, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_default_config_dry_run_plans_every_simulation(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    demo = config["datasets"]["demo"]
    n_sets, n_acqs = len(demo["training_set"]["densities"]), len(demo["acquisitions"])
    assert re.search(rf"simulate_training_set\s+{n_sets}\b", out), out
    assert re.search(rf"simulate_acquisition\s+{n_acqs}\b", out), out


def test_entry_script_runs_as_snakemake_runs_it(tmp_path):
    smk = SimpleNamespace(
        params=SimpleNamespace(dataset=dataset(), acquisition={"density": 2.0, "frames": 3}),
        input=SimpleNamespace(conditions=[]),
        wildcards=SimpleNamespace(dataset="t", acquisition="acq"),
        output=SimpleNamespace(frames=str(tmp_path / "frames.tif"), ground_truth=str(tmp_path / "ground_truth.csv"),
                               drift=str(tmp_path / "drift.csv")),  # fmt: skip
        log=[str(tmp_path / "log.txt")],
    )
    runpy.run_path(str(REPO / "scripts" / "simulate_acquisition.py"), init_globals={"snakemake": smk}, run_name="__main__")
    assert tifffile.imread(tmp_path / "frames.tif").shape == (3, 64, 64)
    assert "frames 3/3" in (tmp_path / "log.txt").read_text()


#: Every file the report shows, per kind of owner.
REPORT_FILES = {
    "training": ["history.csv", "history.png"],
    "reconstruction": ["super_resolution.png", "widefield.png", "rendered.png", "drift.png"],
    "evaluation": ["comparison.png", "frc.png", "localizations.png"],
    "dataset": ["benchmark.csv", "benchmark.png", "training_curves.png"],
}


@pytest.mark.slow
def test_tiny_real_run_of_every_rule_and_the_report(tmp_path):
    from dstorm.simulation.simulate import simulate_acquisition

    # a user's TIFF without ground truth, beside two simulated acquisitions
    simulate_acquisition(dataset(), "user", density=2.0, n_frames=4, frames_path=tmp_path / "user.tif",
                         ground_truth_path=tmp_path / "unused.csv")  # fmt: skip
    config = tiny_config(
        reconstruction={"save_predictions": True, "formats": ["thunderstorm", "picasso"], "grouping": {"enabled": True}},
        training_set={**TINY_TRAINING_SET, "densities": [2, 6]},
    )
    config["datasets"]["t"]["acquisitions"]["acq2"] = {"simulate": {"density": 1, "frames": 2, "drift": {"velocity_nm_per_frame": [5, 0]}}}
    config["datasets"]["t"]["acquisitions"]["user"] = {"path": str(tmp_path / "user.tif")}
    result = run_snakemake(tmp_path, config)
    assert result.returncode == 0, result.stdout + result.stderr
    base = tmp_path / "results" / "simulate" / "t"
    assert sorted(p.name for p in base.iterdir()) == ["acq", "acq2", "density_2", "density_6"]
    frames = tifffile.imread(base / "density_6" / "frames.tif")
    assert frames.shape == (6, 64, 64)
    gt = pd.read_csv(base / "density_6" / "ground_truth.csv")
    assert gt["frame"].between(1, 6).all()
    meta, arrays = load_arrays(base / "density_6" / "patches.npz")
    assert meta["n_patches"] == len(arrays["patches"]) == 60
    model = load_model(tmp_path / "results" / "train" / "t" / "density_6" / "model.pt")
    assert model.predict(frames[:2]).shape == (2, 128, 128)  # U = 2
    history = pd.read_csv(tmp_path / "results" / "train" / "t" / "density_6" / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    train_log = (tmp_path / "results" / "logs" / "train" / "t" / "density_6.log").read_text()
    assert "epoch 2/2 step 2/2 loss" in train_log
    for acq in ("acq", "acq2", "user"):
        recon = tmp_path / "results" / "reconstruct" / "t" / acq
        assert sorted(p.name for p in recon.iterdir()) == sorted(RECONSTRUCTION_FILES + OPTIONAL_RECONSTRUCTION_FILES)
        assert tifffile.imread(recon / "super_resolution.tif").shape == (128, 128)
        table = pd.read_csv(recon / "localizations.csv")
        assert table.columns[1:4].tolist() == ["frame", "x [nm]", "y [nm]"]
        # the camera is known: photons everywhere, a precision where they are positive (a tiny model finds noise)
        assert table["intensity [photon]"].notna().all()
        assert (table["uncertainty [nm]"].gt(0) == table["intensity [photon]"].gt(0)).all()
        assert pd.read_csv(recon / "localizations_grouped.csv")["detections"].sum() == len(table)
    assert "frames 5/5" in (tmp_path / "results" / "logs" / "reconstruct" / "t" / "acq.log").read_text()
    assert tifffile.imread(tmp_path / "results" / "reconstruct" / "t" / "acq" / "predictions.tif").shape == (5, 128, 128)
    assert tifffile.imread(base / "acq" / "frames.tif").shape == (5, 64, 64)
    assert (tmp_path / "results" / "logs" / "simulate" / "t" / "density_6.log").read_text().strip()
    assert (tmp_path / "results" / "benchmarks" / "simulate" / "t" / "acq.tsv").exists()

    # evaluation: metrics against ground truth where there is one, FRC everywhere, the benchmark and summary
    ev = tmp_path / "results" / "evaluate" / "t"
    metrics = json.loads((ev / "acq" / "metrics.json").read_text())
    assert metrics["n_ground_truth"] == len(pd.read_csv(base / "acq" / "ground_truth.csv"))
    assert 0 <= metrics["jaccard"] <= 1 and metrics["model_density"] == 2.0
    assert {"nena_nm", "nena_pairs", "drift_residual_nm", "drift_method"} <= set(metrics)
    drift_truth = pd.read_csv(base / "acq2" / "drift.csv")
    assert drift_truth["dx [nm]"].tolist() == [0.0, 5.0] and json.loads((ev / "acq2" / "metrics.json").read_text())["drift_true_max_nm"] == 5.0
    user = json.loads((ev / "user" / "metrics.json").read_text())
    assert user["jaccard"] is None and user["pearson_r"] is None and "frc_resolution_nm" in user
    assert (ev / "user" / "matches.csv").read_text().count("\n") == 1  # the header only: no ground truth
    matches = pd.read_csv(ev / "acq" / "matches.csv")
    assert len(matches) == metrics["tp"] and matches.columns[0] == "frame"
    assert ((matches["dx [nm]"] - (matches["x [nm]"] - matches["x_gt [nm]"])).abs() <= 0.002).all()
    assert sorted(p.name for p in (ev / "acq" / "models").iterdir()) == ["density_6.json"]  # the other model
    bench = pd.read_csv(ev / "benchmark.csv")
    assert sorted(zip(bench["acquisition"], bench["model_density"])) == [("acq", 2), ("acq", 6), ("acq2", 2), ("acq2", 6)]
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert summary["acquisition"].tolist() == ["acq", "acq2", "user"]
    assert summary["kind"].tolist() == ["simulated", "simulated", "file"]
    assert summary.loc[2, ["jaccard", "rmse_lat_nm"]].isna().all() and summary.loc[:1, "jaccard"].notna().all()
    for stage in ("simulate_training_set", "train", "reconstruct", "evaluate"):
        assert (summary[f"{stage}_s"] >= 0).all(), stage
    assert summary["simulate_acquisition_s"].notna().tolist() == [True, True, False]

    # the HTML report (as a zip, to see what it holds): every figure it names is in it, none is empty
    report = run_snakemake(tmp_path, config, "--report", str(tmp_path / "report.zip"))
    assert report.returncode == 0, report.stdout + report.stderr
    with zipfile.ZipFile(tmp_path / "report.zip") as zf:
        held = [(Path(i.filename).name, i.file_size) for i in zf.infolist() if "/data/raw/" in i.filename]
        html = zf.read("report/report.html").decode()
    assert all(size > 0 for _, size in held)
    names = Counter(name for name, _ in held)
    expected = Counter(
        {f: 2 for f in REPORT_FILES["training"]}
        | {f: 3 for f in REPORT_FILES["reconstruction"] + REPORT_FILES["evaluation"]}
        | {f: 1 for f in REPORT_FILES["dataset"] + ["summary.csv"]}
    )
    assert names == expected
    for name in expected:
        assert name in html

    # re-running the simulations from scratch gives the same files
    first = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*") if p.is_file()}
    again = run_snakemake(tmp_path, config, "--forcerun", "simulate_training_set", "simulate_acquisition", "--until", "simulate_training_set", "simulate_acquisition")
    assert again.returncode == 0, again.stderr
    assert first == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*") if p.is_file()}


def test_one_failing_dataset_does_not_stop_the_others(tmp_path):
    # dataset `bad` can never fill a patch (min_emitters too high) and acquisition `broken` is not a TIFF:
    # both fail, everything else completes, and the summary marks the failed acquisition instead of omitting it
    (tmp_path / "broken.tif").write_bytes(b"this is not a TIFF file" * 100)
    config = tiny_config()
    config["datasets"]["t"]["acquisitions"]["broken"] = {"path": str(tmp_path / "broken.tif")}
    config["datasets"]["bad"] = {
        "camera": {"preset": "ideal"},
        "training_set": {"densities": [0.1], "frames": 1, "patches_per_frame": 2, "min_emitters": 60},
    }
    result = run_snakemake(tmp_path, config)  # the default profile sets keep-going
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "no patch of 26 px holds min_emitters=60" in out
    assert "broken.tif" in (tmp_path / "results" / "logs" / "reconstruct" / "t" / "broken.log").read_text()
    assert (tmp_path / "results" / "simulate" / "t" / "density_6" / "patches.npz").exists()
    assert not (tmp_path / "results" / "simulate" / "bad" / "density_0.1").exists() or not any(
        (tmp_path / "results" / "simulate" / "bad" / "density_0.1").iterdir()
    )
    assert not (tmp_path / "results" / "reconstruct" / "t" / "broken").exists() or not any(
        (tmp_path / "results" / "reconstruct" / "t" / "broken").iterdir()
    )  # no partial output
    summary = pd.read_csv(tmp_path / "results" / "summary.csv").set_index("acquisition")
    assert summary.loc["acq", "status"] == "ok" and 0 <= summary.loc["acq", "jaccard"] <= 1
    assert summary.loc["broken", "status"] == "failed: reconstruct (see results/logs/reconstruct/t/broken.log)"
    assert pd.isna(summary.loc["broken", "jaccard"])
    assert "1 failed" in out


def test_a_dataset_with_a_given_model_needs_no_simulation_or_training(tmp_path):
    from dstorm.model.network import DeepSTORMNet
    from dstorm.model.modelfile import save_model

    save_model(tmp_path / "old.pt", DeepSTORMNet(), "deepstorm", upsampling_factor=8,
               normalization={"mean": 0.1, "std": 0.2}, weighting_factor=100.0, pixel_size_nm=100.0)  # fmt: skip
    config = tiny_config()
    del config["datasets"]["t"]["training_set"]
    config["datasets"]["t"]["model"] = str(tmp_path / "old.pt")
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "simulate_training_set" not in out and "rule train" not in out and "train  " not in out
    assert re.search(r"simulate_acquisition\s+1\b", out)  # the test acquisition is still simulated


def test_a_config_file_stands_alone(tmp_path):
    """`snakemake --configfile my.yaml` from a folder holding config/config.yaml (the repository root) runs
    my.yaml alone: the demo's datasets are not merged in, and a dataset named `demo` inherits nothing."""
    (tmp_path / "config").mkdir()
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(demo))
    n_demo = len(demo["datasets"]["demo"]["acquisitions"])
    assert n_demo > 1
    alone = run_snakemake(tmp_path, None, "-n")  # no config file: the embedded demo
    assert alone.returncode == 0, alone.stderr
    assert re.search(rf"simulate_acquisition\s+{n_demo}\b", alone.stdout + alone.stderr)

    mine = tiny_config()
    mine["datasets"]["demo"] = mine["datasets"].pop("t")  # same name as the demo's dataset
    result = run_snakemake(tmp_path, mine, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert re.search(r"simulate_acquisition\s+1\b", out), out  # only its own acquisition
    assert "sim_low" not in out and "density_2" not in out

    empty = run_snakemake(tmp_path, {"datasets": {}}, "-n")
    assert empty.returncode != 0
    assert "datasets: {} should be non-empty" in empty.stdout + empty.stderr


@pytest.mark.slow
def test_a_rerun_after_kill_9_works_as_written(tmp_path):
    """snakemake killed with SIGKILL leaves its locks behind; the same command run again removes them (their
    owner is gone) and finishes, as the README says."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sys.path.insert(0, str(REPO / "scripts" / "benchmarks"))
    import bad_inputs

    inputs = bad_inputs.make_inputs(tmp_path / "inputs")
    config = {"datasets": {"good": bad_inputs.good_dataset(inputs)}}  # one acquisition: the locks are the point
    run_snakemake(tmp_path, config, "-n")  # writes config.yaml
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "workflow" / "Snakefile"), "-d",
           str(tmp_path), "--cores", "1", "--configfile", str(tmp_path / "config.yaml")]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.time() + 120
    while not list(locks.glob("*.owner.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert list(locks.glob("*.owner.json")), "the run never recorded its locks"
    time.sleep(1.0)  # a job is under way
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its jobs, as when a node or a terminal dies
    proc.wait()
    assert list(locks.glob("*.lock")), "SIGKILL should leave the locks behind"

    again = run_snakemake(tmp_path, config)  # the same command, no --unlock
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "removed the stale lock" in out and "no longer running" in out
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert (summary["status"] == "ok").all()
