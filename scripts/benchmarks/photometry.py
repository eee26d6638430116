"""Photons and precision per localisation against the truth, on isolated emitters, on data from two simulators.

Rows:

- for each trained model given (e.g. the demo's), an acquisition of sparse emitters (0.3 /µm²) from this
  project's simulator with the benchmark conditions of common.py, which are the demo's (EMCCD epfl2016 or
  sCMOS, σ 106–115 nm, 2000–2500 photons, whole-frame emitters, 20 background photons per pixel),
  reconstructed with dstorm.photometry;
- with ``--picasso``: the whole workflow (snakemake) for the conditions of Picasso stacks (independent.py
  makes them and Picasso's venv): EMCCD and sCMOS cameras of the EPFL recipe, continuous-time blinking with
  short on-times (most emitter-frames partial and dim), 4000 ± 1200 photons a whole frame. Per camera a model
  is trained for the true conditions at 2 /µm² (the CPU recipe of independent_end_to_end.py) and reconstructs
  two acquisitions at 0.3 /µm², with the true camera and σ: Picasso's stack, and one from our simulator.

Over the localisations matched to a ground-truth emitter with no other within 1 µm in its frame it prints
Σ fitted photons ÷ Σ true photons (with its standard error), the median fitted background, and the measured
error (RMS per axis) against the predicted precision (RMS of ``uncertainty [nm]``) and their ratio, overall
and for the dimmer and brighter half of the emitters (by true photons).

Usage:
    .venv/bin/python scripts/benchmarks/photometry.py results/train/demo/density_2/model.pt [more model files]
    .venv/bin/python scripts/benchmarks/photometry.py --picasso          # about 15 min on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dataset, run_workflow  # noqa: E402

from dstorm.evaluation.metrics import localization_metrics  # noqa: E402
from dstorm.paths import JOBS  # noqa: E402
from dstorm.photometry import ISOLATION_NM, PRECISION_DENSITY, dataset_photometry, isolated  # noqa: E402
from dstorm.reconstruction import outputs_in, reconstruct  # noqa: E402
from dstorm.simulation.simulate import simulate_acquisition  # noqa: E402

DENSITY = PRECISION_DENSITY  # as sparse as the frames the precision was measured on


def score(loc: pd.DataFrame, gt: pd.DataFrame) -> str:
    """The table's cells after the condition: isolated matches, photons, background, errors and prediction."""
    gt_xy = gt[["x [nm]", "y [nm]"]].to_numpy(float)
    keep = isolated(gt["frame"].to_numpy(), gt_xy, ISOLATION_NM)
    _, m = localization_metrics(loc["frame"].to_numpy(), loc[["x [nm]", "y [nm]"]].to_numpy(float), gt["frame"].to_numpy(), gt_xy)
    sel = keep[m.gt_index]
    p, g = loc.iloc[m.pred_index[sel]], gt.iloc[m.gt_index[sel]]
    found, true = p["intensity [photon]"].to_numpy(), g["intensity [photon]"].to_numpy()
    err = p[["x [nm]", "y [nm]"]].to_numpy() - g[["x [nm]", "y [nm]"]].to_numpy()
    unc = p["uncertainty [nm]"].to_numpy()
    ok = np.isfinite(unc)
    # Σ found / Σ true and its standard error (ratio estimator, linearised)
    r = found.sum() / true.sum()
    se = np.std(found - r * true, ddof=1) * np.sqrt(len(true)) / true.sum()
    cells = [f"{sel.sum()}", f"{r:.3f} ± {se:.3f}", f"{np.median(p['offset [photon]']):.1f}"]
    half = np.median(true)
    for part in (np.ones(len(true), dtype=bool), true < half, true >= half):
        part = part & ok
        meas = float(np.sqrt(np.mean(err[part] ** 2)))
        pred = float(np.sqrt(np.mean(unc[part] ** 2)))
        cells.append(f"{meas:.1f} / {pred:.1f} = {meas / pred:.2f}")
    return " | ".join(cells)


