"""Drift: the simulator's trajectory, both estimators on localisations with a known drift, the solver's
outlier rejection, the spline, the corrected image, and drift.csv."""

import numpy as np
import pandas as pd
import pytest

from conftest import dataset
from dstorm.drift import (
    estimate_drift,
    interpolate,
    read_drift,
    residual_rms,
    segment_edges,
    solve_shifts,
    write_drift,
)
from dstorm.simulation.simulate import Simulator, drift_trajectory

FOV = (6400.0, 6400.0)


def drifting_localisations(rng, *, n_frames, per_frame, precision_nm=25.0, molecules=3000):
    """Localisations of molecules on ten random lines (each frame draws ``per_frame`` of them, so molecules
    repeat), with Gaussian errors, displaced by a drift of 100 nm linear + random walk + a slow sinusoid."""
    a, b = rng.uniform(0, FOV[0], (10, 2)), rng.uniform(0, FOV[0], (10, 2))
    k, t = rng.integers(0, 10, molecules), rng.uniform(0, 1, molecules)
    mol = a[k] + (b[k] - a[k]) * t[:, None]
    drift = drift_trajectory({"velocity_nm_per_frame": [0.01, -0.006], "random_walk_nm": 0.05,
                              "sinusoid_amplitude_nm": [20, 10], "sinusoid_period_frames": 8000}, n_frames, rng)  # fmt: skip
    frame = np.repeat(np.arange(1, n_frames + 1), per_frame)
    ids = rng.integers(0, molecules, len(frame))
    xy = mol[ids] + drift[frame - 1] + rng.normal(0, precision_nm, (len(frame), 2))
    return frame, xy[:, 0], xy[:, 1], drift


@pytest.mark.parametrize("method", ["aim", "rcc"])
def test_both_methods_recover_a_known_drift_within_5_nm(method):
    from dstorm.reconstruction import DEFAULTS

    rng = np.random.default_rng(0)
    frame, x, y, drift = drifting_localisations(rng, n_frames=6000, per_frame=40)  # 1/µm² on 41 µm²
    options = {k: v for k, v in DEFAULTS["drift"].items() if k != "method"}  # the config section, as the rule passes it
    est = estimate_drift(method, frame, x, y, n_frames=6000, fov_nm=FOV, **options)
    assert np.ptp(drift[:, 0]) > 40  # a drift worth correcting
    assert est.dx_nm[0] == est.dy_nm[0] == 0.0  # relative to frame 1
    rms = residual_rms((est.dx_nm, est.dy_nm), (drift[:, 0], drift[:, 1]))
    assert rms < 5.0, (method, rms)
    assert not est.warnings


def test_no_drift_is_estimated_as_nearly_none():
    rng = np.random.default_rng(1)
    frame, x, y, drift = drifting_localisations(rng, n_frames=2000, per_frame=40)
    x, y = x - drift[frame - 1, 0], y - drift[frame - 1, 1]
    for method in ("aim", "rcc"):
        est = estimate_drift(method, frame, x, y, n_frames=2000, fov_nm=FOV)
        assert np.abs(est.dx_nm).max() < 5 and np.abs(est.dy_nm).max() < 5, method


def test_short_or_sparse_acquisitions():
    rng = np.random.default_rng(2)
    frame, x, y, _ = drifting_localisations(rng, n_frames=100, per_frame=40)
    est = estimate_drift("aim", frame, x, y, n_frames=100, fov_nm=FOV)  # one segment of 100 frames
    assert not np.any(est.dx_nm) and "fewer than two segments" in est.details["note"] and not est.warnings
    sparse = estimate_drift("aim", frame[::20], x[::20], y[::20], n_frames=100, fov_nm=FOV, segment_frames=10)
    assert any("too few" in w for w in sparse.warnings)  # 200 localisations: segments lengthened
    assert estimate_drift("none", frame, x, y, n_frames=100, fov_nm=FOV).method == "none"
    with pytest.raises(ValueError, match="unknown drift method"):
        estimate_drift("fiducials", frame, x, y, n_frames=100, fov_nm=FOV)
    with pytest.raises(ValueError, match="unknown drift option"):
        estimate_drift("aim", frame, x, y, n_frames=100, fov_nm=FOV, radius_nm=5)


