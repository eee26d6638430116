"""Estimating the imaging conditions from raw frames: fits, photon transfer, accuracy on simulations with
known truth (sparse and crowded), the config merge (typed keys win) and a dataset configured with only a TIFF and a pixel size."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from conftest import TINY_RECIPE, dataset, run_snakemake

from dstorm.cameras import adu_per_electron, mean_offset_adu
from dstorm.config import apply_estimates, prepare_estimates
from dstorm.estimation.conditions import estimate_conditions, noise_line, quiet_neighbourhood
from dstorm.estimation.run import conditions_config, typed_camera
from dstorm.estimation.spots import fit_spots, integrated_gaussian
from dstorm.io import write_stack
from dstorm.simulation.simulate import Simulator


def simulate_stack(preset: str, density: float, frames: int = 300, seed: int = 5):
    """A uniform-structure acquisition of 64 × 64 px (σ 106–115 nm, 2000–2500 photons, 20 ± 20 % background)."""
    ds = dataset(
        seed=seed, camera={"preset": preset}, background={"photons_per_px": 20, "variation": 0.2},
        photophysics={"photons": {"distribution": "uniform", "low": 2000, "high": 2500}},
    )  # fmt: skip
    sim = Simulator(ds)
    rngs = sim.streams("acquisition", "estimate-test")
    drawn = sim.draw(rngs, density=density, n_frames=frames)
    stack = np.concatenate(list(sim.frames(drawn, frames, rngs["camera"])))
    cam = ds["camera"]
    truth = {
        "gain": adu_per_electron(cam),
        "offset": mean_offset_adu(cam),  # the mean of floor(x + baseline)
        "photons_e": 2250 * cam["quantum_efficiency"],
        "background_e": float(drawn.background.mean()) * cam["quantum_efficiency"],
        "density": len(drawn.events) / frames / (64 * 64 * 0.01),
        "model": cam["model"],
    }
    return stack, truth, ds


def test_batched_fit_matches_scipy_least_squares():
    from scipy.optimize import least_squares

    rng = np.random.default_rng(0)
    windows, truth = [], []
    for _ in range(20):
        p = (3.5 + rng.uniform(-0.5, 0.5), 3.5 + rng.uniform(-0.5, 0.5), rng.uniform(0.9, 1.4), rng.uniform(500, 3000), rng.uniform(5, 50))
        windows.append(rng.poisson(p[3] * integrated_gaussian(p[0], p[1], p[2], 7) + p[4]).astype(float))
        truth.append(p)
    fits = fit_spots(np.array(windows))
    assert fits.ok.all()
    for i, w in enumerate(windows):
        ref = least_squares(lambda q: q[3] * integrated_gaussian(q[0], q[1], q[2], 7).ravel() + q[4] - w.ravel(), [3.5, 3.5, 1.0, w.sum(), 0.0]).x
        np.testing.assert_allclose(fits.params()[i], ref, rtol=1e-4, atol=1e-4)


def spotted_frames(rng, frames=100, size=64, spots=60, background=30.0):
    """Expected photo-electrons: a smooth background and Gaussian spots (σ 1–1.3 px, 1000–3000 e⁻) at random
    places, and the emitters' positions."""
    yy, xx = np.mgrid[:size, :size]
    base = background * (1 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 13.0))
    out = np.repeat(base[None], frames, axis=0)
    where = []
    for f in range(frames):
        for _ in range(spots):
            r, c = rng.uniform(4, size - 4, 2)
            r0, c0 = int(r) - 7, int(c) - 7
            win = rng.uniform(1000, 3000) * integrated_gaussian(c - c0, r - r0, rng.uniform(1.0, 1.3), 15)
            rs, cs = slice(max(r0, 0), r0 + 15), slice(max(c0, 0), c0 + 15)
            out[f, rs, cs] += win[rs.start - r0 : rs.start - r0 + out[f, rs, cs].shape[0], cs.start - c0 : cs.start - c0 + out[f, rs, cs].shape[1]]
            where.append((f, r, c))
    return out, np.array(where)


