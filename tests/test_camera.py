"""Camera output mean and variance against the noise model's theory, within 5 standard errors."""

import numpy as np
import pytest
import tifffile

from dstorm.config import resolve_camera
from dstorm.simulation.camera import EMCCD, SCMOS, camera_from_config


def moments(samples):
    """Sample mean and variance with their standard errors (the variance's from the 4th moment)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    mean, var = x.mean(), x.var(ddof=1)
    m4 = np.mean((x - mean) ** 4)
    return mean, var, np.sqrt(var / n), np.sqrt(max(m4 - var**2, 0) / n)


def assert_moments(samples, theory_mean, theory_var, tol_se=5.0):
    mean, var, se_mean, se_var = moments(samples)
    assert abs(mean - theory_mean) < tol_se * se_mean, (mean, theory_mean, se_mean)
    assert abs(var - theory_var) < tol_se * se_var, (var, theory_var, se_var)


def test_ideal_camera_counts_photons_poisson():
    cam = camera_from_config(resolve_camera({"preset": "ideal"}), (8, 8))
    out = cam(np.full((4000, 8, 8), 37.5), np.random.default_rng(0))
    assert out.dtype == np.uint16
    assert_moments(out, 37.5, 37.5)


@pytest.mark.parametrize("photons", [0.0, 3.0, 40.0])
def test_emccd_epfl2016_mean_and_variance_match_theory(photons):
    cam = camera_from_config(resolve_camera({"preset": "epfl2016"}), (8, 8))
    assert isinstance(cam, EMCCD)
    out = cam(np.full((4000, 8, 8), photons), np.random.default_rng(1))
    mean, var = cam.theory_mean_variance(photons)
    assert_moments(out, mean, var)


def test_emccd_excess_noise_factor_is_two():
    # Without read noise the ADU variance is F²·G²·μ/k² + 1/12 with F² = 2 for the EM register.
    cam = EMCCD(quantum_efficiency=1.0, read_noise_e=0.0, spurious_charge_e=0.0, em_gain=200.0, e_per_adu=10.0, baseline_adu=100.0)
    mu = 20.0
    out = cam(np.full(300_000, mu), np.random.default_rng(2)).astype(np.float64)
    _, var, _, se_var = moments(out)
    f2 = (var - 1 / 12) * cam.e_per_adu**2 / (cam.em_gain**2 * mu)
    se_f2 = se_var * cam.e_per_adu**2 / (cam.em_gain**2 * mu)
    assert abs(f2 - 2.0) < 5 * se_f2, (f2, se_f2)
    # with the EM register off (gain 1) the factor is 1: plain Poisson
    ccd = EMCCD(quantum_efficiency=1.0, read_noise_e=0.0, spurious_charge_e=0.0, em_gain=1.0, e_per_adu=1.0, baseline_adu=0.0)
    assert_moments(ccd(np.full(100_000, mu), np.random.default_rng(3)), mu, mu)


def test_scmos_per_pixel_maps(tmp_path):
    rng = np.random.default_rng(4)
    noise_map = rng.uniform(1.0, 6.0, (6, 7))
    offset_map = rng.uniform(90, 110, (6, 7))
    tifffile.imwrite(tmp_path / "rn.tif", noise_map.astype(np.float32))
    tifffile.imwrite(tmp_path / "off.tif", offset_map.astype(np.float32))
    cfg = resolve_camera(
        {"model": "scmos", "quantum_efficiency": 0.8, "e_per_adu": 0.5, "read_noise_map": str(tmp_path / "rn.tif"), "offset_map": str(tmp_path / "off.tif")}
    )
    cam = camera_from_config(cfg, (6, 7))
    assert isinstance(cam, SCMOS)
    photons = 25.0
    out = cam(np.full((20_000, 6, 7), photons), rng)
    mean_theory, var_theory = cam.theory_mean_variance(photons)
    for r, c in [(0, 0), (2, 5), (5, 6)]:
        assert_moments(out[:, r, c], mean_theory[r, c], var_theory[r, c])


def test_scmos_map_of_wrong_shape_is_rejected_naming_the_key(tmp_path):
    tifffile.imwrite(tmp_path / "rn.tif", np.ones((5, 5), np.float32))
    cfg = resolve_camera({"model": "scmos", "read_noise_map": str(tmp_path / "rn.tif")})
    with pytest.raises(ValueError, match=r"camera.read_noise_map: .*rn.tif has shape \(5, 5\)"):
        camera_from_config(cfg, (6, 7))


def test_output_is_clipped_to_the_bit_depth():
    cam = SCMOS(quantum_efficiency=1.0, read_noise_e=0.0, e_per_adu=1.0, baseline_adu=0.0, bit_depth=8)
    out = cam(np.array([1e6, 0.0]), np.random.default_rng(5))
    assert out.tolist() == [255, 0]


def test_presets_fill_and_user_keys_override():
    cam = resolve_camera({"preset": "epfl2016", "em_gain": 100})
    assert cam["em_gain"] == 100 and cam["e_per_adu"] == 45.0 and cam["model"] == "emccd"
    scmos = resolve_camera({"model": "scmos", "read_noise_e": 1.6})
    assert scmos["quantum_efficiency"] == 1.0 and scmos["read_noise_e"] == 1.6
