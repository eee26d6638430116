"""File formats: ThunderSTORM CSV (including a real ThunderSTORM file), ImageJ TIFF, the patch file."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import tifffile

from dstorm.io import LOCALIZATION_COLUMNS, load_arrays, read_localizations, save_arrays, write_localizations, write_stack
from dstorm.simulation.emitters import TableStructure


def test_reads_thunderstorm_demo1_ground_truth(shared_data):
    gt = read_localizations(shared_data / "thunderstorm_demo1" / "positions_demo1.csv")
    assert len(gt) == 4956
    assert gt["frame"].min() == 1 and gt["frame"].max() == 20
    assert list(gt.columns) == LOCALIZATION_COLUMNS
    # about 6 emitters per µm² on 64 x 64 pixels of 100 nm
    assert len(gt) / 20 / 40.96 == pytest.approx(6.05, abs=0.01)
    frames = tifffile.imread(shared_data / "thunderstorm_demo1" / "ArtificialDataset_demo1.tif")
    assert frames.shape == (20, 64, 64) and frames.dtype == np.uint16
    # the table can seed a `table` structure
    st = TableStructure(gt[["x [nm]", "y [nm]"]].to_numpy(), (6400.0, 6400.0))
    assert len(st.xy) == 4956


def test_localization_csv_round_trip_has_thunderstorm_header(tmp_path):
    table = pd.DataFrame({"frame": [1, 2], "x [nm]": [50.0, 1234.5678], "y [nm]": [0.5, 99.9]})
    write_localizations(tmp_path / "l.csv", table)
    lines = (tmp_path / "l.csv").read_text().splitlines()
    assert lines[0] == '"id","frame","x [nm]","y [nm]"'
    assert lines[1] == "1,1,50.000,0.500"
    back = read_localizations(tmp_path / "l.csv")
    assert back["id"].tolist() == [1, 2] and back["x [nm]"].tolist() == [50.0, 1234.568]


def test_bad_localization_tables_name_the_file(tmp_path):
    (tmp_path / "bad.csv").write_text('"frame","x [px]","y [px]"\n1,2,3\n')
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['x \[nm\]', 'y \[nm\]'\]"):
        read_localizations(tmp_path / "bad.csv")
    (tmp_path / "zero.csv").write_text('"frame","x [nm]","y [nm]"\n0,2,3\n')
    with pytest.raises(ValueError, match="zero.csv: frames must be numbered from 1"):
        read_localizations(tmp_path / "zero.csv")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_localizations(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.csv: empty file \(0 bytes\)"):
        read_localizations(tmp_path / "empty.csv")


def test_a_non_numeric_cell_is_named_by_file_row_and_column(tmp_path):
    (tmp_path / "text.csv").write_text('"frame","x [nm]","y [nm]"\n1,2,3\n2,abc,4\n3,5,\n')
    with pytest.raises(ValueError, match=r"text.csv: row 2 \(line 3\), column 'x \[nm\]': 'abc' is not a finite number"):
        read_localizations(tmp_path / "text.csv")
    (tmp_path / "gap.csv").write_text('"frame","x [nm]","y [nm]"\n1,2,3\n3,5,\n')
    with pytest.raises(ValueError, match=r"gap.csv: row 2 \(line 3\), column 'y \[nm\]': an empty cell"):
        read_localizations(tmp_path / "gap.csv")
    (tmp_path / "header.csv").write_text('"frame","x [nm]","y [nm]"\n')
    assert len(read_localizations(tmp_path / "header.csv")) == 0  # no emitters is a valid table


def test_stack_is_an_imagej_tiff_with_pixel_size(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    write_stack(tmp_path / "s.tif", (f for f in data), shape=data.shape, dtype=np.uint16, pixel_size_nm=100)
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "um"
        assert tif.pages[0].tags["XResolution"].value == (10, 1)  # 10 pixels per µm = 100 nm
        np.testing.assert_array_equal(tif.asarray(), data)
    assert oct((tmp_path / "s.tif").stat().st_mode)[-3:] != "600"


def test_array_file_is_deterministic_and_needs_no_pickle(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.int32), "b": np.ones((2, 3), np.float32)}
    save_arrays(tmp_path / "1.npz", {"k": 1}, **arrays)
    save_arrays(tmp_path / "2.npz", {"k": 1}, **arrays)
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("1.npz", "2.npz")]
    assert digest[0] == digest[1]
    meta, back = load_arrays(tmp_path / "1.npz")  # np.load(allow_pickle=False) inside
    assert meta == {"k": 1} and set(back) == {"a", "b"}
    np.testing.assert_array_equal(back["a"], arrays["a"])


def test_failed_write_leaves_no_partial_file(tmp_path):
    def frames():
        yield np.zeros((4, 5), np.uint16)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_stack(tmp_path / "s.tif", frames(), shape=(2, 4, 5), dtype=np.uint16, pixel_size_nm=100)
    assert list(tmp_path.iterdir()) == []
