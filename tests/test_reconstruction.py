"""Reconstruction: exact coordinates, the TIFF layouts microscopes write, bad input, streaming, outputs."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from conftest import validated, tiny_config
from dstorm.config import model_density
from dstorm.coordinates import heatmap
from dstorm.localization import find_peaks
from dstorm.model.modelfile import save_model
from dstorm.model.network import DeepSTORMNet
from dstorm.loctable import HEADER
from dstorm.reconstruction import outputs_in, reconstruct
from dstorm.simulation.psf import IntegratedGaussianPSF
from dstorm.stack import StackError, TiffStack

outputs = outputs_in


def emitters_on_a_jittered_grid(rng, side_px, spacing_px=4.0):
    """Sub-pixel positions (camera px) far enough apart that their peaks never merge."""
    centres = np.arange(spacing_px, side_px - spacing_px + 1e-9, spacing_px)
    xx, yy = np.meshgrid(centres, centres)
    return np.column_stack([xx.ravel(), yy.ravel()]) + rng.uniform(-1.2, 1.2, (xx.size, 2))


def localise(prediction, u, pixel_nm, neighbourhood):
    peaks = find_peaks(torch.as_tensor(prediction[None], dtype=torch.float32), upsampling_factor=u, threshold=1.0, neighbourhood=neighbourhood)
    return np.column_stack([peaks.x_px.numpy(), peaks.y_px.numpy()]) * pixel_nm


def paired_errors(found_nm, truth_nm):
    d = np.linalg.norm(found_nm[:, None, :] - truth_nm[None, :, :], axis=2)
    match = d.argmin(axis=0)  # the localisation nearest to each true emitter
    assert len(found_nm) == len(truth_nm) and len(set(match)) == len(truth_nm)
    return found_nm[match] - truth_nm


@pytest.mark.parametrize("neighbourhood,bound_nm", [(5, 2.0), (3, 3.2)])
def test_perfect_subpixel_prediction_gives_the_truth_without_bias(neighbourhood, bound_nm):
    """A perfect prediction: a Gaussian of σ = 1 high-res pixel at each emitter's exact sub-pixel position."""
    u, pixel_nm, side = 8, 100.0, 40
    truth_px = emitters_on_a_jittered_grid(np.random.default_rng(0), side)
    hr_psf = IntegratedGaussianPSF(sigma_nm=(1.0, 1.0), pixel_size_nm=1.0)  # in high-resolution pixels
    n = len(truth_px)
    prediction = 100.0 * hr_psf.render(1, (side * u, side * u), np.zeros(n, int), truth_px[:, 0] * u, truth_px[:, 1] * u, np.ones(n), np.ones(n))[0]
    err = paired_errors(localise(prediction, u, pixel_nm, neighbourhood), truth_px * pixel_nm)
    assert np.abs(err).max() < bound_nm
    se = err.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(err.mean(axis=0)) < 5 * se + 1e-3), (err.mean(axis=0), se)


def test_training_targets_through_the_localiser_are_exact_to_the_high_res_pixel():
    """The reference's targets put each emitter on its high-resolution pixel: the localiser returns that
    pixel's centre, so errors are the quantisation (at most half a pixel, 6.25 nm at U = 8), unbiased."""
    u, pixel_nm, side = 8, 100.0, 40
    truth_px = emitters_on_a_jittered_grid(np.random.default_rng(1), side)
    target = heatmap(truth_px, (side, side), upsampling_factor=u, weighting_factor=100.0)
    err = paired_errors(localise(target, u, pixel_nm, 3), truth_px * pixel_nm)
    assert np.abs(err).max() <= pixel_nm / u / 2 + 1e-6
    se = (pixel_nm / u) / np.sqrt(12) / np.sqrt(len(err))  # uniform quantisation error
    assert np.all(np.abs(err.mean(axis=0)) < 5 * se)


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.manual_seed(0)
    save_model(path, DeepSTORMNet(), "deepstorm", upsampling_factor=4, normalization={"mean": 0.2, "std": 0.2},
               weighting_factor=100.0, pixel_size_nm=100.0, calibration={"threshold": 0.001})  # fmt: skip
    return path


def write_tif(path, data, **kwargs):
    kwargs.setdefault("photometric", "minisblack")  # else tifffile stores (3, H, W) uint8 as planar RGB
    tifffile.imwrite(path, data, **kwargs)
    return path


