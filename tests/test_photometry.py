"""Photons, background and precision per localisation; NeNA; grouping; the Picasso export."""

import numpy as np
import pandas as pd
import pytest
import yaml

from dstorm.config import resolve_camera
from dstorm.evaluation.nena import nena
from dstorm.grouping import group_table
from dstorm.loctable import HEADER, export, picasso_paths
from dstorm.photometry import fit_photons, fit_precision, mortensen_precision, photons_per_adu, precision_function
from dstorm.simulation.camera import camera_from_config
from dstorm.simulation.psf import IntegratedGaussianPSF


@pytest.mark.parametrize("preset", ["epfl2016", "scmos_typical"])
def test_photons_and_background_of_isolated_emitters_are_unbiased(preset):
    """Isolated emitters of 2000-2500 photons on 20 photons/px, through each camera model: the fitted photons
    and background match the truth on average (within 5 standard errors, and 10 %/1 photon)."""
    rng = np.random.default_rng(0)
    camera = resolve_camera({"preset": preset})
    side, spacing, frames = 64, 8, 30
    centres = np.arange(spacing / 2, side, spacing)
    xx, yy = np.meshgrid(centres, centres)
    n_per = xx.size
    x = np.tile(xx.ravel(), frames) + rng.uniform(-0.5, 0.5, n_per * frames)
    y = np.tile(yy.ravel(), frames) + rng.uniform(-0.5, 0.5, n_per * frames)
    frame = np.repeat(np.arange(frames), n_per)
    photons = rng.uniform(2000, 2500, len(x))
    sigma_px = 1.1
    expected = IntegratedGaussianPSF(sigma_nm=(110, 110), pixel_size_nm=100).render(
        frames, (side, side), frame, x, y, photons, np.full(len(x), sigma_px)) + 20.0  # fmt: skip
    adu = camera_from_config(camera, (side, side))(expected, rng)
    found, bg = fit_photons(adu, frame, x, y, camera=camera, sigma_px=sigma_px)
    ratio = found / photons
    se = ratio.std(ddof=1) / np.sqrt(len(ratio))
    assert abs(ratio.mean() - 1) < max(5 * se, 0.01) and abs(ratio.mean() - 1) < 0.1, (ratio.mean(), se)
    assert abs(bg.mean() - 20) < max(5 * bg.std(ddof=1) / np.sqrt(len(bg)), 1.0), bg.mean()


def test_photons_per_adu_of_each_camera():
    emccd = resolve_camera({"preset": "epfl2016"})  # 300 em gain, 45 e-/ADU, QE 0.9
    assert photons_per_adu(emccd) == pytest.approx(45 / 300 / 0.9)
    assert photons_per_adu(resolve_camera({"preset": "ideal"})) == 1.0


def test_mortensen_precision_by_hand():
    # σ 100 nm, a 100 nm, N 1000, b 0: σ_a² = 10000 + 10000/12, var = σ_a²/N (τ = 0)
    sa2 = 100**2 + 100**2 / 12
    assert mortensen_precision(1000, 0, sigma_nm=100, pixel_nm=100)[()] == pytest.approx(np.sqrt(sa2 / 1000))
    # with background 10 photons/px: τ = 2π σ_a² b / (N a²)
    tau = 2 * np.pi * sa2 * 10 / (1000 * 100**2)
    expected = np.sqrt(sa2 / 1000 * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))
    assert mortensen_precision(1000, 10, sigma_nm=100, pixel_nm=100)[()] == pytest.approx(expected)
    # an EMCCD halves the photons and the background (excess noise 2)
    assert mortensen_precision(2000, 20, sigma_nm=100, pixel_nm=100, camera_model="emccd")[()] == pytest.approx(expected)
    assert np.isnan(mortensen_precision(-5.0, 1.0, sigma_nm=100, pixel_nm=100)[()])


def blinking_localisations(rng, *, molecules=3000, precision_nm=15.0, mean_run=4.0):
    """Molecules on for geometric runs of consecutive frames, each detection with Gaussian errors."""
    rows = []
    for m in range(molecules):
        p = rng.uniform(0, 20000, 2)
        start, length = rng.integers(1, 5000), rng.geometric(1 / mean_run)
        for f in range(start, start + length):
            rows.append((f, *(p + rng.normal(0, precision_nm, 2)), m, *p))
    t = pd.DataFrame(rows, columns=["frame", "x [nm]", "y [nm]", "molecule", "x0", "y0"]).sort_values("frame", kind="stable")
    t["uncertainty [nm]"], t["intensity [photon]"] = precision_nm, 1000.0
    return t.reset_index(drop=True)


