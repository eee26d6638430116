"""The systematic bad-input suite: every case of scripts/benchmarks/bad_inputs.py through the real workflow.

Config cases are dry runs (the config is checked before any job runs); data cases share one real
keep-going run beside good datasets. For each: a non-zero exit, one message naming the file or key and what
was expected (no traceback), no partial output, the good acquisitions finished and summary.csv written with
the failure's status.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import tifffile

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts" / "benchmarks"))
import bad_inputs  # noqa: E402
from bad_inputs import CONFIG_CASES, DATA_CASES, GOOD_ACQUISITIONS  # noqa: E402


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return bad_inputs.make_inputs(tmp_path_factory.mktemp("bad") / "inputs")


@pytest.fixture(scope="module")
def data_run(inputs, tmp_path_factory):
    result, rows = bad_inputs.run_data_cases(DATA_CASES, inputs, tmp_path_factory.mktemp("data_run"))
    return result, {row["case"]: row for row in rows}


def test_the_suite_covers_at_least_30_kinds():
    assert len(CONFIG_CASES) + len(DATA_CASES) >= 30
    assert len({c.label for c in DATA_CASES}) == len(DATA_CASES)  # one dataset each


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.label for c in CONFIG_CASES])
def test_bad_config_is_refused_naming_the_key(case, inputs, tmp_path):
    row = bad_inputs.run_config_case(case, inputs, tmp_path)
    assert row["exit"] != 0, row["output"]
    assert re.search(case.expect, row["first_line"]), row["message"]  # the problem leads the message
    assert "Traceback (most recent call last)" not in row["output"], row["output"]
    assert not row["partial_output"] and not (tmp_path / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize("case", DATA_CASES, ids=[c.label for c in DATA_CASES])
def test_bad_file_fails_its_job_alone(case, data_run):
    result, rows = data_run
    row = rows[case.name]
    workdir = row["workdir"]
    assert result.returncode != 0  # some job failed
    assert row["others_finished"], "a good acquisition did not finish"
    if case.accepted:
        assert re.search(case.status, row["status"]), row["status"]
        sr = tifffile.imread(workdir / "results" / "reconstruct" / case.label / "a" / "super_resolution.tif")
        assert np.isfinite(sr).all()
        assert row["metrics"] is not None and row["message"] == ""
        return
    log = f"results/logs/{case.stage}/{case.label}/a.log"
    assert row["status"] == f"failed: {case.stage} (see {log})"
    assert len(row["message"].splitlines()) == 1, row["log"]  # one message
    assert re.search(case.expect, row["message"]), row["message"]
    assert "Traceback" not in row["log"], row["log"]
    assert row["message"] in result.stdout + result.stderr  # shown with the failed job
    assert not row["partial_output"]
    for stage in ("reconstruct", "evaluate"):  # no temporary file either
        assert not list((workdir / "results" / stage / case.label).rglob(".*.part"))


@pytest.mark.slow
def test_no_two_jobs_share_a_log_or_a_benchmark_record(data_run):
    """Dataset t / acquisition x_1 and dataset t_x / acquisition 1 once wrote one log; an acquisition named
    benchmark shared its log with the per-dataset benchmark rule."""
    result, rows = data_run
    results = next(iter(rows.values()))["workdir"] / "results"
    a = (results / "logs" / "reconstruct" / "t" / "x_1.log").read_text()
    b = (results / "logs" / "reconstruct" / "t_x" / "1.log").read_text()
    assert "good.tif" in a and "plain.tif" in b
    assert (results / "benchmarks" / "reconstruct" / "t" / "x_1.tsv").exists()
    assert (results / "benchmarks" / "reconstruct" / "t_x" / "1.tsv").exists()
    assert (results / "logs" / "evaluate" / "good" / "_benchmark.log").exists()  # the per-dataset rule's
    assert "ground-truth emitters" in (results / "logs" / "evaluate" / "good" / "benchmark.log").read_text()

    summary = pd.read_csv(results / "summary.csv", keep_default_na=False).astype({"acquisition": str})
    ok = summary[summary["status"].str.startswith("ok")]
    assert {(d, a) for d, a in zip(ok["dataset"], ok["acquisition"])} >= set(GOOD_ACQUISITIONS)


@pytest.mark.slow
def test_a_dataset_with_a_model_file_needs_no_camera(data_run):
    result, rows = data_run
    config = json.loads(json.dumps(bad_inputs.good_datasets(rows["zero-byte TIFF"]["workdir"])))
    assert all("camera" not in ds for ds in config.values())  # the good datasets name no camera...
    assert rows["zero-byte TIFF"]["others_finished"]  # ...and finish