def test_noise_line_recovers_a_known_variance_model_at_any_density():
    """Crowded sCMOS-like frames, var = 0.5·(m − 100) + 4 ADU²: the high-pass photon transfer finds the line
    though hardly any pixel is background."""
    rng = np.random.default_rng(1)
    expected, _ = spotted_frames(rng)
    frames = 0.5 * rng.poisson(expected) + rng.normal(0, 2.0, expected.shape) + 100
    line = noise_line(frames)
    assert line.slope == pytest.approx(0.5, rel=0.03)
    assert line.intercept == pytest.approx(4 - 0.5 * 100, abs=4.0)
    assert line.samples == 100 * 58 * 58  # every position the 7-tap filter fits in
    # without the high-pass, the spots' own variation swamps the noise: a plain local variance is far off
    assert np.var(frames, axis=0).mean() > 3 * (line.slope * frames.mean() + line.intercept)


def test_background_samples_are_chosen_by_their_neighbours_only():
    """A pixel's own value never decides whether it is a background sample (else κ3 would be clipped), and
    no pixel within reach of an emitter's light is chosen."""
    rng = np.random.default_rng(3)
    expected, where = spotted_frames(rng, frames=40, spots=25)
    frames = rng.poisson(expected).astype(float)
    level = expected.min(axis=0)  # the background (no frame is spot-free everywhere, but each pixel is in some)
    chosen = quiet_neighbourhood(frames, level, level)
    changed = frames.copy()
    changed[:, 20, 20] += 1000.0  # a pixel's own value, however extreme, does not change its choice
    assert np.array_equal(quiet_neighbourhood(changed, level, level)[:, 20, 20], chosen[:, 20, 20])
    signal = expected - level
    assert 0.05 < chosen.mean() < 0.9
    # the spot light left in the chosen samples is faint and rare: its mean is below 0.1 photo-electrons, and its
    # third cumulant, which biases the offset (by G·κ3), is below 0.1 e⁻³ against the background noise's own 30
    assert signal[chosen].mean() < 0.1
    assert abs(stats.kstat(signal[chosen], 3)) < 0.1
    assert signal[~chosen].mean() > 20 * signal[chosen].mean()


@pytest.mark.parametrize("preset, density", [("epfl2016", 2.0), ("scmos_typical", 1.0), ("zerocostdl4mic", 6.0)])
def test_estimates_match_the_simulated_truth(preset, density):
    """The issue's targets on a representative subset (scripts/benchmarks/estimate_accuracy.py runs them
    all), blind: σ 10 %, median photons 20 %, background 15 %, gain 15 %, density 25 %, camera type, and the
    offset within 2 ADU where background is plentiful (≤ 2/µm²). Where spots crowd (6/µm²), few pixels are
    background and the offset's statistical error at 300 frames is itself about 2 ADU for this camera (read
    noise as large as the background's shot noise), so there it must lie within 3 of its reported standard
    errors, which must stay below 3 ADU."""
    stack, truth, _ = simulate_stack(preset, density)
    est = estimate_conditions(stack, pixel_size_nm=100, quantum_efficiency=1.0)
    v = est.values
    assert v["camera_model"] == truth["model"]
    assert v["psf_sigma_nm"] == pytest.approx(110.5, rel=0.10)
    assert v["photons_median"] == pytest.approx(truth["photons_e"], rel=0.20)
    assert v["gain_adu_per_e"] == pytest.approx(truth["gain"], rel=0.15)
    assert v["density_per_um2"] == pytest.approx(truth["density"], rel=0.25)
    assert v["background_photons_per_px"] == pytest.approx(truth["background_e"], rel=0.15)
    se = est.errors["offset_adu"]
    assert 0 < se < 3
    assert abs(v["offset_adu"] - truth["offset"]) < (2.0 if density <= 2 else 3 * se)
    assert est.errors["psf_sigma_nm"] > 0 and est.errors["density_per_um2"] > 0