HEADER = ("| model | data | isolated matches | Σ photons found / Σ true | background found (median) | "
          "error / predicted, nm: all | dimmer half | brighter half |\n|---|---|---|---|---|---|---|---|")  # fmt: skip


def ours(models: list[str], camera_name: str, frames: int) -> None:
    ds = dataset(camera=camera_name)
    camera, sigma_nm = dataset_photometry(ds)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        simulate_acquisition(ds, "isolated", density=DENSITY, n_frames=frames, frames_path=tmp / "a.tif",
                             ground_truth_path=tmp / "gt.csv")  # fmt: skip
        gt = pd.read_csv(tmp / "gt.csv")
        for model in models:
            out = outputs_in(tmp / Path(model).parent.name)
            reconstruct(str(tmp / "a.tif"), model, out, pixel_size_nm=100.0, camera=camera, psf_sigma_nm=sigma_nm,
                        drift={"method": "none"})  # fmt: skip
            print(f"| {model} | ours, {camera_name}, whole frames, 2000–2500 photons | "
                  f"{score(pd.read_csv(out['localizations']), gt)} |", flush=True)  # fmt: skip


def picasso(frames: int, keep: str | None) -> None:
    from independent import stacks
    from independent_end_to_end import dataset_config

    with tempfile.TemporaryDirectory(prefix="dstorm-photometry-") as tmp:
        folder = Path(keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        args = argparse.Namespace(cameras="emccd,scmos", kinetics="short on-times", photons="4000 ± 1200",
                                  densities=str(DENSITY), frames=frames, seed=0, one_frame_events="picasso")  # fmt: skip
        datasets, found = {}, {}
        for st in stacks(folder, args):
            ds = dataset_config("true", tif=st.tif.resolve(), csv=st.csv.resolve(), camera=st.camera,
                                density=st.truth["density"], kinetics=st.kinetics, photons=st.photons, seed=0)  # fmt: skip
            ds["training_set"]["densities"] = [2]
            ds["reconstruction"] = {"drift": {"method": "none"}}
            ds["acquisitions"]["ours"] = {"simulate": {"density": DENSITY, "frames": frames}}
            name = st.name.replace(".", "p")  # dataset names: letters, digits, _ and -
            datasets[name] = ds
            found[name] = st
        work = folder / "workflow"
        work.mkdir(exist_ok=True)
        with open(folder / "workflow.log", "w") as log:
            seconds = run_workflow(work, {"datasets": datasets}, log, keep_going=True)
        print(f"workflow: {len(datasets)} datasets in {seconds:.0f} s (log: {folder / 'workflow.log'})", file=sys.stderr)
        results = work / "results"
        for name, st in found.items():
            truths = {"Picasso": st.csv, "ours": results / JOBS["simulate_acquisition"].format(dataset=name, acquisition="ours") / "ground_truth.csv"}
            for source, acquisition in (("Picasso", "stack"), ("ours", "ours")):
                loc = results / JOBS["reconstruct"].format(dataset=name, acquisition=acquisition) / "localizations.csv"
                cells = score(pd.read_csv(loc), pd.read_csv(truths[source])) if loc.is_file() else "failed: see the workflow log"
                print(f"| trained for it at 2/µm² | {source}, {st.camera}, {st.kinetics}, {st.photons} photons | {cells} |",
                      flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*")
    parser.add_argument("--camera", default="epfl2016", help="camera preset of our simulator's rows")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--picasso", action="store_true", help="also the Picasso stacks (trains two models)")
    parser.add_argument("--keep", help="folder to keep the Picasso stacks and the workflow's results in")
    args = parser.parse_args()
    print(f"isolated: no other emitter within {ISOLATION_NM:g} nm in its frame; acquisitions at {DENSITY}/µm²\n")
    print(HEADER)
    if args.models:
        ours(args.models, args.camera, args.frames)
    if args.picasso:
        picasso(args.frames, args.keep)


if __name__ == "__main__":
    main()
