"""Photons and precision per localisation against the truth, on isolated emitters.

For each trained model given, an acquisition of isolated emitters (0.3 /µm², whole-frame emitters; the
benchmark conditions of common.py: EMCCD epfl2016 or sCMOS, σ 106–115 nm, 2000–2500 photons, 20 background
photons per pixel) is simulated and reconstructed with the photometry of dstorm.photometry. Over the
localisations matched to a ground-truth emitter with no other within 1 µm in its frame, it prints the fitted
photons ÷ the true ones, the fitted background, the measured error (RMS per axis) and the predicted
precision (Mortensen's bound, the mean of ``uncertainty [nm]``), and their ratio.

Usage:
    .venv/bin/python scripts/benchmarks/photometry.py results/train/demo/density_2/model.pt [more model files]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dataset  # noqa: E402

from dstorm.evaluation.metrics import localization_metrics  # noqa: E402
from dstorm.photometry import dataset_photometry, isolated  # noqa: E402
from dstorm.reconstruction import outputs_in, reconstruct  # noqa: E402
from dstorm.simulation.simulate import simulate_acquisition  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--camera", default="epfl2016")
    parser.add_argument("--frames", type=int, default=400)
    args = parser.parse_args()
    ds = dataset(camera=args.camera)
    camera, sigma_nm = dataset_photometry(ds)
    print("| model | camera | isolated matches | photons found/true | background found (true 20) | "
          "measured error nm (x, y) | predicted nm | measured / predicted |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gt = simulate_acquisition(ds, "isolated", density=0.3, n_frames=args.frames, frames_path=tmp / "a.tif",
                                  ground_truth_path=tmp / "gt.csv")  # fmt: skip
        gt = pd.read_csv(tmp / "gt.csv")
        keep = isolated(gt["frame"].to_numpy(), gt[["x [nm]", "y [nm]"]].to_numpy(), 1000.0)
        for model in args.models:
            out = outputs_in(tmp / Path(model).parent.name)
            reconstruct(str(tmp / "a.tif"), model, out, pixel_size_nm=100.0, camera=camera, psf_sigma_nm=sigma_nm,
                        drift={"method": "none"})  # fmt: skip
            loc = pd.read_csv(out["localizations"])
            _, m = localization_metrics(loc["frame"].to_numpy(), loc[["x [nm]", "y [nm]"]].to_numpy(float),
                                        gt["frame"].to_numpy(), gt[["x [nm]", "y [nm]"]].to_numpy(float))  # fmt: skip
            sel = keep[m.gt_index]
            p, g = loc.iloc[m.pred_index[sel]], gt.iloc[m.gt_index[sel]]
            err = p[["x [nm]", "y [nm]"]].to_numpy() - g[["x [nm]", "y [nm]"]].to_numpy()
            rms = np.sqrt(np.mean(err**2, axis=0))
            ratio = p["intensity [photon]"].to_numpy() / g["intensity [photon]"].to_numpy()
            predicted = float(np.sqrt(np.nanmean(p["uncertainty [nm]"].to_numpy() ** 2)))
            print(f"| {model} | {args.camera} | {sel.sum()} | {ratio.mean():.3f} ± {ratio.std(ddof=1) / np.sqrt(len(ratio)):.3f} | "
                  f"{p['offset [photon]'].mean():.1f} | {rms[0]:.1f}, {rms[1]:.1f} | {predicted:.1f} | "
                  f"{rms.mean() / predicted:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