def test_typed_camera_values_replace_the_estimates_downstream():
    stack, truth, _ = simulate_stack("epfl2016", 1.0, frames=150)
    fixed = typed_camera({"preset": "epfl2016"})
    assert fixed == {"camera_model": "emccd", "quantum_efficiency": 0.9, "gain_adu_per_e": pytest.approx(300 / 45), "offset_adu": 99.5}
    est = estimate_conditions(stack, pixel_size_nm=100, **fixed)
    assert est.values["gain_adu_per_e"] == pytest.approx(300 / 45)
    assert est.values["offset_adu"] == 99.5
    # with the true camera the photons (before QE) and background are right to a few per cent
    assert est.values["photons_median"] == pytest.approx(2250, rel=0.08)
    assert est.values["background_photons_per_px"] == pytest.approx(truth["background_e"] / 0.9, rel=0.08)


def test_crowded_or_empty_data_warn_or_fail_clearly():
    from dstorm.estimation.conditions import EstimationError

    rng = np.random.default_rng(2)
    with pytest.raises(EstimationError, match="spots"):
        estimate_conditions(rng.poisson(50, (20, 32, 32)).astype(float), pixel_size_nm=100)
    stack, _, _ = simulate_stack("epfl2016", 6.0, frames=60)
    est = estimate_conditions(stack, pixel_size_nm=100)
    assert any("crowded" in w for w in est.warnings)


def test_saturated_pixels_are_flagged():
    stack, _, _ = simulate_stack("epfl2016", 1.0, frames=100)
    level = float(np.percentile(stack, 99.9))
    est = estimate_conditions(np.minimum(stack, level), pixel_size_nm=100, saturation=level)
    assert est.diagnostics["quality"]["saturated_fraction"] >= 0.001
    assert any("saturation" in w for w in est.warnings)
    clean = estimate_conditions(stack, pixel_size_nm=100, saturation=65535)
    assert not any("saturation" in w for w in clean.warnings)


def test_typed_keys_override_estimates_key_by_key():
    config = {"datasets": {"d": {"psf": {"sigma_nm": [100, 100]}, "camera": {"em_gain": 50}, "acquisitions": {"a": {"path": "x.tif"}}}}}
    given = prepare_estimates(config)
    ds = config["datasets"]["d"]
    assert ds["estimate"] == {"acquisitions": ["a"]} and ds["training_set"] == {"densities": ["estimated"]}
    conditions = {
        "config": {
            "camera": {"model": "emccd", "em_gain": 100.0, "e_per_adu": 15.0, "baseline_adu": 100.0, "quantum_efficiency": 1.0, "read_noise_e": 3.0},
            "psf": {"sigma_nm": [120, 130]},
            "photophysics": {"photons": {"distribution": "normal", "mean": 1000.0, "std": 100.0}},
            "background": {"photons_per_px": 10.0, "variation": 0.1},
        }
    }
    base = {"psf": {"sigma_nm": [106, 115], "cutoff_sigma": 4}, "photophysics": {"photons": {"distribution": "uniform", "low": 1, "high": 2}, "mean_on_frames": 1.0},
            "background": {"photons_per_px": 20, "variation": 0, "length_scale_nm": 3000}, "camera": {}, "given": given["d"]}  # fmt: skip
    used = apply_estimates(base, conditions)
    assert used["psf"] == {"sigma_nm": [100, 100], "cutoff_sigma": 4}  # typed
    assert used["camera"]["em_gain"] == 50 and used["camera"]["e_per_adu"] == 15.0  # typed, estimated
    assert used["photophysics"]["photons"] == {"distribution": "normal", "mean": 1000.0, "std": 100.0}  # whole, not over the defaults
    assert used["photophysics"]["mean_on_frames"] == 1.0  # not estimated: the schema default stays
    assert used["background"] == {"photons_per_px": 10.0, "variation": 0.1, "length_scale_nm": 3000}
    base["given"]["photophysics"] = {"photons": {"distribution": "lognormal"}}  # a typed key inside photons
    assert apply_estimates(base, conditions)["photophysics"]["photons"] == {"distribution": "lognormal", "mean": 1000.0, "std": 100.0}