@pytest.mark.parametrize(
    "name,data,kwargs,frames",
    [
        ("uint8", np.random.default_rng(0).integers(0, 255, (3, 16, 24), dtype=np.uint8), {}, 3),
        ("uint16", np.random.default_rng(1).integers(0, 60000, (5, 16, 24), dtype=np.uint16), {"imagej": True, "metadata": {"axes": "TYX"}}, 5),
        ("uint32", np.random.default_rng(2).integers(0, 2**20, (2, 16, 24)).astype(np.uint32), {}, 2),
        ("float32", np.random.default_rng(3).normal(100, 5, (4, 16, 24)).astype(np.float32), {}, 4),
        ("single_frame", np.random.default_rng(4).integers(0, 999, (16, 24), dtype=np.uint16), {}, 1),
        ("hyperstack", np.random.default_rng(5).integers(0, 999, (3, 2, 16, 24), dtype=np.uint16), {"imagej": True, "metadata": {"axes": "TZYX"}}, 6),
        ("ome", np.random.default_rng(6).integers(0, 999, (4, 16, 24), dtype=np.uint16), {"ome": True, "metadata": {"axes": "TYX"}}, 4),
    ],
)  # fmt: skip
def test_stack_layouts_are_read_frame_by_frame(tmp_path, name, data, kwargs, frames):
    path = write_tif(tmp_path / f"{name}.tif", data, **kwargs)
    with TiffStack(path) as stack:
        assert (stack.n_frames, stack.height, stack.width) == (frames, 16, 24)
        got = np.concatenate([f for _, f in stack.batches(2)])
    np.testing.assert_array_equal(got, data.reshape(frames, 16, 24).astype(np.float32))


def test_pixel_size_is_read_from_metadata_and_a_mismatch_is_a_warning(tmp_path, caplog):
    data = np.zeros((2, 16, 16), np.uint16)
    imagej = write_tif(tmp_path / "ij.tif", data, imagej=True, resolution=(1 / 0.16, 1 / 0.16), metadata={"unit": "um", "axes": "TYX"})
    ome = write_tif(tmp_path / "ome.tif", data, ome=True, metadata={"axes": "TYX", "PhysicalSizeX": 0.108, "PhysicalSizeXUnit": "µm"})
    plain = write_tif(tmp_path / "plain.tif", data)
    with TiffStack(imagej) as a, TiffStack(ome) as b, TiffStack(plain) as c:
        assert a.pixel_size_nm == pytest.approx(160) and b.pixel_size_nm == pytest.approx(108) and c.pixel_size_nm is None
        with caplog.at_level(logging.WARNING):
            a.check_pixel_size(100.0)
            c.check_pixel_size(100.0)
    assert [r.getMessage() for r in caplog.records] == [
        f"{imagej}: the TIFF's metadata says 160 nm pixels but the config says 100 nm; using the config's"
    ]


