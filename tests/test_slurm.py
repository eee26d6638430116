"""The SLURM profile on a real one-node SLURM cluster (scripts/slurm/local_cluster.sh): every stage goes
through sbatch and gives the files of a local run; a cancelled training job is resubmitted and resumes."""

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, SNAKEFILE, SNAKEMAKE, TINY_TRAINING_SET, run_snakemake, tiny_config

CLUSTER = REPO / "scripts" / "slurm" / "local_cluster.sh"
TEST_PROFILE = REPO / "tests" / "slurm_profile"
USER_PROFILE = REPO / "workflow" / "profiles" / "slurm"
#: keys (top level, or within per-rule resources) where the test profile may differ from the user's
MACHINE_KEYS = {
    "software-deployment-method", "latency-wait", "slurm-status-command",
    "slurm-init-seconds-before-status-checks", "slurm-no-account",
}  # fmt: skip
MACHINE_RESOURCES = {"slurm_account", "slurm_partition", "mem_mb"}


def profile(path: Path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


def test_the_test_profile_differs_from_the_users_only_where_this_machine_needs_it():
    user, test = profile(USER_PROFILE), profile(TEST_PROFILE)
    assert user["executor"] == test["executor"] == "slurm"
    assert user["software-deployment-method"] == "conda"
    differing = {k for k in user.keys() | test.keys() if user.get(k) != test.get(k)}
    assert differing <= MACHINE_KEYS | {"default-resources", "set-resources", "set-threads"}, differing
    assert user["groups"] == test["groups"]
    assert set(user["set-threads"]) == set(test["set-threads"])  # same rules, smaller numbers (2 CPUs)
    assert all(1 <= test["set-threads"][r] <= user["set-threads"][r] for r in user["set-threads"])
    assert set(user["set-resources"]) == set(test["set-resources"])
    for rule, res in user["set-resources"].items():
        other = test["set-resources"][rule]
        assert {k for k in res.keys() | other.keys() if res.get(k) != other.get(k)} <= MACHINE_RESOURCES, rule
    # GPUs are requested for the GPU rules, in both
    for rule in ("train", "reconstruct", "cross_evaluate"):
        assert user["set-resources"][rule]["gpu"] == test["set-resources"][rule]["gpu"] == 1
    # the user's placeholders are the only things to fill in
    placeholders = re.findall(r"<[a-z-]+>", (USER_PROFILE / "config.yaml").read_text())
    assert set(placeholders) == {"<your-account>", "<your-cpu-partition>", "<your-gpu-partition>"}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running local SLURM cluster; its daemons are stopped by PID afterwards, whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (packages, /etc/slurm, munge)")
    state = tmp_path_factory.mktemp("dstorm-slurm")
    try:
        started = subprocess.run([str(CLUSTER), "start", str(state)], capture_output=True, text=True, timeout=600)
        if started.returncode == 3:
            pytest.skip(f"SLURM could not be installed here: {started.stderr.strip()}")
        assert started.returncode == 0, started.stdout + started.stderr
        yield state
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], capture_output=True, text=True, timeout=120)


def run_on_slurm(workdir: Path, config: dict, *args: str, timeout: int = 600, wait_for=None):
    """snakemake --workflow-profile tests/slurm_profile, hard-bounded by timeout -k (SIGTERM alone may not stop it)."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = ["timeout", "-k", "10", str(timeout), SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--workflow-profile", str(TEST_PROFILE), *args]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait_for is not None:
        wait_for(proc)
    out, _ = proc.communicate(timeout=timeout + 30)
    return proc.returncode, out


def submitted(out: str) -> dict[str, list[int]]:
    """SLURM job ids per rule (or group) from snakemake's 'submitted with SLURM jobid' lines."""
    jobs: dict[str, list[int]] = {}
    for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: .*?/slurm_logs/(\w+?)/", out):
        name = re.sub(r"^(group_[a-z]+)_.*", r"\1", m.group(2))  # group_<name>_<its rules>
        jobs.setdefault(name, []).append(int(m.group(1)))
    return jobs


def comparable_metrics(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in ("frames_per_second", "reconstruct_seconds")}