def test_estimated_camera_reproduces_the_data_statistics():
    """Simulating with the estimated config gives frames whose background mean and variance match the data."""
    stack, truth, ds = simulate_stack("zerocostdl4mic", 1.0, frames=200)
    est = estimate_conditions(stack, pixel_size_nm=100)
    cfg = conditions_config(est, integer_data=True, given_camera={})
    from dstorm.config import resolve_camera
    from dstorm.simulation.camera import camera_from_config

    cam = camera_from_config(resolve_camera(cfg["camera"]), (64, 64))
    mean, var = cam.theory_mean_variance(cfg["background"]["photons_per_px"])
    true_mean, true_var = Simulator(ds).camera.theory_mean_variance(truth["background_e"])
    assert mean == pytest.approx(true_mean, abs=3.0)
    assert var == pytest.approx(true_var, rel=0.15)


def test_a_dataset_with_only_a_tiff_and_a_pixel_size_trains_and_reconstructs(tmp_path):
    stack, truth, _ = simulate_stack("epfl2016", 1.0, frames=200, seed=9)
    write_stack(tmp_path / "data.tif", stack, shape=stack.shape, dtype=np.uint16, pixel_size_nm=100)
    config = {
        "datasets": {
            "mine": {
                "pixel_size_nm": 100,
                "acquisitions": {"cells": {"path": "data.tif"}},
                # CPU-test sizes only; the science keys above are all a user must give
                "training_set": {"densities": ["estimated"], "frames": 6, "upsampling_factor": 2, "patch_size_px": 8, "patches_per_frame": 20, "max_patches": 60, "min_emitters": 1, "calibration_frames": 4},
                "training": TINY_RECIPE,
                "evaluation": {"benchmark": False},
            }
        }
    }
    result = run_snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "results/estimate/mine/conditions.json").read_text())
    assert doc["values"]["camera_model"] == "emccd"
    assert doc["values"]["psf_sigma_nm"] == pytest.approx(110.5, rel=0.1)
    # the default estimate fits the simulator: whole-frame blinking (the stack's) and its density
    assert doc["values"]["blinking"] == "frames" and doc["quality"]["population_rounds"]
    assert doc["values"]["density_per_um2"] == pytest.approx(truth["density"], rel=0.15)
    meta_log = (tmp_path / "results/logs/simulate/mine/density_estimated.log").read_text()
    assert "density_" in meta_log or "patches" in meta_log
    table = pd.read_csv(tmp_path / "results/estimate/mine/conditions.csv")
    assert "psf.sigma_nm" in set(table["key"])
    for name in ("photon_transfer.png", "spots.png"):
        assert (tmp_path / "results/estimate/mine" / name).stat().st_size > 10_000
    assert (tmp_path / "results/reconstruct/mine/cells/localizations.csv").is_file()
    summary = pd.read_csv(tmp_path / "results/summary.csv")
    assert list(summary["acquisition"]) == ["cells"]
    # the report shows the estimates beside the hand-typed values
    report = run_snakemake(tmp_path, config, "--report", str(tmp_path / "report.zip"))
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    with zipfile.ZipFile(tmp_path / "report.zip") as zf:
        names = zf.namelist()
    for name in ("conditions.csv", "photon_transfer.png", "spots.png"):
        assert any(n.endswith(name) for n in names), (name, names)


def test_missing_estimates_must_be_typed():
    from dstorm.config import ConfigError

    conditions = {"config": {"camera": {"quantum_efficiency": 1.0}, "psf": {"sigma_nm": [100, 110]}, "photophysics": {}, "background": {}}}
    base = {"name": "d", "camera": {}, "psf": {}, "photophysics": {}, "background": {}, "given": {}}
    with pytest.raises(ConfigError, match=r"datasets\.d: .*camera\.model, camera\.e_per_adu, camera\.baseline_adu, photophysics\.photons, background\.photons_per_px"):
        apply_estimates(base, conditions)
    base["given"] = {"camera": {"preset": "epfl2016"}, "photophysics": {"photons": {"distribution": "uniform", "low": 1000, "high": 1500}}, "background": {"photons_per_px": 10}}
    used = apply_estimates(base, conditions)
    assert used["camera"]["em_gain"] == 300.0 and used["psf"]["sigma_nm"] == [100, 110]
    # a dataset that names its camera and asks for nothing estimates nothing
    config = {"datasets": {"typed": {"camera": {"preset": "epfl2016"}, "acquisitions": {"a": {"path": "x.tif"}}}}}
    assert prepare_estimates(config) == {} and "estimate" not in config["datasets"]["typed"]