def test_the_solver_drops_an_outlier_pair_but_never_disconnects_the_segments():
    truth = np.array([[0, 0], [10, 5], [20, 12], [28, 20]], float)
    pairs = np.array([(i, j) for i in range(4) for j in range(i + 1, 4)])
    shifts = truth[pairs[:, 1]] - truth[pairs[:, 0]]
    bad = shifts.copy()
    bad[2] += [150.0, -90.0]  # pair (0, 3) wrong
    p, dropped = solve_shifts(pairs, bad, 4, max_residual_nm=5.0)
    assert dropped == 1 and np.allclose(p, truth, atol=1e-9)
    chain = np.array([[0, 1], [1, 2]])
    warnings = []
    p, dropped = solve_shifts(chain, np.array([[10.0, 0], [500.0, 0]]), 3, max_residual_nm=5.0, warnings=warnings)
    assert dropped == 0 and not warnings and np.allclose(p[:, 0], [0, 10, 510])  # a chain has no redundancy to reject with


def test_the_spline_smooths_noise_and_extrapolates_linearly():
    rng = np.random.default_rng(3)
    centres = np.arange(50, 10000, 100) + 1.0
    truth = 0.01 * centres
    noisy = truth + rng.normal(0, 2.0, len(centres))
    out = interpolate(centres, noisy, 10000)
    frames = np.arange(1, 10001)
    err = out - 0.01 * frames
    assert np.sqrt(np.mean(err**2)) < 2.0 / 2  # smoothing removes most of the noise of the segments
    line = interpolate(np.array([100.0, 300.0]), np.array([1.0, 3.0]), 400)
    np.testing.assert_allclose(line, 0.01 * np.arange(1, 401))  # linear, also beyond the outer centres
    assert np.all(interpolate(np.array([50.0]), np.array([4.0]), 10) == 4.0)


def test_segment_edges():
    assert segment_edges(1000, 100).tolist() == list(range(0, 1001, 100))
    assert segment_edges(1040, 100)[-2:].tolist() == [900, 1040]  # a short last segment joins the previous one
    assert segment_edges(1060, 100)[-2:].tolist() == [1000, 1060]


def test_drift_csv_round_trip(tmp_path):
    dx, dy = np.array([0.0, 1.25, -2.5]), np.array([0.0, 0.5, 3.0])
    write_drift(tmp_path / "drift.csv", dx, dy)
    assert open(tmp_path / "drift.csv").readline().strip() == '"frame","dx [nm]","dy [nm]"'
    got = read_drift(tmp_path / "drift.csv")
    np.testing.assert_allclose(got[0], dx) and np.testing.assert_allclose(got[1], dy)
    assert residual_rms(got, (dx + 7.0, dy - 2.0)) == pytest.approx(0.0, abs=1e-9)  # a common offset is free


def test_the_simulated_trajectory_and_its_random_walk_statistics():
    n, step = 20000, 0.3
    d = drift_trajectory({"velocity_nm_per_frame": [0.02, -0.01], "random_walk_nm": step}, n, np.random.default_rng(4))
    assert np.all(d[0] == 0)
    inc = np.diff(d, axis=0) - [0.02, -0.01]
    # the step variance within 5 standard errors (the sample variance's SE is σ² √(2/(n−1)))
    assert np.all(np.abs(inc.var(axis=0, ddof=1) - step**2) < 5 * step**2 * np.sqrt(2 / (n - 2)))
    assert np.all(np.abs(inc.mean(axis=0)) < 5 * step / np.sqrt(n - 1))
    sine = drift_trajectory({"sinusoid_amplitude_nm": [10, 0], "sinusoid_period_frames": 400}, 401, np.random.default_rng(0))
    assert sine[100, 0] == pytest.approx(10.0) and sine[400, 0] == pytest.approx(0.0, abs=1e-9)


