"""Every random draw flows from the dataset's seed: same seed, same bytes; another seed, other bytes."""

import hashlib

from conftest import dataset
from dstorm.simulation.simulate import simulate_acquisition, simulate_training_set


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run(folder, seed):
    folder.mkdir()
    ds = dataset(seed=seed, structure={"type": "filaments"}, background={"variation": 0.3})
    simulate_training_set(
        ds, density=6, frames_path=folder / "frames.tif", ground_truth_path=folder / "gt.csv", patches_path=folder / "patches.npz"
    )
    simulate_acquisition(ds, "acq", density=2, n_frames=70, frames_path=folder / "a.tif", ground_truth_path=folder / "a.csv")
    return digests(folder)


def test_same_seed_gives_identical_files_and_another_seed_different_ones(tmp_path):
    first, again, other = run(tmp_path / "1", 7), run(tmp_path / "2", 7), run(tmp_path / "3", 8)
    assert first == again
    assert set(first) == {"frames.tif", "gt.csv", "patches.npz", "a.tif", "a.csv"}
    assert all(first[name] != other[name] for name in first)


def test_outputs_of_one_dataset_have_independent_streams(tmp_path):
    # two acquisitions with identical settings but different names are different draws
    ds = dataset()
    for name in ("x", "y"):
        simulate_acquisition(ds, name, density=2, n_frames=3, frames_path=tmp_path / f"{name}.tif", ground_truth_path=tmp_path / f"{name}.csv")
    d = digests(tmp_path)
    assert d["x.tif"] != d["y.tif"] and d["x.csv"] != d["y.csv"]