def test_thunderstorm_demo_data(shared_data):
    """ThunderSTORM's simulation (20 frames, about 6 emitters/µm², σ 106–115 nm): too crowded and too short
    to calibrate a camera, which the estimate says; the PSF width needs no calibration and is found."""
    from dstorm.estimation.run import estimate_dataset

    path = shared_data / "thunderstorm_demo1" / "ArtificialDataset_demo1.tif"
    doc, _ = estimate_dataset([str(path)], pixel_size_nm=100, max_frames=1000, given={}, seed=0)
    truth = pd.read_csv(shared_data / "thunderstorm_demo1" / "positions_demo1.csv")["sigma [nm]"].median()
    assert doc["values"]["psf_sigma_nm"] == pytest.approx(truth, rel=0.10)
    assert doc["values"]["gain_adu_per_e"] is None
    assert any("too little background" in w for w in doc["warnings"])
    assert "sigma_nm" in doc["config"]["psf"] and "e_per_adu" not in doc["config"]["camera"]


#: Frames of the population tests' stacks (the simulations use as many: the step's cost scales with them).
FRAMES = 150


@pytest.mark.parametrize(
    "model, preset, photons",
    [
        ("continuous", "scmos_typical", {"distribution": "normal", "mean": 3000, "std": 600}),
        ("frames", "epfl2016", {"distribution": "uniform", "low": 2000, "high": 2500}),
    ],
)
def test_density_photons_and_blinking_hold_with_partial_frames_and_crowding(model, preset, photons):
    """At 5/µm², continuous blinking (mean on-time 1 frame: most emitter-frames partial and dim) and whole
    frames (on for ceil(T) frames): the fit of the simulator to the data (estimation/population.py) finds
    the blinking model and its on-time, the density and the mean photons per emitter-frame within 15 %,
    where the first guess (signal ÷ median fitted photons) is biased by more."""
    ds = dataset(
        seed=8, camera={"preset": preset}, background={"photons_per_px": 20, "variation": 0.0},
        photophysics={"model": model, "mean_on_frames": 1.0, "photons": photons},
    )  # fmt: skip
    sim = Simulator(ds)
    rngs = sim.streams("acquisition", "population-test")
    drawn = sim.draw(rngs, density=5.0, n_frames=FRAMES)
    stack = np.concatenate(list(sim.frames(drawn, FRAMES, rngs["camera"])))
    density = len(drawn.events) / FRAMES / 40.96
    mean_e = float(drawn.events.photons.mean()) * ds["camera"]["quantum_efficiency"]
    est = estimate_conditions(stack, pixel_size_nm=100, population=True)
    v, q = est.values, est.diagnostics["quality"]
    assert v["density_per_um2"] == pytest.approx(density, rel=0.15)
    assert v["photons_mean"] == pytest.approx(mean_e, rel=0.15)
    if model == "continuous":  # whole frames: the first guess is already right
        assert abs(v["density_per_um2"] - density) < abs(q["density_signal_ratio_per_um2"] - density)
    assert v["blinking"] == model and 0.6 <= v["mean_on_frames"] <= 1.6
    assert est.errors["density_per_um2"] > 0
    photophysics = est.diagnostics["photophysics"]
    assert photophysics["model"] == model and photophysics["photons"]["mean"] == pytest.approx(v["full_frame_photons"], rel=1e-3)


