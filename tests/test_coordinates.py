"""The coordinate convention in both directions, the heatmap targets and the patch file."""

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import dataset
from dstorm.coordinates import gaussian_kernel, heatmap, hr_center_px, hr_index
from dstorm.io import load_arrays
from dstorm.simulation.simulate import simulate_training_set


@pytest.mark.parametrize("u", [4, 8])
def test_heatmap_peak_on_the_right_high_res_pixel_and_back(u):
    pixel_nm = 100.0
    # known sub-pixel positions (nm) within a 26-px patch, well apart so peaks do not merge
    truth_nm = np.array([[1037.0, 2081.0], [55.0, 49.0], [2590.0, 1210.0], [1550.0, 300.0]])
    xy_px = truth_nm / pixel_nm
    hm = heatmap(xy_px, (26, 26), upsampling_factor=u, sigma_hr_px=1.0, weighting_factor=100.0)
    assert hm.shape == (26 * u, 26 * u)
    for x, y in xy_px:
        col, row = int(np.floor(x * u)), int(np.floor(y * u))
        window = hm[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
        peak = np.unravel_index(np.argmax(window), window.shape)
        assert (peak[0] + max(row - 2, 0), peak[1] + max(col - 2, 0)) == (row, col)
        assert hm[row, col] == pytest.approx(100.0 * gaussian_kernel(1.0).max(), rel=1e-6)
        # back to nm: the centre of the high-res pixel, within half a high-res pixel of the truth
        back = np.array([hr_center_px(col, u), hr_center_px(row, u)]) * pixel_nm
        assert np.all(np.abs(back - [x * pixel_nm, y * pixel_nm]) <= pixel_nm / u / 2)
    # high-res pixel k covers [k/U, (k+1)/U): edges belong to the pixel on their right
    assert hr_index([0.0, 0.125, 0.1249999, 25.999], 8).tolist() == [0, 1, 0, 207]
    assert hr_center_px(0, 8) == pytest.approx(0.0625)


def test_spikes_are_set_not_accumulated_and_outside_emitters_spill_in():
    one = heatmap([[5.5, 5.5]], (10, 10), upsampling_factor=4)
    two = heatmap([[5.5, 5.5], [5.51, 5.51]], (10, 10), upsampling_factor=4)
    np.testing.assert_array_equal(one, two)
    edge = heatmap([[-0.1, 5.0]], (10, 10), upsampling_factor=8)  # 0.8 high-res px left of the patch
    assert edge[:, 0].max() > 0
    assert heatmap(np.zeros((0, 2)), (10, 10), upsampling_factor=8).sum() == 0


def test_patch_file_matches_frames_and_ground_truth(tmp_path):
    ds = dataset(training_set={"densities": [6], "frames": 6, "patches_per_frame": 40, "max_patches": 100, "min_emitters": 7})
    meta = simulate_training_set(
        ds, density=6, frames_path=tmp_path / "f.tif", ground_truth_path=tmp_path / "gt.csv", patches_path=tmp_path / "p.npz"
    )
    meta2, arr = load_arrays(tmp_path / "p.npz")
    assert meta == meta2 and meta["n_patches"] == len(arr["patches"]) == 100
    frames = tifffile.imread(tmp_path / "f.tif")
    gt = pd.read_csv(tmp_path / "gt.csv")
    p, u = meta["patch_size_px"], meta["upsampling_factor"]
    assert arr["offsets"][-1] == len(arr["xy"])
    for i in range(0, 100, 7):
        f, (r0, c0) = int(arr["frame"][i]), arr["origin"][i]
        np.testing.assert_array_equal(arr["patches"][i], frames[f - 1, r0 : r0 + p, c0 : c0 + p])
        xy = arr["xy"][arr["offsets"][i] : arr["offsets"][i + 1]]
        inside = (xy >= 0).all(axis=1) & (xy < p).all(axis=1)
        assert inside.sum() >= meta["min_emitters"]
        # the stored positions are the ground truth's, relative to the patch corner
        g = gt[gt["frame"] == f]
        gxy = np.column_stack([g["x [nm]"] / 100 - c0, g["y [nm]"] / 100 - r0])
        g_in = gxy[(gxy >= 0).all(axis=1) & (gxy < p).all(axis=1)]
        np.testing.assert_allclose(np.sort(xy[inside], axis=0), np.sort(g_in, axis=0), atol=1e-3 / 100 + 1e-4)
        # and the heatmap from the stored positions equals the one from the ground truth
        np.testing.assert_allclose(
            heatmap(xy, (p, p), upsampling_factor=u), heatmap(gxy, (p, p), upsampling_factor=u), atol=1e-4
        )


def test_no_patch_possible_is_a_clear_error_and_leaves_nothing(tmp_path):
    ds = dataset(training_set={"densities": [0.05], "frames": 2, "patches_per_frame": 5, "min_emitters": 50})
    with pytest.raises(ValueError, match=r"datasets\.t\.training_set: no patch .* min_emitters=50"):
        simulate_training_set(
            ds, density=0.05, frames_path=tmp_path / "f.tif", ground_truth_path=tmp_path / "gt.csv", patches_path=tmp_path / "p.npz"
        )
    assert list(tmp_path.iterdir()) == []
