import numpy as np
import pytest
from scipy.special import erf

from conftest import dataset
from dstorm.simulation.psf import IntegratedGaussianPSF
from dstorm.simulation.simulate import Simulator


def brute_force(n_frames, shape, frame, x, y, photons, sigma, cutoff):
    """Pixel by pixel, straight from the formula in shared/reference/deep-storm.md."""
    out = np.zeros((n_frames, *shape))
    for f, xe, ye, n, s in zip(frame, x, y, photons, sigma):
        k = int(np.ceil(cutoff * s))
        for r in range(int(np.floor(ye)) - k, int(np.floor(ye)) + k + 1):
            for c in range(int(np.floor(xe)) - k, int(np.floor(xe)) + k + 1):
                if 0 <= r < shape[0] and 0 <= c < shape[1]:
                    ex = erf((c + 1 - xe) / (np.sqrt(2) * s)) - erf((c - xe) / (np.sqrt(2) * s))
                    ey = erf((r + 1 - ye) / (np.sqrt(2) * s)) - erf((r - ye) / (np.sqrt(2) * s))
                    out[f, r, c] += n / 4 * ex * ey
    return out


def test_render_matches_the_integrated_gaussian_formula_including_borders():
    rng = np.random.default_rng(0)
    n = 300
    x, y = rng.uniform(-7, 40, n), rng.uniform(-7, 30, n)  # some outside, some straddling the border
    frame, photons, sigma = rng.integers(0, 4, n), rng.uniform(500, 3000, n), rng.uniform(0.7, 1.6, n)
    psf = IntegratedGaussianPSF(sigma_nm=(70, 160), pixel_size_nm=100, cutoff_sigma=4)
    got = psf.render(4, (24, 33), frame, x, y, photons, sigma)
    np.testing.assert_allclose(got, brute_force(4, (24, 33), frame, x, y, photons, sigma, 4), rtol=1e-12, atol=1e-9)


def test_noiseless_frame_photon_sum_equals_photons_inside_the_cutoff():
    ds = dataset(background={"photons_per_px": 0}, structure={"type": "uniform"})
    sim = Simulator(ds)
    draw = sim.draw(sim.streams("test"), density=4, n_frames=10)
    image = sim.expected_photons(draw, 0, 10)
    ev = draw.events
    px = sim.pixel_size_nm
    x, y, s = ev.x_nm / px, ev.y_nm / px, ev.sigma_nm / px
    k = np.ceil(sim.psf.cutoff_sigma * s)
    h, w = sim.shape

    def inside(pos, size):  # fraction in the window clipped to the frame, from the Gaussian CDF
        lo = np.maximum(np.floor(pos) - k, 0)
        hi = np.minimum(np.floor(pos) + k + 1, size)
        return 0.5 * (erf((hi - pos) / (np.sqrt(2) * s)) - erf((lo - pos) / (np.sqrt(2) * s)))

    expected = np.bincount(ev.frame, weights=ev.photons * inside(x, w) * inside(y, h), minlength=10)
    np.testing.assert_allclose(image.sum(axis=(1, 2)), expected, rtol=1e-10)
    # and the cut-off keeps (almost) all photons of emitters away from the border
    interior = (x > 6) & (x < w - 6) & (y > 6) & (y < h - 6)
    assert np.all(inside(x, w)[interior] * inside(y, h)[interior] > 0.9998)


def test_centre_of_mass_of_a_rendered_emitter_is_its_position_with_pixel_centres_at_half_integers():
    psf = IntegratedGaussianPSF(sigma_nm=(110, 110), pixel_size_nm=100)
    for x, y in [(10.0, 10.0), (10.37, 20.81), (31.5, 5.02)]:
        img = psf.render(1, (40, 40), [0], np.array([x]), np.array([y]), np.array([1000.0]), np.array([1.1]))[0]
        centres = np.arange(40) + 0.5
        assert (img.sum(axis=0) * centres).sum() / img.sum() == pytest.approx(x, abs=2e-3)
        assert (img.sum(axis=1) * centres).sum() / img.sum() == pytest.approx(y, abs=2e-3)


def test_sigma_is_drawn_from_the_configured_range():
    psf = IntegratedGaussianPSF(sigma_nm=(106, 115), pixel_size_nm=100)
    s = psf.sample_sigma_nm(np.random.default_rng(1), 100_000)
    assert s.min() >= 106 and s.max() <= 115
    # uniform: mean (a+b)/2, sd (b-a)/sqrt(12); 5 standard errors
    assert abs(s.mean() - 110.5) < 5 * (9 / np.sqrt(12)) / np.sqrt(len(s))