def test_pixel_power_is_the_sum_of_a_pixelated_psf_squared():
    """Σ h² of a unit Gaussian integrated over pixels, averaged over sub-pixel positions: against a direct 2-D
    sum at 2,000 random positions (rel. SE of that mean < 0.2 %), and the wide-PSF limit 1 / (4π σ²)."""
    from scipy.special import ndtr

    from dstorm.estimation.population import pixel_power

    rng = np.random.default_rng(3)
    for sigma in (0.7, 1.1, 2.0):
        edges = np.arange(-12, 14, dtype=float)
        sums = []
        for x0, y0 in rng.random((2000, 2)):
            px = ndtr((edges[1:] - x0) / sigma) - ndtr((edges[:-1] - x0) / sigma)
            py = ndtr((edges[1:] - y0) / sigma) - ndtr((edges[:-1] - y0) / sigma)
            sums.append(float(np.sum(np.outer(py, px) ** 2)))
        assert pixel_power(sigma) == pytest.approx(np.mean(sums), rel=0.01)
    assert pixel_power(6.0) == pytest.approx(1 / (4 * np.pi * 6.0**2), rel=0.01)


def test_fluctuation_is_the_emitters_variance_without_the_cameras_noise():
    """Emitters of B = 1000 photo-electrons, each on for one frame at a uniform random position (also beyond the
    edges, so that as many photons spill in as out), 0.05 per pixel per frame, on a background of 20 with
    Poisson noise and 2 ADU per photo-electron over an offset of 100 ADU: the fluctuation is
    N · B² · Σh² (Campbell's theorem; N the emitters per frame over the field), within 4 of its standard
    errors; the same frames without emitters give 0 within 4 standard errors."""
    from scipy.special import ndtr

    from dstorm.estimation.population import fluctuation, pixel_power

    rng = np.random.default_rng(11)
    t, size, margin, sigma, b, gain, offset = 200, 48, 6, 1.1, 1000.0, 2.0, 100.0
    per_px = 0.05
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    expected = np.zeros((t, size, size))
    for f in range(t):
        n = rng.poisson(per_px * (size + 2 * margin) ** 2)
        for x0, y0 in rng.uniform(-margin, size + margin, (n, 2)):
            px = ndtr((xx[0] + 0.5 - x0) / sigma) - ndtr((xx[0] - 0.5 - x0) / sigma)
            py = ndtr((yy[:, 0] + 0.5 - y0) / sigma) - ndtr((yy[:, 0] - 0.5 - y0) / sigma)
            expected[f] += b * np.outer(py, px)
    line = {"slope": gain, "intercept": -gain * offset, "gain": gain}
    stack = gain * rng.poisson(20.0 + expected) + offset
    found = fluctuation(stack, **line)
    truth = per_px * size**2 * b**2 * pixel_power(sigma)
    assert abs(found.value - truth) < 4 * found.se and found.se < 0.1 * truth
    quiet = fluctuation(gain * rng.poisson(np.full((t, size, size), 20.0)) + offset, **line)
    assert abs(quiet.value) < 4 * quiet.se and quiet.lags <= 3


def test_fluctuation_adds_back_what_runs_of_frames_hide():
    """Each of 64 × 64 pixels switches on (value 100) and off as a Markov chain with mean runs of 10 frames on
    and 40 off, started in its stationary state (on with p = 0.2): the variance is 100² · 0.2 · 0.8 per pixel.
    Over 100 frames the variance about each pixel's own mean reads about 14 % low (consecutive frames are
    alike: 2/T · Σ ρ_k, ρ_k = 0.875^k); the fluctuation adds the autocovariances back and lands within 4 %."""
    from dstorm.estimation.population import fluctuation

    rng = np.random.default_rng(5)
    t, n = 100, 64
    on = rng.random((n, n)) < 0.2
    frames = np.empty((t, n, n))
    for f in range(t):
        frames[f] = 100.0 * on
        u = rng.random((n, n))
        on = np.where(on, u >= 0.1, u < 0.025)
    truth = n * n * 100.0**2 * 0.2 * 0.8
    naive = float(np.var(frames, axis=0, ddof=1).sum())
    found = fluctuation(frames, slope=0.0, intercept=0.0, gain=1.0)
    assert naive < 0.92 * truth
    assert found.value == pytest.approx(truth, rel=0.04) and found.lags > 5


