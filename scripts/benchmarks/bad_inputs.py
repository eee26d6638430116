"""Bad inputs beside good ones, through the real workflow: each is refused with one message that names the
file or key and what was expected, leaves no partial output, and does not stop the good acquisitions.

Two kinds of case:

- **config** cases: a bad config beside a good dataset. The config is checked when snakemake starts, so a
  dry run shows the whole answer: a non-zero exit, the message, nothing written.
- **data** cases: a bad file (acquisition, ground truth, model) as a dataset of its own, all of them in one
  real ``--keep-going`` run beside good datasets. Each bad job fails with the message in its log; the good
  acquisitions finish; ``results/summary.csv`` gives each failure's stage. A few inputs are unusual but
  valid (``accepted``): they must finish with finite results.

tests/test_bad_inputs.py runs every case and checks it; run this script for the table:

    .venv/bin/python scripts/benchmarks/bad_inputs.py            # every case (about 2 minutes on 2 cores)
    .venv/bin/python scripts/benchmarks/bad_inputs.py --kind config
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import tifffile
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

SNAKEFILE = REPO / "workflow" / "Snakefile"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

FRAME = (32, 32)  # good frames; at U = 2 the network sees 64 × 64
N_FRAMES = 6


@dataclass
class Case:
    """One bad input. ``build(inputs)`` returns the config fragment: for a config case the whole config
    (the good dataset is added), for a data case one dataset. ``expect`` is a regular expression the message
    must match; ``stage`` the stage that must fail (data cases)."""

    name: str
    kind: str
    build: Callable[[Path], dict]
    expect: str = ""
    stage: str = "reconstruct"
    accepted: bool = False
    status: str = ""  # accepted cases: the summary status expected (a regular expression)
    label: str = field(default="", init=False)

    def __post_init__(self):
        self.label = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:40]


# ---------------------------------------------------------------------------------------------- input files


def _cut(src: Path, dst: Path, fraction: float = 0.6) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def make_inputs(folder: Path) -> Path:
    """Write every good and bad file the cases use into ``folder`` (returned)."""
    import torch

    from benchmarks.common import dataset as bench_dataset
    from dstorm.model.modelfile import save_model
    from dstorm.model.network import DeepSTORMNet
    from dstorm.simulation.simulate import simulate_acquisition

    folder.mkdir(parents=True, exist_ok=True)
    ds = bench_dataset()
    ds.update(frame_size_px=list(FRAME), name="inputs")
    simulate_acquisition(ds, "good", density=2.0, n_frames=N_FRAMES, frames_path=folder / "good.tif",
                         ground_truth_path=folder / "good.csv")  # fmt: skip
    good = tifffile.imread(folder / "good.tif")
    fields = dict(upsampling_factor=2, normalization={"mean": 0.2, "std": 0.2}, weighting_factor=100.0,
                  pixel_size_nm=100.0, calibration={"threshold": 0.05})  # fmt: skip
    torch.manual_seed(0)
    save_model(folder / "model.pt", DeepSTORMNet(encoder=(8, 8, 8, 16), decoder=(8, 8, 8)), "deepstorm", **fields)

    # acquisitions
    (folder / "zero.tif").write_bytes(b"")
    (folder / "png.tif").write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\0" * 200)
    tifffile.imwrite(folder / "plain.tif", good)
    tifffile.imwrite(folder / "imagej.tif", good, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(folder / "ome.tif", good, ome=True, metadata={"axes": "TYX"})
    for name in ("plain", "imagej", "ome"):
        _cut(folder / f"{name}.tif", folder / f"{name}_cut.tif")
    declared = (folder / "imagej.tif").read_bytes().replace(b"images=6", b"images=9").replace(b"frames=6", b"frames=9")
    (folder / "declared.tif").write_bytes(declared)
    tifffile.imwrite(folder / "rgb.tif", np.zeros((N_FRAMES, *FRAME, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(folder / "two_channels.tif", np.zeros((2, *FRAME), np.uint16), ome=True, metadata={"axes": "CYX"})
    nan = good.astype(np.float32)
    nan[3, 5, 5] = np.nan
    tifffile.imwrite(folder / "nan.tif", nan)
    inf = good.astype(np.float32)
    inf[1, 0, 0] = np.inf
    tifffile.imwrite(folder / "inf.tif", inf)
    tifffile.imwrite(folder / "one_row.tif", good[:, :1, :])
    tifffile.imwrite(folder / "odd_size.tif", good[:, :30, :30])
    extremes = np.zeros((N_FRAMES, *FRAME), np.uint32)
    extremes[:, ::2] = np.iinfo(np.uint32).max
    extremes[2] = np.iinfo(np.uint32).max  # one constant frame
    tifffile.imwrite(folder / "uint32_extremes.tif", extremes)

    # ground-truth tables
    gt = pd.read_csv(folder / "good.csv")
    gt.drop(columns=["y [nm]"]).to_csv(folder / "gt_no_y.csv", index=False)
    gt.assign(frame=gt["frame"] - 1).to_csv(folder / "gt_from_0.csv", index=False)
    (folder / "gt_empty.csv").write_bytes(b"")
    text = gt.astype({"x [nm]": object}).copy()
    text.loc[min(2, len(text) - 1), "x [nm]"] = "abc"
    text.to_csv(folder / "gt_text.csv", index=False)
    gt.assign(frame=gt["frame"] + N_FRAMES).to_csv(folder / "gt_other.csv", index=False)

    # model files
    torch.save({"weights": torch.zeros(3)}, folder / "foreign.pt")
    _cut(folder / "model.pt", folder / "model_cut.pt", 0.5)
    torch.save({"format": "dstorm-model", "payload": _Code()}, folder / "code.pt")
    wide = torch.load(folder / "model.pt", weights_only=True)
    wide["network"]["encoder"] = [8, 8, 16, 32]  # the weights are of another shape
    torch.save(wide, folder / "other_architecture.pt")
    (folder / "model.tif").write_bytes((folder / "good.tif").read_bytes())
    return folder


class _Code:  # a pickled call: loading it unsafely would run a command
    def __reduce__(self):
        return (os.system, ("echo this model file ran code",))


# -------------------------------------------------------------------------------------------------- configs


def good_dataset(inputs: Path, **overrides) -> dict:
    """A dataset that reconstructs the good acquisition with the given model file (no camera: none is needed)."""
    ds = {
        "pixel_size_nm": 100,
        "model": str(inputs / "model.pt"),
        "evaluation": {"frc_blocks": 2},
        "acquisitions": {"a": {"path": str(inputs / "good.tif"), "ground_truth": str(inputs / "good.csv")}},
    }
    ds.update(overrides)
    return ds


def good_datasets(inputs: Path) -> dict:
    """The good datasets of every run. ``t``/``x_1`` and ``t_x``/``1`` once shared a log file (dataset and
    acquisition were joined by ``_``), and an acquisition named ``benchmark`` shared one with the per-dataset
    rule of that name."""
    acq = {"path": str(inputs / "good.tif"), "ground_truth": str(inputs / "good.csv")}
    return {
        "good": good_dataset(inputs, acquisitions={"ok": acq, "benchmark": acq, "training_curves": acq}),
        "t": good_dataset(inputs, acquisitions={"x_1": acq}),
        "t_x": good_dataset(inputs, acquisitions={"1": {"path": str(inputs / "plain.tif")}}),
    }


GOOD_ACQUISITIONS = [("good", "ok"), ("good", "benchmark"), ("good", "training_curves"), ("t", "x_1"), ("t_x", "1")]


def acquisition(path: str, **extra) -> Callable[[Path], dict]:
    return lambda inputs: good_dataset(inputs, acquisitions={"a": {"path": str(inputs / path), **extra}})


def with_truth(table: str) -> Callable[[Path], dict]:
    return lambda inputs: good_dataset(
        inputs, acquisitions={"a": {"path": str(inputs / "good.tif"), "ground_truth": str(inputs / table)}}
    )


def with_model(model: str, **extra) -> Callable[[Path], dict]:
    return lambda inputs: good_dataset(inputs, model=str(inputs / model), **extra)


def trained(**dataset) -> dict:
    """A dataset that simulates and trains (never run: config cases are dry runs)."""
    base = {"camera": {"preset": "epfl2016"}, "training_set": {"densities": [6]},
            "acquisitions": {"acq": {"simulate": {"density": 2, "frames": 5}}}}  # fmt: skip
    base.update(dataset)
    return base


def edit(path: str, value=None, *, delete: bool = False, base: Callable[[Path], dict] | None = None):
    """A config case: the dataset ``bad`` (``trained()`` by default) with the value at a dotted path
    (below the dataset) replaced or deleted."""

    def build(inputs: Path) -> dict:
        ds = copy.deepcopy(base(inputs) if base else trained())
        node = ds
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if delete:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value(inputs) if callable(value) else value
        return {"datasets": {"bad": ds}}

    return build


CONFIG_CASES = [
    Case("typo in a key", "config", edit("pixel_size_mn", 100), r"datasets\.bad\.pixel_size_mn: unknown key; did you mean pixel_size_nm\?"),
    Case("typo in a nested key", "config", edit("camera.em_gian", 3), r"datasets\.bad\.camera\.em_gian: unknown key; did you mean em_gain\?"),
    Case("typo at the top", "config", (lambda i: {"datasets": {"bad": trained()}, "dataset": {}}), r"^dataset: unknown key; did you mean datasets\?"),
    Case("value out of range", "config", edit("pixel_size_nm", -5), r"datasets\.bad\.pixel_size_nm: -5 is less than or equal to the minimum of 0"),
    Case("wrong type", "config", edit("training_set.densities", "six"), r"datasets\.bad\.training_set\.densities: 'six' is not of type 'array'"),
    Case("wrong type of a number", "config", edit("seed", "seven"), r"datasets\.bad\.seed: 'seven' is not of type 'integer'"),
    Case("unknown camera preset", "config", edit("camera.preset", "andor"), r"datasets\.bad\.camera\.preset: 'andor' is not one of \['ideal', 'epfl2016'"),
    Case("datasets not a mapping", "config", (lambda i: {"datasets": ["a", "b"]}), r"datasets: \['a', 'b'\] is not of type 'object'"),
    Case("integer acquisition name", "config", edit("acquisitions", {1: {"simulate": {"density": 1, "frames": 2}}}),
         r'datasets\.bad\.acquisitions: the key 1 was read by YAML as a number, not a name; quote it \(e\.g\. "1"\)'),
    Case("integer dataset name", "config", (lambda i: {"datasets": {7: trained()}}), r"datasets: the key 7 was read by YAML as a number"),
    Case("zero-padded name", "config", (lambda i: yaml.safe_load("datasets: {bad: {acquisitions: {001: {path: x.tif}}}}")),
         r"datasets\.bad\.acquisitions: the key 1 was read by YAML as a number"),
    Case("date as a name", "config", edit("acquisitions", {datetime.date(2024, 5, 1): {"simulate": {"density": 1, "frames": 2}}}),
         r"datasets\.bad\.acquisitions: the key 2024-05-01 was read by YAML as a date"),
    Case("name with a space", "config", edit("acquisitions", {"cell 1": {"simulate": {"density": 1, "frames": 2}}}),
         r"datasets\.bad\.acquisitions: 'cell 1' is not a valid name"),
    Case("reserved acquisition name", "config", edit("acquisitions.density_3", {"simulate": {"density": 3, "frames": 2}}),
         r"datasets\.bad\.acquisitions: 'density_3' is not a valid name.*density_ is reserved"),
    Case("names differing only in case", "config", edit("acquisitions", {"Cell": {"simulate": {"density": 1, "frames": 2}}, "cell": {"simulate": {"density": 1, "frames": 2}}}),
         r"datasets\.bad\.acquisitions\.Cell and datasets\.bad\.acquisitions\.cell differ only in case"),
    Case("datasets differing only in case", "config", (lambda i: {"datasets": {"Bad": trained(), "bad": trained()}}),
         r"datasets\.Bad and datasets\.bad differ only in case"),
    Case("missing required key", "config", (lambda i: {"datasets": {"bad": {"camera": {"preset": "ideal"}}}}),
         r"datasets\.bad: give exactly one of `training_set` \(simulate and train\) or `model`"),
    Case("missing acquisition file", "config", edit("acquisitions.cells", {"path": "data/cells.tif"}),
         r"datasets\.bad\.acquisitions\.cells\.path: acquisition file not found: data/cells\.tif"),
    Case("missing ground-truth file", "config", edit("acquisitions.cells", lambda i: {"path": str(i / "good.tif"), "ground_truth": "gt/missing.csv"}),
         r"datasets\.bad\.acquisitions\.cells\.ground_truth: ground-truth table not found: gt/missing\.csv"),
    Case("missing model file", "config", (lambda i: {"datasets": {"bad": good_dataset(i, model="old/model.pt")}}),
         r"datasets\.bad\.model: model file not found: old/model\.pt"),
    Case("missing structure table", "config", edit("structure", {"type": "table", "path": "positions.csv"}),
         r"datasets\.bad\.structure\.path: file not found: positions\.csv"),
    Case("unknown acquisition in estimate", "config", (lambda i: {"datasets": {"bad": {"pixel_size_nm": 100, "estimate": {"acquisitions": ["nope"]}, "acquisitions": {"a": {"path": str(i / "good.tif")}}}}}),
         r"datasets\.bad\.estimate\.acquisitions: 'nope' is not a TIFF acquisition \(`path`\) of this dataset"),
    Case("sigma range reversed", "config", edit("psf.sigma_nm", [120, 100]), r"datasets\.bad\.psf\.sigma_nm: expected \[low, high\] with low <= high"),
    Case("patch not divisible by 8", "config", edit("training_set", {"densities": [6], "patch_size_px": 9, "upsampling_factor": 2}),
         r"datasets\.bad\.training_set\.patch_size_px: patch_size_px × upsampling_factor must be divisible by 8"),
    Case("unknown architecture", "config", edit("training.architecture", "unet"),
         r"datasets\.bad\.training\.architecture: 'unet' is not an architecture; known: deepstorm, fast"),
    Case("density range without the density", "config", edit("training_set", {"densities": [6], "density_range": [1.5, 2]}),
         r"datasets\.bad\.training_set\.density_range: \[1\.5, 2\] should hold 1"),
    Case("acquisition of both kinds", "config", edit("acquisitions.acq.path", "x.tif"), r"datasets\.bad\.acquisitions\.acq: give exactly one of `simulate`"),
    Case("model density not trained", "config", edit("acquisitions.acq.model_density", 3),
         r"datasets\.bad\.acquisitions\.acq: model_density 3 is not a training density of the dataset \(6\)"),
    Case("EMCCD key on an sCMOS camera", "config", edit("camera", {"preset": "ideal", "em_gain": 100}), r"datasets\.bad\.camera\.em_gain: only for emccd cameras"),
    Case("simulating without a camera", "config", (lambda i: {"datasets": {"bad": good_dataset(i, acquisitions={"s": {"simulate": {"density": 1, "frames": 2}}})}}),
         r"datasets\.bad\.camera: give a `preset` .* to simulate acquisitions\.s"),
]

DATA_CASES = [
    Case("zero-byte TIFF", "data", acquisition("zero.tif"), r"zero\.tif: empty file \(0 bytes\); expected a TIFF stack"),
    Case("PNG renamed .tif", "data", acquisition("png.tif"), r"png\.tif: not a readable TIFF"),
    Case("truncated plain TIFF", "data", acquisition("plain_cut.tif"), r"plain_cut\.tif: truncated TIFF: 6 frames declared, the file ends inside frame"),
    Case("truncated ImageJ TIFF", "data", acquisition("imagej_cut.tif"), r"imagej_cut\.tif: the file declares 6 frames but 1 can be read"),
    Case("truncated OME TIFF", "data", acquisition("ome_cut.tif"), r"ome_cut\.tif: damaged or truncated TIFF"),
    Case("declared frames exceed pages", "data", acquisition("declared.tif"), r"declared\.tif: the file declares 9 frames but 6 can be read"),
    Case("RGB TIFF", "data", acquisition("rgb.tif"), r"rgb\.tif: RGB/colour data .*expected grey single-molecule frames"),
    Case("2-channel OME TIFF", "data", acquisition("two_channels.tif"), r"two_channels\.tif: 2 channels \(axes CYX\); expected one grey channel"),
    Case("NaN in a frame", "data", acquisition("nan.tif"), r"nan\.tif: frame 4 holds NaN or infinite values"),
    Case("inf in a frame", "data", acquisition("inf.tif"), r"inf\.tif: frame 2 holds NaN or infinite values"),
    Case("1×N frames", "data", acquisition("one_row.tif"), r"one_row\.tif: frames of 1×32 px do not fit the model"),
    Case("frames the model cannot take", "data", acquisition("odd_size.tif"), r"odd_size\.tif: frames of 30×30 px do not fit the model: at U = 2 the sides become 60×60, which must be divisible by 8"),
    Case("uint32 extremes", "data", acquisition("uint32_extremes.tif"), accepted=True, status=r"^ok$"),
    Case("ground truth without a column", "data", with_truth("gt_no_y.csv"), r"gt_no_y\.csv: missing column\(s\) \['y \[nm\]'\]", stage="evaluate"),
    Case("ground truth frames from 0", "data", with_truth("gt_from_0.csv"), r"gt_from_0\.csv: frames must be numbered from 1 \(ThunderSTORM\), found 0", stage="evaluate"),
    Case("empty ground truth", "data", with_truth("gt_empty.csv"), r"gt_empty\.csv: empty file \(0 bytes\)", stage="evaluate"),
    Case("non-numeric ground truth", "data", with_truth("gt_text.csv"), r"gt_text\.csv: row 3 \(line 4\), column 'x \[nm\]': 'abc' is not a finite number", stage="evaluate"),
    Case("ground truth of another stack", "data", with_truth("gt_other.csv"), r"gt_other\.csv: ground truth has frame 12, the acquisition only 6 frames", stage="evaluate"),
    Case("foreign model file", "data", with_model("foreign.pt"), r"foreign\.pt: not a Deep-STORM model file of this project"),
    Case("truncated model file", "data", with_model("model_cut.pt"), r"model_cut\.pt: not a readable Deep-STORM model file \(truncated, corrupt"),
    Case("code-carrying model file", "data", with_model("code.pt"), r"code\.pt: refused: the file holds Python objects \(posix\.system\) that could run code"),
    Case("model of another architecture", "data", with_model("other_architecture.pt"), r"other_architecture\.pt: weights do not fit architecture 'deepstorm'"),
    Case("TIFF given as the model", "data", with_model("model.tif"), r"model\.tif: not a readable Deep-STORM model file"),
    Case("model of another pixel size", "data", with_model("model.pt", pixel_size_nm=160), accepted=True,
         status=r"^ok \(model pixel 100 nm ≠ 160 nm\)$"),
]

CASES = CONFIG_CASES + DATA_CASES


# -------------------------------------------------------------------------------------------------- running


#: The stacks here are a few frames each: their jobs are mostly Python starting up (importing torch alone takes
#: about 3 s), so one thread each lets two of them run at once on 2 cores instead of one at a time.
ONE_THREAD_EACH = ["--set-threads", "reconstruct=1", "cross_evaluate=1", "save_predictions=1"]


def run_snakemake(workdir: Path, config: dict, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.dump(config, sort_keys=False))
    cmd = [SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(workdir), "--cores", "2", "--configfile", str(workdir / "config.yaml"),
           *ONE_THREAD_EACH]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []


def config_message(output: str) -> str:
    """The problem lines of a config refusal (what follows Snakemake's 'WorkflowError in file ...')."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("WorkflowError")), None)
    if start is None:
        return ""
    block = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith('File "'):
            break
        block.append(line)
    return "\n".join(block)


def run_config_case(case: Case, inputs: Path, workdir: Path) -> dict:
    """Dry-run the good datasets with the case's config added; the outcome as a table row."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = case.build(inputs)
    config = {**config, "datasets": {**good_datasets(inputs), **config["datasets"]}} if isinstance(config.get("datasets"), dict) else config
    result = run_snakemake(workdir, config, "-n")
    message = config_message(result.stdout + result.stderr)
    problems = [line.strip() for line in message.splitlines()[1:] if line.startswith("  ")]
    return {
        "case": case.name, "kind": case.kind, "exit": result.returncode, "message": message,
        "first_line": problems[0] if problems else (message.splitlines() or [""])[0],
        "partial_output": bool(_files(workdir / "results")), "others_finished": None,
        "output": result.stdout + result.stderr,
    }  # fmt: skip


def data_config(inputs: Path, cases: list[Case]) -> dict:
    datasets = good_datasets(inputs)
    for case in cases:
        datasets[case.label] = case.build(inputs)
    return {"datasets": datasets}


def run_data_cases(cases: list[Case], inputs: Path, workdir: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """One real keep-going run of every data case beside the good datasets; a row per case."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = run_snakemake(workdir, data_config(inputs, cases))
    summary_path = workdir / "results" / "summary.csv"
    summary = pd.read_csv(summary_path, keep_default_na=False).astype({"acquisition": str}) if summary_path.exists() else None
    status = {} if summary is None else {(r.dataset, r.acquisition): r.status for r in summary.itertuples()}
    others = all(status.get(key) == "ok" for key in GOOD_ACQUISITIONS)
    rows = []
    for case in cases:
        log = workdir / "results" / "logs" / case.stage / case.label / "a.log"
        text = log.read_text() if log.exists() else ""
        failed = [line.split(": failed: ", 1)[1] for line in text.splitlines() if ": failed: " in line]
        stage_outputs = workdir / "results" / case.stage / case.label / "a"
        metrics = workdir / "results" / "evaluate" / case.label / "a" / "metrics.json"
        rows.append({
            "case": case.name, "kind": case.kind, "exit": result.returncode, "message": "\n".join(failed),
            "first_line": failed[0] if failed else "(accepted)", "log": text,
            "partial_output": bool(_files(stage_outputs)) and not case.accepted,
            "others_finished": others, "status": status.get((case.label, "a")),
            "metrics": json.loads(metrics.read_text()) if metrics.exists() else None,
            "workdir": workdir,
        })  # fmt: skip
    return result, rows


def table(rows: list[dict]) -> str:
    out = ["| case | exit status | message's first line | partial output | others finished |", "|---|---|---|---|---|"]
    for r in rows:
        others = "n/a (refused at start)" if r["others_finished"] is None else ("yes" if r["others_finished"] else "no")
        first = r["first_line"].replace("|", "\\|")
        first = re.sub(r"/tmp/[^ ]*/inputs/", "", first)
        out.append(f"| {r['case']} | {r['exit']} | {first[:150]} | {'yes' if r['partial_output'] else 'no'} | {others} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["config", "data", "all"], default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dstorm-bad-") as tmp:
        inputs = make_inputs(Path(tmp) / "inputs")
        rows = []
        if args.kind in ("config", "all"):
            rows += [run_config_case(c, inputs, Path(tmp) / "config" / c.label) for c in CONFIG_CASES]
        if args.kind in ("data", "all"):
            rows += run_data_cases(DATA_CASES, inputs, Path(tmp) / "data")[1]
    print(f"{len(rows)} bad-input cases\n")
    print(table(rows))


if __name__ == "__main__":
    main()