def test_the_simulator_images_emitters_displaced_by_the_drift_and_keeps_their_sample_positions():
    sim_ = Simulator(dataset())
    n = 12
    drift = np.zeros((n, 2))
    drift[:, 0] = 100.0 * np.arange(n)  # one camera pixel per frame in x
    still = sim_.draw(sim_.streams("acquisition", "a"), density=2.0, n_frames=n)
    moving = sim_.draw(sim_.streams("acquisition", "a"), density=2.0, n_frames=n, drift_nm=drift)
    gt_still, gt_moving = still.ground_truth, moving.ground_truth
    # the same emitters (those still in the field), at their sample positions
    merged = gt_moving.merge(gt_still, on=["frame", "x [nm]", "y [nm]"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all() and len(gt_moving) < len(gt_still)
    for t in (3, 7):
        a = sim_.expected_photons(still, t, t + 1)[0]
        b = sim_.expected_photons(moving, t, t + 1)[0]
        # the drifted frame is the still one moved by t pixels, where both are inside the field
        inside = np.zeros(a.shape, bool)
        inside[:, t:] = True
        still_ev = still.events.frame == t
        leaving = still.events.x_nm[still_ev] + drift[t, 0] >= sim_.fov_nm[1]
        if not leaving.any():
            np.testing.assert_allclose(b[:, t:], a[:, :-t], rtol=1e-9, atol=1e-9)
        else:  # emitters that left the field are gone: compare columns their PSFs cannot reach
            lo = int(sim_.fov_nm[1] / 100) - 6
            np.testing.assert_allclose(b[:, t:lo], a[:, : lo - t], rtol=1e-9, atol=1e-9)


def test_the_corrected_image_shifts_each_segment_back():
    from dstorm.drift import Drift
    from dstorm.reconstruction import _corrected_image

    hr_nm, n = 25.0, 40
    edges = np.array([0, 20, 40])
    images = []
    for k, shift_px in enumerate((0, 4)):  # the second segment drifted by 4 high-resolution pixels in x
        im = np.zeros((32, 32))
        im[10, 10 + shift_px] = 1.0
        images.append(im)
    dx = np.where(np.arange(n) < 20, 0.0, 4 * hr_nm)
    out = _corrected_image(images, edges, Drift(dx, np.zeros(n), "aim"), hr_nm)
    assert out[10, 10] == pytest.approx(2.0) and out.sum() == pytest.approx(2.0)


def test_reconstruct_writes_the_corrected_and_the_uncorrected_outputs(tmp_path):
    """Without drift (method none and a too-short stack for aim) the corrected table is the uncorrected one."""
    import tifffile
    import torch

    from dstorm.model.modelfile import save_model
    from dstorm.model.network import DeepSTORMNet
    from dstorm.reconstruction import outputs_in, reconstruct

    torch.manual_seed(0)
    save_model(tmp_path / "m.pt", DeepSTORMNet(), "deepstorm", upsampling_factor=4, normalization={"mean": 0.2, "std": 0.2},
               weighting_factor=100.0, pixel_size_nm=100.0, calibration={"threshold": 0.001})  # fmt: skip
    frames = np.random.default_rng(5).integers(90, 400, (6, 16, 16), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", frames, imagej=True, resolution=(10, 10), metadata={"unit": "um"})
    for method in ("none", "aim"):
        out = outputs_in(tmp_path / method)
        s = reconstruct(str(tmp_path / "a.tif"), str(tmp_path / "m.pt"), out, pixel_size_nm=100.0, drift={"method": method})
        assert s["drift"]["method"] == method
        assert open(out["localizations"]).read() == open(out["localizations_uncorrected"]).read()
        np.testing.assert_allclose(tifffile.imread(out["super_resolution"]), tifffile.imread(out["super_resolution_uncorrected"]))
        assert pd.read_csv(out["drift"])["dx [nm]"].eq(0).all() and len(pd.read_csv(out["drift"])) == 6
        assert open(out["drift_png"], "rb").read(4) == b"\x89PNG"


def test_the_schema_names_the_methods_and_formats_the_library_has():
    import yaml

    from conftest import REPO
    from dstorm.drift import DRIFT_METHODS, METHOD_OPTIONS
    from dstorm.loctable import FORMATS

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    recon = schema["$defs"]["reconstruction"]["properties"]
    drift = recon["drift"]["properties"]
    assert tuple(drift["method"]["enum"]) == DRIFT_METHODS
    assert set(drift) == {"method", "segment_frames"} | {k for keys in METHOD_OPTIONS.values() for k in keys}
    assert tuple(recon["formats"]["items"]["enum"]) == FORMATS
