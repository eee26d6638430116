"""Structures, blinking, photon counts, background and the density of simulated frames."""

import numpy as np
import pandas as pd
import pytest

from conftest import dataset
from dstorm.simulation.emitters import (
    FilamentStructure,
    TableStructure,
    UniformStructure,
    background_field,
    sample_events,
    sample_photons,
)
from dstorm.simulation.psf import IntegratedGaussianPSF
from dstorm.simulation.simulate import Simulator

PSF = IntegratedGaussianPSF(sigma_nm=(106, 115), pixel_size_nm=100)
PHOTONS = {"distribution": "uniform", "low": 2000, "high": 2500, "mean": 2250, "std": 250}


def batch_mean_se(values, batches=25):
    """Mean and its standard error from batch means (robust to the frame-to-frame correlation of blinking)."""
    parts = np.array_split(np.asarray(values, dtype=np.float64), batches)
    means = np.array([p.mean() for p in parts])
    return means.mean(), means.std(ddof=1) / np.sqrt(batches)


def events(rng, n_frames, density, tau, fov=(6400.0, 6400.0), structure=None):
    return sample_events(
        rng,
        n_frames=n_frames,
        density_per_um2=density,
        fov_nm=fov,
        mean_on_frames=tau,
        structure=structure or UniformStructure(fov),
        psf=PSF,
        photons=PHOTONS,
    )


@pytest.mark.parametrize("density,tau", [(0.5, 0.2), (3.0, 1.0), (6.0, 4.0)])
def test_mean_density_per_frame_matches_the_target(density, tau):
    n_frames, area = 2500, 6.4 * 6.4
    ev = events(np.random.default_rng(10), n_frames, density, tau)
    per_frame = np.bincount(ev.frame, minlength=n_frames) / area
    mean, se = batch_mean_se(per_frame)
    assert abs(mean - density) < 5 * se, (mean, density, se)
    # the first frames are as dense as the rest (the process starts before frame 0)
    head, _ = batch_mean_se(np.bincount(ev.frame, minlength=n_frames)[:250] / area, batches=10)
    assert abs(head - density) < 5 * np.sqrt(density / area / 250) * np.sqrt(2 * tau + 1)


def test_measured_density_of_simulated_frames_matches_the_config():
    ds = dataset(structure={"type": "filaments"})
    sim = Simulator(ds)
    draw = sim.draw(sim.streams("density"), density=5.0, n_frames=1500)
    area = sim.fov_nm[0] * sim.fov_nm[1] / 1e6
    counts = draw.ground_truth.groupby("frame").size().reindex(range(1, 1501), fill_value=0)
    mean, se = batch_mean_se(counts.to_numpy() / area)
    assert abs(mean - 5.0) < 5 * se
    assert draw.ground_truth["frame"].between(1, 1500).all()


def test_on_times_are_exponential_discretised_to_whole_frames():
    tau, n_frames = 3.0, 4000
    ev = events(np.random.default_rng(11), n_frames, 2.0, tau)
    first = pd.Series(ev.frame).groupby(ev.emitter).agg(["min", "max", "size"])
    # frames of one emitter are consecutive
    assert (first["max"] - first["min"] + 1 == first["size"]).all()
    interior = first[(first["min"] > 0) & (first["max"] < n_frames - 1)]["size"].to_numpy()
    p = -np.expm1(-1 / tau)
    expected_mean, expected_var = 1 / p, (1 - p) / p**2  # geometric K = ceil(T), T ~ Exp(tau)
    assert abs(interior.mean() - expected_mean) < 5 * np.sqrt(expected_var / len(interior))
    assert (interior > 1).mean() == pytest.approx(1 - p, abs=5 * np.sqrt(p * (1 - p) / len(interior)))


def test_photon_distributions_have_the_configured_moments():
    rng = np.random.default_rng(12)
    n = 200_000
    uni = sample_photons(rng, PHOTONS, n)
    assert uni.min() >= 2000 and uni.max() <= 2500
    assert abs(uni.mean() - 2250) < 5 * (500 / np.sqrt(12)) / np.sqrt(n)
    for kind in ("normal", "lognormal"):
        x = sample_photons(rng, {"distribution": kind, "mean": 1500.0, "std": 300.0}, n)
        assert abs(x.mean() - 1500) < 5 * 300 / np.sqrt(n), kind
        assert x.std() == pytest.approx(300, rel=0.02), kind
        assert x.min() >= 1


def test_filaments_are_smooth_curves_inside_the_field():
    fov = (6400.0, 6400.0)
    fil = FilamentStructure(
        np.random.default_rng(13), fov_nm=fov, n_filaments=5, length_nm=8000, persistence_length_nm=4000, width_nm=0
    )
    xy = fil.sample(np.random.default_rng(14), 10_000)
    assert np.all((xy >= 0) & (xy < 6400))
    # emitters sit on the curves: every sample is one of the curve's vertices (width 0)
    assert np.isin(xy[:, 0], fil.points[:, 0]).all()
    # curves are smooth: consecutive 10 nm steps turn by ~sqrt(10/4000) rad, so their length is ~step
    steps = np.linalg.norm(np.diff(fil.points, axis=0), axis=1)
    assert np.median(steps) == pytest.approx(10.0, rel=1e-6)


def test_table_structure_samples_only_table_positions_inside_the_field():
    table = np.array([[100.0, 200.0], [6300.0, 10.0], [7000.0, 50.0], [-5.0, 30.0]])
    st = TableStructure(table, (6400.0, 6400.0))
    xy = st.sample(np.random.default_rng(15), 1000)
    assert set(map(tuple, xy)) == {(100.0, 200.0), (6300.0, 10.0)}
    with pytest.raises(ValueError, match="no position lies inside"):
        TableStructure(table[2:], (6400.0, 6400.0), source="gt.csv")


def test_background_field_mean_and_range():
    rng = np.random.default_rng(16)
    flat = background_field(rng, (32, 32), photons_per_px=20, variation=0, length_scale_px=10)
    assert np.all(flat == 20)
    field = background_field(rng, (64, 64), photons_per_px=20, variation=0.3, length_scale_px=10)
    assert field.mean() == pytest.approx(20, rel=1e-12)
    assert field.min() >= 20 * 0.7 - 1e-9 and field.max() <= 20 * 1.3 + 1e-9
    assert field.max() - field.min() > 20 * 0.3  # it does vary
    # slowly: neighbouring pixels differ far less than the full range
    assert np.abs(np.diff(field, axis=1)).mean() < 0.1 * (field.max() - field.min())