def test_persistence_counts_spots_with_a_spot_nearby_in_the_next_frame():
    """Frame 0: spots at (5, 5) and (20, 20); frame 1: (6, 6) (1.41 px from the first: persists) and
    (30, 30); frame 2: (30, 32) (2 px: too far). Spots of frames 0 and 1: 1 of 4 persist."""
    from dstorm.estimation.population import persistence
    from dstorm.estimation.spots import Candidates

    spots = Candidates(np.array([0, 0, 1, 1, 2]), np.array([5, 20, 6, 30, 30]), np.array([5, 20, 6, 30, 32]), np.ones(5))
    p, se = persistence(spots, 3, (40, 40))
    assert p == pytest.approx(0.25) and se == pytest.approx(np.sqrt(0.25 * 0.75 / 4))


def test_track_sides_place_each_fitted_spot_in_its_run_of_frames():
    """Detections: a run at (5, 5) in frames 0–2 (frame 2's at (6, 5), 1 px away), a lone spot at (20, 20) in
    frame 1, a spot at (30, 30) in frame 3 (the stack's last). Frame 0's spot is in the first frame (−1),
    frame 1's run spot has neighbours before and after (middle, 1), frame 2's only before (end, 0), the lone
    spot neither (end, 0), frame 3's is in the last frame (−1). The ratio of medians follows by hand."""
    from dstorm.estimation.population import MIN_RUN_SPOTS, end_ratio, track_sides
    from dstorm.estimation.spots import Candidates

    spots = Candidates(np.array([0, 1, 2, 1, 3]), np.array([5, 5, 6, 20, 30]), np.array([5, 5, 5, 20, 30]), np.ones(5))
    assert track_sides(spots, spots, 4, (40, 40)).tolist() == [-1, 1, 0, 0, -1]
    fitted = spots.select(np.array([False, True, True, False, False]))
    assert track_sides(spots, fitted, 4, (40, 40)).tolist() == [1, 0]
    n = MIN_RUN_SPOTS
    photons = np.r_[np.full(n, 500.0), np.full(n, 1000.0), 3000.0]
    sides = np.r_[np.zeros(n, int), np.ones(n, int), -1]
    assert end_ratio(photons, sides) == pytest.approx(0.5)
    assert np.isnan(end_ratio(photons[1:], sides[1:]))  # one end too few


@pytest.mark.parametrize("model", ["continuous", "frames"])
def test_run_ends_are_dimmer_than_middles_only_with_partial_frames(model):
    """Mean on-time 5 frames, 2000 photons with no spread, 1/µm², EMCCD (the case where the spread of all
    fitted photons could not tell the models apart, because it depends on the unknown spread of a whole
    frame's photons): in continuous-time blinking the first and last frames of an on-time are partial, so the
    fitted spots at the ends of runs are dimmer than the middles; with whole frames they are as bright. The
    medians are of a few hundred spots each (their relative SE a few %)."""
    from dstorm.estimation.conditions import detect_spots, fit_isolated_spots
    from dstorm.estimation.population import end_ratio, track_sides

    ds = dataset(
        seed=3, camera={"preset": "epfl2016"}, background={"photons_per_px": 20, "variation": 0.0},
        photophysics={"model": model, "mean_on_frames": 5.0, "mean_off_frames": 50.0,
                      "photons": {"distribution": "normal", "mean": 2000, "std": 0}},
    )  # fmt: skip
    sim = Simulator(ds)
    rngs = sim.streams("acquisition", "run-ends")
    drawn = sim.draw(rngs, density=1.0, n_frames=FRAMES)
    frames = np.concatenate(list(sim.frames(drawn, FRAMES, rngs["camera"]))).astype(np.float64)
    det = detect_spots(frames)
    found = fit_isolated_spots(frames, det.strong, det.faint, noise_line(frames))
    sides = track_sides(det.strong, found.spots.select(found.good), FRAMES, frames.shape[1:])
    assert (sides == 0).sum() >= 100 and (sides == 1).sum() >= 100
    r = end_ratio(found.fits.amplitude[found.good], sides)
    if model == "continuous":
        assert r < 0.85
    else:
        assert r == pytest.approx(1.0, abs=0.06)
