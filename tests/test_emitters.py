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


# ------------------------------------------------------------------ continuous-time blinking (model: continuous)

CONSTANT = {"distribution": "uniform", "low": 1000.0, "high": 1000.0, "mean": 1000.0, "std": 0.0}


def continuous(rng, n_frames, density, t_on, t_off, blinks, photons=CONSTANT, fov=(6400.0, 6400.0)):
    from dstorm.simulation.emitters import sample_events_continuous

    return sample_events_continuous(
        rng, n_frames=n_frames, density_per_um2=density, fov_nm=fov, mean_on_frames=t_on, mean_off_frames=t_off,
        mean_blinks=blinks, structure=UniformStructure(fov), psf=PSF, photons=photons,
    )  # fmt: skip


def test_dwell_times_and_blinks_follow_their_exponential_and_geometric_laws():
    from dstorm.simulation.emitters import blink_periods

    rng = np.random.default_rng(4)
    t_on, t_off, n_b, n_mol = 0.7, 6.0, 3.5, 20000
    mol, begin, end = blink_periods(rng, rng.uniform(0, 1000, n_mol), t_on, t_off, n_b)
    on = end - begin
    same = mol[1:] == mol[:-1]
    off = begin[1:][same] - end[:-1][same]
    blinks = np.bincount(mol, minlength=n_mol)
    # exponential: mean τ, standard deviation τ; SE of the mean τ/√N
    assert abs(on.mean() - t_on) < 4 * t_on / np.sqrt(len(on))
    # SE of the sample std of an exponential: τ √((kurtosis − 1) / 4) / √N = τ √2 / √N
    assert abs(on.std() - t_on) < 4 * np.sqrt(2) * t_on / np.sqrt(len(on))
    assert abs(off.mean() - t_off) < 4 * t_off / np.sqrt(len(off))
    p = 1 / n_b  # geometric on {1, 2, ...}: mean 1/p, variance (1 - p)/p²
    assert blinks.min() == 1 and abs(blinks.mean() - n_b) < 4 * np.sqrt((1 - p) / p**2 / n_mol)
    assert (np.diff(begin)[same] > 0).all()  # a molecule's blinks come one after another


@pytest.mark.parametrize("t_on,t_off,blinks", [(1.0, 10.0, 1.0), (0.3, 5.0, 4.0), (3.0, 2.0, 3.0)])
def test_continuous_blinking_holds_the_density(t_on, t_off, blinks):
    n_frames, area, density = 2000, 6.4 * 6.4, 1.5
    ev = continuous(np.random.default_rng(7), n_frames, density, t_on, t_off, blinks)
    # molecules are independent: the SE of the total count comes from each molecule's frame count
    per_molecule = np.bincount(ev.emitter)
    se = np.sqrt((per_molecule.astype(float) ** 2).sum()) / n_frames / area
    assert abs(len(ev) / n_frames / area - density) < 4 * se, (len(ev) / n_frames / area, se)
    head = np.bincount(ev.frame, minlength=n_frames)[:100].mean() / area  # no ramp-up at the start
    assert abs(head - density) < 0.15 * density


@pytest.mark.parametrize("t_on", [0.5, 1.0, 3.0])
def test_partial_frames_have_the_analytic_photon_distribution(t_on):
    """One blink of Exponential(τ) at a random phase: its emitter-frames hold on average the fraction
    τ / (1 + τ) of a whole frame's photons, and a fraction τ e^(−1/τ) / (1 + τ) of them are whole frames."""
    from dstorm.simulation.emitters import frames_touched_per_molecule

    assert frames_touched_per_molecule(t_on, 10.0, 1.0) == pytest.approx(1 + t_on)
    ev = continuous(np.random.default_rng(11), 3000, 1.0, t_on, 10.0, 1.0)
    fraction = ev.photons / 1000.0
    assert fraction.max() <= 1 + 1e-12 and fraction.min() > 0
    n_mol = len(np.unique(ev.emitter))  # conservative: emitter-frames of one molecule are correlated
    mean_expected = t_on / (1 + t_on)
    assert abs(fraction.mean() - mean_expected) < 4 * fraction.std() / np.sqrt(n_mol)
    whole = t_on * np.exp(-1 / t_on) / (1 + t_on)
    assert abs((fraction > 1 - 1e-9).mean() - whole) < 4 * np.sqrt(whole * (1 - whole) / n_mol)
    # with a photon distribution, photons are the fraction times an independent draw: their mean multiplies
    ev = continuous(np.random.default_rng(12), 3000, 1.0, t_on, 10.0, 1.0, photons=PHOTONS)
    assert abs(ev.photons.mean() - 2250 * mean_expected) < 4 * ev.photons.std() / np.sqrt(len(np.unique(ev.emitter)))