def test_nena_recovers_a_known_precision():
    t = blinking_localisations(np.random.default_rng(1))
    # add uniform false detections: the fit's linear term takes them
    rng = np.random.default_rng(2)
    noise = pd.DataFrame({"frame": rng.integers(1, 5000, 3000), "x [nm]": rng.uniform(0, 20000, 3000),
                          "y [nm]": rng.uniform(0, 20000, 3000)})  # fmt: skip
    both = pd.concat([t[["frame", "x [nm]", "y [nm]"]], noise])
    out = nena(both["frame"], both["x [nm]"], both["y [nm]"])
    assert out["nena_pairs"] > 5000
    assert abs(out["nena_nm"] - 15.0) < max(5 * out["nena_se_nm"], 0.03 * 15.0), out
    few = nena([1, 2], [0.0, 1.0], [0.0, 0.0])
    assert np.isnan(few["nena_nm"]) and few["nena_pairs"] == 1


def test_grouping_merges_runs_and_improves_the_position():
    t = blinking_localisations(np.random.default_rng(3))
    g = group_table(t, radius_nm=60, max_gap_frames=0)
    assert g["detections"].sum() == len(t) and g["intensity [photon]"].sum() == pytest.approx(t["intensity [photon]"].sum())
    runs = t.groupby("molecule").ngroups
    assert runs <= len(g) < 1.1 * runs  # a few runs split where two detections are > 60 nm apart
    # the grouped position averages the run: its error falls as 1/sqrt(detections)
    mol = t.groupby("molecule")[["x0", "y0"]].first()
    truth = mol.to_numpy()
    from scipy.spatial import cKDTree

    d, _ = cKDTree(truth).query(g[["x [nm]", "y [nm]"]].to_numpy())
    single = np.hypot(t["x [nm]"] - t["x0"], t["y [nm]"] - t["y0"])
    assert np.sqrt(np.mean(d**2)) < 0.75 * np.sqrt(np.mean(single**2))
    long = g[g["detections"] >= 4]
    assert long["uncertainty [nm]"].max() <= 15.0 / 2 + 1e-9  # combined precision 15/√k
    gap = group_table(pd.DataFrame({"frame": [1, 3, 6], "x [nm]": [0.0, 5.0, 10.0], "y [nm]": [0.0, 0.0, 0.0]}),
                      radius_nm=50, max_gap_frames=1)  # fmt: skip
    assert gap["detections"].tolist() == [2, 1]  # frames 1 and 3 (one missed frame), then 6 after two