@pytest.mark.slow
def test_a_tiny_config_runs_every_stage_through_sbatch_and_matches_a_local_run(slurm, tmp_path):
    config = tiny_config(training_set={**TINY_TRAINING_SET, "densities": [2, 6]})
    local, remote = tmp_path / "local", tmp_path / "slurm"
    local.mkdir(), remote.mkdir()
    # the local run goes alongside: the SLURM run mostly waits for its status checks (this test alone on 2
    # cores: 214 s of wall for 90 s of CPU with the local run after the SLURM run, 140 s alongside it)
    with ThreadPoolExecutor(1) as pool:
        local_run = pool.submit(run_snakemake, local, config)
        t0 = time.perf_counter()
        rc, out = run_on_slurm(remote, config)
        slurm_seconds = time.perf_counter() - t0
        result = local_run.result()
    assert rc == 0, out[-6000:]
    jobs = submitted(out)
    # every job that is not a localrule went through sbatch: 2 training sets, 2 models, the acquisition's
    # group job (simulate, reconstruct, evaluate) and the benchmark's other model
    assert sorted((k, len(v)) for k, v in jobs.items()) == [
        ("group_acquisition", 1), ("rule_cross_evaluate", 1), ("rule_simulate_training_set", 2), ("rule_train", 2)
    ], out[-4000:]
    ids = {i for v in jobs.values() for i in v}
    # and each rule's own log says which SLURM job ran it
    logs = sorted((remote / "results" / "logs").rglob("*.log"))
    local_rules = ("training_curves", "summary", "benchmark")
    for log in logs:
        if any(log.name.endswith(f"{r}.log") for r in local_rules):
            continue
        m = re.search(r"SLURM job (\d+) on ", log.read_text())
        assert m and int(m.group(1)) in ids, log
    print(f"SLURM run: {slurm_seconds:.0f} s, {len(ids)} SLURM jobs")

    assert result.returncode == 0, result.stderr[-4000:]
    same_bytes = [
        "simulate/t/density_2/frames.tif", "simulate/t/density_2/ground_truth.csv", "simulate/t/density_2/patches.npz",
        "simulate/t/density_6/patches.npz", "simulate/t/acq/frames.tif", "simulate/t/acq/ground_truth.csv",
        "reconstruct/t/acq/localizations.csv", "reconstruct/t/acq/super_resolution.tif", "evaluate/t/acq/matches.csv",
        "evaluate/t/acq/frc.csv", "evaluate/t/benchmark.csv",
    ]  # fmt: skip
    for name in same_bytes:
        assert (local / "results" / name).read_bytes() == (remote / "results" / name).read_bytes(), name
    for density in (2, 6):
        a, b = (torch.load(r / "results" / "train" / "t" / f"density_{density}" / "model.pt", weights_only=True) for r in (local, remote))
        assert a.keys() == b.keys()
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
        assert a["calibration"] == b["calibration"] and a["normalization"] == b["normalization"]
    for name in ("evaluate/t/acq/metrics.json", "evaluate/t/acq/models/density_6.json"):
        assert comparable_metrics(local / "results" / name) == comparable_metrics(remote / "results" / name)
    timing = [c for c in pd.read_csv(local / "results" / "summary.csv").columns if c.endswith("_s") or c == "frames_per_second"]
    pd.testing.assert_frame_equal(
        pd.read_csv(local / "results" / "summary.csv").drop(columns=timing),
        pd.read_csv(remote / "results" / "summary.csv").drop(columns=timing),
    )


def running_train_job(timeout: float = 300) -> str | None:
    """The SLURM id of the running train job, once its first checkpoint exists (None after timeout)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i|%k"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            job, comment = line.split("|", 1)
            if "rule_train" in comment:
                return job
        time.sleep(1)
    return None


@pytest.mark.slow
def test_a_cancelled_training_job_is_resubmitted_and_resumes_from_its_checkpoint(slurm, tmp_path):
    config = tiny_config(training={"epochs": 12, "steps_per_epoch": 6, "batch_size": 4, "bn_momentum": 0.1})
    ckpt = tmp_path / "results" / "train" / "t" / "density_6" / "checkpoints" / "last.ckpt"
    cancelled = {}

    def cancel_after_a_checkpoint(proc):
        job = running_train_job()
        assert job, "the train job never ran"
        deadline = time.time() + 300
        while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert ckpt.exists(), "no checkpoint was written"
        subprocess.run(["scancel", job], check=True)
        cancelled["job"] = int(job)

    rc, out = run_on_slurm(tmp_path, config, "--until", "train", wait_for=cancel_after_a_checkpoint)
    assert rc == 0, out[-6000:]
    train_jobs = submitted(out)["rule_train"]
    assert len(train_jobs) == 2 and train_jobs[0] == cancelled["job"], out[-4000:]  # submitted again after the cancel
    log = (tmp_path / "results" / "logs" / "train" / "t" / "density_6.log").read_text()
    assert f"SLURM job {train_jobs[1]} on " in log
    assert "resuming from" in log and "last.ckpt" in log
    history = pd.read_csv(tmp_path / "results" / "train" / "t" / "density_6" / "history.csv")
    assert history["epoch"].tolist() == list(range(13))  # epochs 0-12 once each: nothing lost, nothing repeated
    assert (tmp_path / "results" / "train" / "t" / "density_6" / "model.pt").exists()