def test_repeated_blinks_return_to_the_same_position_and_draws_are_reproducible():
    a = continuous(np.random.default_rng(5), 400, 2.0, 0.5, 3.0, 5.0)
    b = continuous(np.random.default_rng(5), 400, 2.0, 0.5, 3.0, 5.0)
    c = continuous(np.random.default_rng(6), 400, 2.0, 0.5, 3.0, 5.0)
    for key in ("frame", "emitter", "x_nm", "y_nm", "photons", "sigma_nm"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert len(a) != len(c) or not np.array_equal(a.x_nm, c.x_nm)
    table = pd.DataFrame({"e": a.emitter, "f": a.frame, "x": a.x_nm, "y": a.y_nm, "s": a.sigma_nm})
    per = table.groupby("e")
    assert (per["x"].nunique() == 1).all() and (per["y"].nunique() == 1).all() and (per["s"].nunique() == 1).all()
    gaps = per["f"].apply(lambda f: int(np.diff(np.sort(f.to_numpy())).max(initial=1)))
    assert (gaps > 1).any()  # some molecules come back after dark frames
    assert not table.duplicated(["e", "f"]).any()  # two blinks within one frame are one emitter-frame


def test_the_simulator_uses_continuous_blinking_when_configured():
    ds = dataset(photophysics={"model": "continuous", "mean_on_frames": 1.0, "mean_blinks": 2.0})
    sim = Simulator(ds)
    draw = sim.draw(sim.streams("continuous"), density=2.0, n_frames=300)
    gt = draw.ground_truth
    full = ds["photophysics"]["photons"]
    assert (gt["intensity [photon]"] < full["low"] - 1).mean() > 0.5  # most emitter-frames are partial
    density = len(gt) / 300 / (sim.fov_nm[0] * sim.fov_nm[1] / 1e6)
    assert density == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("model", ["frames", "continuous"])
def test_a_training_set_over_a_density_range_holds_each_level_in_its_frames(model):
    """training_set.density_range [0.5, 2] at 2/µm²: five levels 1 … 4/µm², frame f holding level f mod 5;
    each level's mean emitters per frame within 4 standard errors of level × area."""
    from dstorm.simulation.simulate import DENSITY_LEVELS, training_densities

    levels = training_densities(2.0, {"density_range": [0.5, 2.0]})
    assert len(levels) == DENSITY_LEVELS and levels[0] == pytest.approx(1.0) and levels[-1] == pytest.approx(4.0)
    assert training_densities(2.0, {"density_range": [1, 1]}) == 2.0
    sim = Simulator(dataset(photophysics={"model": model, "mean_on_frames": 1.0}))
    n = 400
    drawn = sim.draw(sim.streams("range-test"), density=levels, n_frames=n)
    assert np.all(np.diff(drawn.events.frame) >= 0)
    counts = np.bincount(drawn.events.frame, minlength=n)
    area = 40.96
    for k, d in enumerate(levels):
        c = counts[k::DENSITY_LEVELS]
        assert abs(c.mean() - d * area) < 4 * c.std(ddof=1) / np.sqrt(len(c)) + 0.5, (k, d, c.mean())
    # one level is the plain stack, draw for draw
    one = sim.draw(sim.streams("range-test"), density=[2.0], n_frames=50)
    plain = sim.draw(sim.streams("range-test"), density=2.0, n_frames=50)
    assert one.ground_truth.equals(plain.ground_truth)