def bad_inputs(tmp_path):
    good = np.random.default_rng(0).integers(0, 999, (6, 32, 32), dtype=np.uint16)
    write_tif(tmp_path / "good.tif", good)
    blob = (tmp_path / "good.tif").read_bytes()
    (tmp_path / "truncated.tif").write_bytes(blob[: len(blob) // 2])
    write_tif(tmp_path / "imagej.tif", good, imagej=True, metadata={"axes": "TYX"})
    blob = (tmp_path / "imagej.tif").read_bytes()
    (tmp_path / "truncated_imagej.tif").write_bytes(blob[: int(len(blob) * 0.6)])
    (tmp_path / "garbage.tif").write_bytes(b"this is not a TIFF file at all" * 10)
    write_tif(tmp_path / "rgb.tif", np.zeros((32, 32, 3), np.uint8), photometric="rgb")
    write_tif(tmp_path / "channels.tif", np.zeros((2, 3, 32, 32), np.uint16), imagej=True, metadata={"axes": "TCYX"})
    write_tif(tmp_path / "odd.tif", np.zeros((2, 31, 32), np.uint16))
    nan = good.astype(np.float32)
    nan[3, 5, 5] = np.nan
    write_tif(tmp_path / "nan.tif", nan)
    inf = good.astype(np.float32)
    inf[0, 0, 0] = np.inf
    write_tif(tmp_path / "inf.tif", inf)
    return {
        "truncated.tif": "truncated TIFF: 6 frames declared, the file ends inside frame 4",
        "truncated_imagej.tif": "the file declares 6 frames but 1 can be read",
        "garbage.tif": "not a readable TIFF",
        "rgb.tif": "RGB/colour data",
        "channels.tif": "3 channels",
        "odd.tif": "frames of 31×32 px do not fit the model: at U = 4 the sides become 124×128",
        "nan.tif": "frame 4 holds NaN or infinite values",
        "inf.tif": "frame 1 holds NaN or infinite values",
        "missing.tif": "acquisition file not found",
    }


def test_each_bad_input_is_a_clear_error_naming_the_file_and_leaves_no_output(tmp_path, untrained_model):
    (tmp_path / "in").mkdir()
    for name, message in bad_inputs(tmp_path / "in").items():
        out = tmp_path / name.replace(".tif", "")
        out.mkdir()
        with pytest.raises(StackError) as err:
            reconstruct(str(tmp_path / "in" / name), str(untrained_model), outputs(out), pixel_size_nm=100.0, batch_size=2)
        assert str(err.value).startswith(str(tmp_path / "in" / name) + ":") and message in str(err.value), str(err.value)
        assert list(out.iterdir()) == [], f"{name}: partial output left behind"


def test_a_truncated_imagej_stack_is_refused_not_read_as_one_frame(tmp_path):
    """tifffile logs an error for a cut ImageJ file and offers its first page alone: that must be a failure
    naming the frames declared and found, not a one-frame stack."""
    data = np.arange(30 * 32 * 32, dtype=np.uint16).reshape(30, 32, 32)
    write_tif(tmp_path / "s.tif", data, imagej=True, metadata={"axes": "TYX"})
    blob = (tmp_path / "s.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(blob[: int(len(blob) * 0.6)])
    with tifffile.TiffFile(tmp_path / "cut.tif") as tif:
        assert tif.series[0].shape == (32, 32)  # what tifffile alone would give
    with pytest.raises(StackError, match=r"cut.tif: the file declares 30 frames but 1 can be read"):
        TiffStack(tmp_path / "cut.tif")
    # a declared count larger than the pages, in a file that is otherwise whole
    (tmp_path / "declared.tif").write_bytes(blob.replace(b"images=30", b"images=40").replace(b"frames=30", b"frames=40"))
    with pytest.raises(StackError, match=r"declared.tif: the file declares 40 frames but 30 can be read"):
        TiffStack(tmp_path / "declared.tif")
    with TiffStack(tmp_path / "s.tif") as whole:
        assert whole.n_frames == whole.declared_frames() == 30


def test_an_ome_channel_axis_is_refused_but_a_plain_imagej_stack_is_frames(tmp_path):
    write_tif(tmp_path / "two.ome.tif", np.zeros((2, 16, 16), np.uint16), ome=True, metadata={"axes": "CYX"})
    with pytest.raises(StackError, match=r"two.ome.tif: 2 channels \(axes CYX\)"):
        TiffStack(tmp_path / "two.ome.tif")
    write_tif(tmp_path / "ij.tif", np.zeros((5, 16, 16), np.uint16), imagej=True)  # tifffile calls its axis C
    with TiffStack(tmp_path / "ij.tif") as stack:
        assert stack.n_frames == 5


def test_zero_frames_is_a_clear_error(tmp_path, monkeypatch):
    path = write_tif(tmp_path / "empty.tif", np.zeros((1, 8, 8), np.uint16))
    monkeypatch.setattr(tifffile.TiffPageSeries, "shape", property(lambda self: (0, 8, 8)))
    with pytest.raises(StackError, match=r"empty.tif: no frames"):
        TiffStack(path)


def test_outputs_open_in_the_tools_microscopists_use(tmp_path, untrained_model):
    frames = np.random.default_rng(2).integers(90, 400, (5, 16, 24), dtype=np.uint16)
    path = write_tif(tmp_path / "acq.tif", frames, imagej=True)
    out = outputs(tmp_path)
    summary = reconstruct(str(path), str(untrained_model), out, pixel_size_nm=100.0, batch_size=2, render_pixel_nm=20)
    table = pd.read_csv(out["localizations"])
    assert list(table.columns) == HEADER
    assert open(out["localizations"]).readline().strip() == (
        '"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]","offset [photon]","uncertainty [nm]",'
        '"peak [a.u.]","confidence [a.u.]"'
    )
    assert table["intensity [photon]"].isna().all()  # no camera given: no photons
    assert len(table) == summary["localizations"] > 0
    assert table["id"].tolist() == list(range(1, len(table) + 1)) and table["frame"].between(1, 5).all()
    assert table["x [nm]"].between(0, 2400).all() and table["y [nm]"].between(0, 1600).all()
    with tifffile.TiffFile(out["super_resolution"]) as tif:
        assert tif.pages[0].shape == (64, 96) and tif.pages[0].dtype == np.float32
        assert tif.pages[0].tags["XResolution"].value == (40, 1)  # 25 nm = 40 pixels per µm
        assert tif.imagej_metadata["unit"] == "um"
    with tifffile.TiffFile(out["widefield"]) as tif:
        np.testing.assert_allclose(tif.asarray(), frames.mean(axis=0), rtol=1e-6)
        assert tif.pages[0].tags["XResolution"].value == (10, 1)
    rendered = tifffile.imread(out["rendered"])
    assert rendered.shape == (80, 120) and rendered.sum() == pytest.approx(len(table), rel=0.02)
    for key in ("super_resolution_png", "widefield_png", "rendered_png"):
        assert open(out[key], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.loads(open(out["summary"]).read())["frames"] == 5


def test_the_reader_never_holds_more_than_one_batch(tmp_path, untrained_model, monkeypatch):
    path = write_tif(tmp_path / "long.tif", np.random.default_rng(3).integers(0, 999, (40, 16, 16), dtype=np.uint16))
    reads = []
    original = tifffile.TiffFile.asarray

    def spy(self, key=None, **kwargs):
        assert key is not None, "the whole stack was read at once"
        reads.append(len(key))
        return original(self, key=key, **kwargs)

    monkeypatch.setattr(tifffile.TiffFile, "asarray", spy)
    reconstruct(str(path), str(untrained_model), outputs(tmp_path), pixel_size_nm=100.0, batch_size=6)
    assert max(reads) <= 6 and sum(reads) == 40


def test_model_density_defaults():
    config = tiny_config()
    config["datasets"]["t"]["training_set"]["densities"] = [1, 3, 6]
    config["datasets"]["t"]["acquisitions"] = {
        "low": {"simulate": {"density": 1.9, "frames": 2}},
        "tie": {"simulate": {"density": 2, "frames": 2}},
        "file": {"path": "x.tif"},
        "chosen": {"path": "x.tif", "model_density": 1},
    }
    config = validated(config)
    assert [model_density(config, "t", a) for a in ("low", "tie", "file", "chosen")] == [1.0, 3.0, 6.0, 1.0]
    config["datasets"]["t"]["reconstruction"]["model_density"] = 3
    assert model_density(config, "t", "file") == 3.0 and model_density(config, "t", "chosen") == 1.0


def test_optional_per_frame_predictions(tmp_path, untrained_model):
    from dstorm.model.modelfile import load_model
    from dstorm.reconstruction import save_predictions

    frames = np.random.default_rng(4).integers(90, 400, (5, 16, 24), dtype=np.uint16)
    path = write_tif(tmp_path / "acq.tif", frames, imagej=True, metadata={"axes": "TYX"})
    save_predictions(str(path), str(untrained_model), str(tmp_path / "predictions.tif"), pixel_size_nm=100.0, batch_size=2,
                     precision="32")  # fmt: skip
    with tifffile.TiffFile(tmp_path / "predictions.tif") as tif:
        stack = tif.asarray()
        assert tif.pages[0].tags["XResolution"].value == (40, 1)
    assert stack.shape == (5, 64, 96) and stack.dtype == np.float32
    expected = load_model(untrained_model).predict(torch.from_numpy(frames.astype(np.float32))).numpy()
    np.testing.assert_allclose(stack, expected, rtol=1e-4, atol=1e-5 * expected.max())  # BatchNorm folded: rounding


def test_the_localisation_rows_are_written_as_np_savetxt_writes_them():
    import io

    from dstorm.loctable import COLUMNS, ThunderstormWriter

    table = np.array([[1, 3, 12.3456, 6399.9995, 110.04, 1234.56, 9.876, 12.345, 0.000123456, 98765.4],
                      [2, 10000, -0.0004, 0.0, np.nan, np.nan, np.nan, np.nan, 100.0, 1e-9]])  # fmt: skip
    expected = io.StringIO()
    np.savetxt(expected, table, fmt=list(COLUMNS.values()), delimiter=",")
    written = io.StringIO()
    ThunderstormWriter(written).write(table)
    assert written.getvalue().split("\n", 1)[1] == expected.getvalue()
    assert expected.getvalue().splitlines()[0] == "1,3,12.346,6399.999,110.0,1234.6,9.88,12.35,0.00012346,98765"
    assert expected.getvalue().splitlines()[1] == "2,10000,-0.000,0.000,nan,nan,nan,nan,100,1e-09"