def test_the_picasso_export_has_picassos_layout(tmp_path):
    import h5py

    rows = np.array([[1, 1, 150.0, 250.0, 110.0, 2000.0, 20.0, 8.0, 3.0, 0.5],
                     [2, 7, 6350.0, 50.0, 110.0, 1500.0, 25.0, 10.0, 2.0, 0.4]])  # fmt: skip
    csv = tmp_path / "localizations.csv"
    csv.write_text(",".join(f'"{c}"' for c in HEADER) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    out = tmp_path / "localizations.hdf5"
    n = export(csv, {"picasso": out}, {"frames": 10, "height": 64, "width": 64, "pixel_size_nm": 100.0, "acquisition": "a.tif"})
    assert n == 2
    with h5py.File(out, "r") as f:
        locs = f["locs"][...]
    assert set(("frame", "x", "y", "lpx", "lpy")) <= set(locs.dtype.names)
    np.testing.assert_array_equal(locs["frame"], [0, 6])  # from 0
    np.testing.assert_allclose(locs["x"], [1.0, 63.0])  # camera pixels, pixel centres at integers
    np.testing.assert_allclose(locs["y"], [2.0, 0.0])
    np.testing.assert_allclose(locs["lpx"], [0.08, 0.10], rtol=1e-6)
    np.testing.assert_allclose(locs["photons"], [2000, 1500])
    np.testing.assert_allclose(locs["sx"], [1.1, 1.1], rtol=1e-6)
    info = list(yaml.safe_load_all(picasso_paths(out)[1].read_text()))
    assert info[0]["Frames"] == 10 and info[0]["Width"] == 64 and info[0]["Height"] == 64 and info[0]["Pixelsize"] == 100.0


def test_the_precision_curve_recovers_errors_of_three_times_the_bound():
    """Localisations with Gaussian errors of 3 × Mortensen's bound per axis on isolated emitters (1.2 µm
    apart) of simulated frames: each point of the curve the calibration stores is 3 × its bound within 4
    standard errors of a bin's mean e² (e² = (ex² + ey²)/2 is exponential, so the standard error of its
    mean over a bin is √(Σ sd⁴)/n; half of it relative, after the square root), plus 5 % where the isotonic
    regression pools two neighbouring bins whose bounds differ by that much."""
    from dstorm.training import precision_model

    rng = np.random.default_rng(6)
    camera = resolve_camera({"preset": "epfl2016"})
    side, spacing, frames = 64, 12, 60
    centres = np.arange(spacing / 2, side, spacing)
    xx, yy = np.meshgrid(centres, centres)
    x = np.tile(xx.ravel(), frames) + rng.uniform(-0.5, 0.5, xx.size * frames)
    y = np.tile(yy.ravel(), frames) + rng.uniform(-0.5, 0.5, xx.size * frames)
    frame = np.repeat(np.arange(frames), xx.size)
    photons = rng.uniform(300, 5000, len(x))
    expected = IntegratedGaussianPSF(sigma_nm=(110, 110), pixel_size_nm=100).render(
        frames, (side, side), frame, x, y, photons, np.full(len(x), 1.1)) + 20.0  # fmt: skip
    adu = camera_from_config(camera, (side, side))(expected, rng).astype(np.float32)
    gt_xy = np.column_stack([x, y]) * 100
    meta = {"pixel_size_nm": 100, "camera": camera, "psf": {"sigma_nm": [110, 110]}}
    # the bound the calibration computes (photons fitted at the localisation), to draw the errors from
    found = gt_xy.copy()
    fitted = fit_photons(adu, frame, x, y, camera=camera, sigma_px=1.1)
    bound = mortensen_precision(*fitted, sigma_nm=110, pixel_nm=100, camera_model="emccd")
    found += rng.normal(0, 1, gt_xy.shape) * 3 * bound[:, None]
    out = precision_model(adu, frame, found, frame, gt_xy, meta, 250.0)
    assert out["precision_emitters"] == len(x), out
    curve = out["precision_curve"]
    assert len(curve["bound_nm"]) == 8 and np.all(np.diff(curve["precision_nm"]) >= 0)
    sd = 3 * np.sort(bound)
    for k, part in enumerate(np.array_split(sd, 8)):
        se_rel = 0.5 * np.sqrt(np.sum(part**4)) / np.sum(part**2)
        assert abs(curve["precision_nm"][k] / (3 * curve["bound_nm"][k]) - 1) < 4 * se_rel + 0.05, (k, curve)
    few = precision_model(adu, frame[:10], found[:10], frame[:10], gt_xy[:10], meta, 250.0)
    assert few["precision_curve"] is None and few["precision_emitters"] == 10


def test_the_precision_curve_is_exact_on_noise_free_errors_and_continues_with_clipped_slopes():
    """Hand-made cases. Errors exactly 3 × the bound (split equally over x and y): every point of the curve
    is 3 × its bound. The curve (1 nm → 5 nm, 10 nm → 50 nm) is a straight line in log–log: 5√10 nm at √10
    nm, and beyond its ends slope 1: 500 nm at 100 nm, 0.5 nm at 0.1 nm; a steeper curve (1 →
    1, 10 → 1000, slope 3) continues with slope 1 (10,000 at 100), a flat one stays flat; NaN where the
    bound is NaN or not positive; without a curve the bound itself."""
    b = np.arange(1.0, 101.0)
    out = fit_precision(b, np.column_stack([3 * b, 3 * b]))
    np.testing.assert_allclose(out["precision_nm"], 3 * np.asarray(out["bound_nm"]), rtol=1e-12)
    f = precision_function({"precision_curve": {"bound_nm": [1.0, 10.0], "precision_nm": [5.0, 50.0]}})
    np.testing.assert_allclose(f([1.0, np.sqrt(10), 10.0, 100.0, 0.1]), [5.0, 5 * np.sqrt(10), 50.0, 500.0, 0.5])
    assert np.isnan(f([np.nan, 0.0, -1.0])).all()
    steep = precision_function({"precision_curve": {"bound_nm": [1.0, 10.0], "precision_nm": [1.0, 1000.0]}})
    np.testing.assert_allclose(steep([100.0, 0.1]), [10000.0, 0.1])
    flat = precision_function({"precision_curve": {"bound_nm": [1.0, 10.0], "precision_nm": [7.0, 7.0]}})
    np.testing.assert_allclose(flat([0.01, 5.0, 1000.0]), 7.0)
    np.testing.assert_allclose(precision_function({})([2.0, 3.0]), [2.0, 3.0])


def test_picassos_own_reader_loads_the_export(tmp_path):
    """Picasso's io.load_locs (picassosr in build/picasso-venv, which scripts/benchmarks/independent.py makes;
    Picasso cannot share the project's environment: it pins pandas < 3)."""
    import subprocess
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "scripts" / "benchmarks"))
    from common import PICASSO_PYTHON as python
    if not python.exists():
        pytest.skip(f"Picasso not installed at {python} (made by scripts/benchmarks/independent.py)")
    rows = np.array([[1, 1, 150.0, 250.0, 110.0, 2000.0, 20.0, 8.0, 3.0, 0.5],
                     [2, 7, 6350.0, 50.0, 110.0, 1500.0, 25.0, 10.0, 2.0, 0.4]])  # fmt: skip
    csv = tmp_path / "localizations.csv"
    csv.write_text(",".join(f'"{c}"' for c in HEADER) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    out = tmp_path / "localizations.hdf5"
    export(csv, {"picasso": out}, {"frames": 10, "height": 64, "width": 64, "pixel_size_nm": 100.0})
    code = (f"from picasso import io; locs, info = io.load_locs({str(out)!r}); "
            "print(len(locs), list(locs['frame']), [round(float(v), 3) for v in locs['x']], info[0]['Pixelsize'])")  # fmt: skip
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2 [0, 6] [1.0, 63.0] 100.0"
