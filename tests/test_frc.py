"""Fourier ring correlation: curves of constructed pairs, the 1/7 crossing, and the time-block split."""

import math

import numpy as np
import pytest

from dstorm.evaluation.frc import FRC_THRESHOLD, frc_curve, frc_resolution, localization_frc, time_block_halves

N, PIXEL = 256, 10.0  # a 2.56 µm field of 10 nm pixels: ring k is q = k / 2560 nm


def band_limited(rng, ring_cutoff):
    """White noise with every Fourier component beyond ring ``ring_cutoff`` removed: structure down to
    a period of N·pixel / ring_cutoff and none finer."""
    k = np.fft.fftfreq(N) * N
    ring = np.hypot(*np.meshgrid(k, k, indexing="ij"))
    return np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(N, N))) * (ring <= ring_cutoff)))


def test_identical_halves_correlate_perfectly_at_every_ring():
    rng = np.random.default_rng(0)
    image = rng.poisson(3.0, size=(N, N)).astype(float)
    q, frc = frc_curve(image, image, PIXEL)
    assert len(q) == N // 2 and q[1] == pytest.approx(1 / (N * PIXEL))
    assert np.allclose(frc, 1.0)


def test_independent_noise_does_not_correlate():
    rng = np.random.default_rng(1)
    q, frc = frc_curve(rng.normal(size=(N, N)), rng.normal(size=(N, N)), PIXEL, window=False)
    # ring k holds n ≈ 2πk pixels; for independent noise the ring sum is a zero-mean Gaussian with a standard
    # deviation of 1/sqrt(n) of the normalisation, so |FRC|·sqrt(2πk) has mean sqrt(2/π) (half-normal, standard
    # deviation 0.60); averaged over 108 rings the mean is known to ±0.058 (1 σ): allow 3 σ
    rings = np.arange(20, N // 2)
    assert np.mean(frc[rings] * np.sqrt(2 * np.pi * rings)) == pytest.approx(math.sqrt(2 / math.pi), abs=3 * 0.6 / math.sqrt(len(rings)))


@pytest.mark.parametrize("ring_cutoff", [16, 32, 64])
def test_noisy_halves_of_a_band_limited_pattern_resolve_the_pattern_scale(ring_cutoff):
    rng = np.random.default_rng(ring_cutoff)
    pattern = band_limited(rng, ring_cutoff)
    noise = 0.3 * pattern.std()  # signal/noise per component: far above 1/7 inside the band, zero outside
    a = pattern + noise * rng.normal(size=(N, N))
    b = pattern + noise * rng.normal(size=(N, N))
    q, frc = frc_curve(a, b, PIXEL, window=False)  # periodic pattern: no border to taper
    scale = N * PIXEL / ring_cutoff  # the finest period in the pattern, nm
    assert np.all(frc[1 : ring_cutoff - 1] > 0.8)
    # unsmoothed, the curve crosses 1/7 between the cutoff ring and the next but one
    resolution, _ = frc_resolution(q, frc, smooth_rings=1)
    assert N * PIXEL / (ring_cutoff + 2) <= resolution <= scale
    # smoothed over 3 rings the step moves by at most 2 rings
    resolution, _ = frc_resolution(q, frc, smooth_rings=3)
    assert N * PIXEL / (ring_cutoff + 3) <= resolution <= scale


def test_crossing_is_interpolated_between_rings():
    q = np.arange(10) / 1000.0
    frc = np.array([1.0, 0.9, 0.6, 0.3, 0.2, 0.1, 0.05, 0.0, 0.0, 0.0])
    # 0.2 at q = 0.004, 0.1 at 0.005: 1/7 is reached at 0.004 + (0.2 - 1/7) / 0.1 * 0.001
    q_cross = 0.004 + (0.2 - FRC_THRESHOLD) / 0.1 * 0.001
    assert frc_resolution(q, frc, smooth_rings=1)[0] == pytest.approx(1 / q_cross)
    # never below the threshold: the rendering limits the resolution, not the data
    assert math.isnan(frc_resolution(q, np.full(10, 0.5), smooth_rings=1)[0])


def test_time_blocks_go_whole_into_one_half():
    frames = np.repeat(np.arange(1, 1001), 3)
    rng = np.random.default_rng(5)
    half = time_block_halves(frames, 50, rng)
    blocks = (frames - 1) // 20  # 1000 frames in 50 blocks of 20
    for b in range(50):
        assert len(set(half[blocks == b])) == 1
    assert half.sum() == len(frames) // 2  # 25 blocks of 60 localisations each
    again = time_block_halves(frames, 50, np.random.default_rng(5))
    assert np.array_equal(half, again)
    assert 0 < time_block_halves(np.arange(1, 4), 50, rng).sum() < 3  # fewer frames than blocks: still two halves


def lines(rng, sigma_nm, n=200_000):
    """Localisations along 20 horizontal lines 120 nm apart, each with Gaussian error ``sigma_nm``."""
    x = 200 + rng.uniform(0, 2400, n)
    y = 100 + rng.integers(0, 20, n) * 120.0
    frames = rng.integers(1, 1001, n)
    return frames, x + rng.normal(0, sigma_nm, n), y + rng.normal(0, sigma_nm, n)


def test_more_precise_localisations_give_a_finer_frc_resolution():
    results = {}
    for sigma in (10, 25, 50):
        frames, x, y = lines(np.random.default_rng(sigma), sigma)
        r = localization_frc(frames, x, y, fov_nm=(2560, 2560), pixel_size_nm=5, n_blocks=50, rng=np.random.default_rng(0))
        results[sigma] = r.resolution_nm
    assert results[10] < results[25] < results[50]
