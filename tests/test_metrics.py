"""Localisation and image metrics on hand-computed cases."""

import math

import numpy as np
import pytest

from dstorm.evaluation.matching import match_localizations
from dstorm.evaluation.metrics import efficiency, image_metrics, localization_metrics, pearson, scale_match, ssim


def score(pred, gt, pred_frames=None, gt_frames=None, **kw):
    pred, gt = np.asarray(pred, float).reshape(-1, 2), np.asarray(gt, float).reshape(-1, 2)
    pf = np.ones(len(pred), int) if pred_frames is None else np.asarray(pred_frames)
    gf = np.ones(len(gt), int) if gt_frames is None else np.asarray(gt_frames)
    return localization_metrics(pf, pred, gf, gt, **kw)[0]


def test_all_matched_with_known_offsets():
    gt = [[1000, 1000], [3000, 1000], [1000, 3000], [3000, 3000]]
    offsets = np.array([[10, 0], [0, -20], [-10, 0], [0, 20]])  # |d| = 10, 20, 10, 20
    m = score(np.array(gt) + offsets, gt)
    assert (m["tp"], m["fp"], m["fn"]) == (4, 0, 0)
    assert m["jaccard"] == m["precision"] == m["recall"] == 1.0
    rmse = math.sqrt((100 + 400 + 100 + 400) / 4)  # 15.81 nm
    assert m["rmse_lat_nm"] == pytest.approx(rmse)
    assert m["bias_x_nm"] == pytest.approx(0.0) and m["bias_y_nm"] == pytest.approx(0.0)
    assert m["efficiency_pct"] == pytest.approx(100 - rmse)  # Jaccard 100 %: only the RMSE term is left


def test_bias_is_localisation_minus_truth():
    gt = [[500, 500], [2500, 500], [500, 2500]]
    m = score(np.array(gt) + [12.0, -7.0], gt)
    assert m["bias_x_nm"] == pytest.approx(12.0) and m["bias_y_nm"] == pytest.approx(-7.0)
    assert m["rmse_lat_nm"] == pytest.approx(math.hypot(12, 7))


def test_none_matched():
    m = score([[0, 0], [1000, 0]], [[0, 300], [1000, 400]])
    assert (m["tp"], m["fp"], m["fn"]) == (0, 2, 2)
    assert m["jaccard"] == 0.0 and m["precision"] == 0.0 and m["recall"] == 0.0
    assert math.isnan(m["rmse_lat_nm"]) and math.isnan(m["bias_x_nm"]) and math.isnan(m["efficiency_pct"])


def test_empty_predictions():
    m = score(np.zeros((0, 2)), [[0, 0], [500, 500], [900, 100]])
    assert (m["tp"], m["fp"], m["fn"], m["n_localizations"]) == (0, 0, 3, 0)
    assert m["jaccard"] == 0.0 and m["recall"] == 0.0
    assert math.isnan(m["precision"])  # 0 / 0: no localisation to be right or wrong


def test_empty_ground_truth():
    m = score([[0, 0], [500, 500]], np.zeros((0, 2)))
    assert (m["tp"], m["fp"], m["fn"], m["n_ground_truth"]) == (0, 2, 0, 0)
    assert m["jaccard"] == 0.0 and m["precision"] == 0.0
    assert math.isnan(m["recall"])


def test_both_empty_is_undefined_not_perfect():
    m = score(np.zeros((0, 2)), np.zeros((0, 2)))
    assert m["tp"] == m["fp"] == m["fn"] == 0
    assert math.isnan(m["jaccard"]) and math.isnan(m["precision"]) and math.isnan(m["recall"])


@pytest.mark.parametrize(("distance", "matched"), [(249.999, True), (250.0, True), (250.001, False)])
def test_tolerance_boundary_is_inclusive(distance, matched):
    # a 3-4-5 triangle, so both coordinates matter and 250 nm is exact: (150, 200)
    m = score([[1000 + 0.6 * distance, 1000 + 0.8 * distance]], [[1000, 1000]])
    assert m["tp"] == int(matched)
    m = score([[1000 + distance, 1000]], [[1000, 1000]], tolerance_nm=250.0)
    assert m["tp"] == int(matched)


def greedy_matches(pred, gt, tol):
    """DECODE-style greedy matching: repeatedly take the closest remaining pair."""
    d = np.linalg.norm(np.asarray(pred, float)[:, None] - np.asarray(gt, float)[None], axis=-1)
    used_p, used_g, n = set(), set(), 0
    for i, j in sorted(np.ndindex(d.shape), key=lambda ij: d[ij]):
        if d[i, j] <= tol and i not in used_p and j not in used_g:
            used_p.add(i), used_g.add(j)
            n += 1
    return n


def test_hungarian_beats_greedy_when_two_localisations_compete():
    # p0 is nearest to g0 (100 nm), but p0 is also the only localisation that can reach g1 (140 nm);
    # p1 reaches only g0 (200 nm). Greedy takes p0-g0 and strands both p1 and g1: 1 match. The optimal
    # one-to-one assignment is p0-g1 and p1-g0: 2 matches.
    gt = [[0, 0], [240, 0]]
    pred = [[100, 0], [-200, 0]]
    assert greedy_matches(pred, gt, 250) == 1
    m = score(pred, gt)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)
    assert m["rmse_lat_nm"] == pytest.approx(math.sqrt((140**2 + 200**2) / 2))
    # and among equally many matches it picks the smaller total distance
    mt = match_localizations([1, 1], [[0, 0], [50, 0]], [1, 1], [[40, 0], [10, 0]], 250)
    assert sorted(zip(mt.pred_index.tolist(), mt.gt_index.tolist())) == [(0, 1), (1, 0)]


def test_matching_is_per_frame_with_frames_from_1():
    gt_frames, gt = [1, 1, 2], [[100, 100], [900, 900], [100, 100]]
    # the same positions, but the second frame's emitter is reported in frame 3: no match across frames
    pred_frames, pred = [1, 1, 3], [[105, 100], [900, 905], [100, 100]]
    m = score(pred, gt, pred_frames, gt_frames)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["jaccard"] == pytest.approx(2 / 4)


def test_efficiency_by_hand():
    assert efficiency(0.5, 30.0) == pytest.approx(100 - math.sqrt(50**2 + 30**2))  # 41.69
    assert efficiency(1.0, 0.0) == 100.0
    assert efficiency(0.8, 40.0, alpha_per_nm=0.5) == pytest.approx(100 - math.sqrt(20**2 + 20**2))
    assert math.isnan(efficiency(0.0, float("nan")))


def test_pearson_by_hand():
    # x = [1, 2, 3] and y = [2, 4, 7]: deviations (-1, 0, 1) and (-7/3, -1/3, 8/3)
    r = (7 / 3 + 8 / 3) / math.sqrt(2 * (49 + 1 + 64) / 9)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(r)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_scale_match_is_the_least_squares_fit():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=200), rng.normal(size=200)
    a, b = np.polyfit(x, y, 1)
    assert scale_match(x, y) == pytest.approx(a * x + b)


def pattern(seed=0, shape=(96, 80)):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    spikes = (rng.random(shape) < 0.02).astype(float)
    return gaussian_filter(spikes, 1.5)


def test_identical_images_score_perfectly():
    truth = pattern()
    m = image_metrics(truth, truth, blur_px=1.0)
    assert m["pearson_r"] == pytest.approx(1.0)
    assert m["nrmse"] == pytest.approx(0.0, abs=1e-12)
    assert m["psnr_db"] > 200 or math.isinf(m["psnr_db"])
    assert m["ssim"] == pytest.approx(1.0)


@pytest.mark.parametrize(("scale", "offset"), [(3.7, 0.0), (0.01, 5.0), (250.0, -2.0)])
def test_scale_matched_metrics_ignore_intensity_scale_and_offset(scale, offset):
    truth = pattern(1)
    rng = np.random.default_rng(2)
    image = truth + 0.05 * truth.max() * rng.normal(size=truth.shape)
    ref = image_metrics(image, truth, blur_px=1.0)
    m = image_metrics(scale * image + offset, truth, blur_px=1.0)
    for key in ("pearson_r", "nrmse", "psnr_db", "ssim"):
        assert m[key] == pytest.approx(ref[key], rel=1e-9), key
    assert 0 < ref["nrmse"] < 0.1 and ref["ssim"] < 1


def test_metrics_fall_as_the_image_degrades():
    truth = pattern(3)
    rng = np.random.default_rng(4)
    noise = rng.normal(size=truth.shape) * truth.max()
    scores = [image_metrics(truth + k * noise, truth, blur_px=1.0) for k in (0.02, 0.1, 0.5)]
    assert scores[0]["pearson_r"] > scores[1]["pearson_r"] > scores[2]["pearson_r"]
    assert scores[0]["nrmse"] < scores[1]["nrmse"] < scores[2]["nrmse"]
    assert scores[0]["ssim"] > scores[1]["ssim"] > scores[2]["ssim"]


def test_ssim_by_hand_on_constant_images():
    # constant images: means c and d, no variance -> SSIM = (2cd + C1) / (c² + d² + C1) everywhere
    c, d = 0.2, 0.6
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * c * d + c1) / (c**2 + d**2 + c1)
    assert ssim(np.full((30, 30), c), np.full((30, 30), d), data_range=1.0) == pytest.approx(expected)


def test_image_metrics_need_one_grid():
    with pytest.raises(ValueError, match="differ in shape"):
        image_metrics(np.zeros((4, 4)), np.zeros((4, 5)), blur_px=0)


def test_ssim_equals_scikit_image():
    # oracle: skimage.metrics.structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False) with scikit-image 0.25.2 on these seeded images (not a dependency)
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    a = gaussian_filter(rng.random((100, 90)), 2)
    b = a + 0.05 * rng.normal(size=a.shape)
    assert ssim(a, b, data_range=1.0) == pytest.approx(0.46424707583234875, rel=1e-9)


def test_benchmark_curves_are_labelled_by_training_density():
    from dstorm.evaluation.evaluate import _model_label

    assert _model_label(2.0, "results/train/d/density_2/model.pt") == "trained at 2/µm²"
    assert _model_label(float("nan"), "results/train/d/density_estimated/model.pt") == "trained at the estimated density"
    assert _model_label(float("nan"), "/models/shared_by_a_colleague.pt") == "shared_by_a_colleague.pt"


def test_recall_and_rmse_by_brightness_by_hand():
    from dstorm.evaluation.metrics import brightness_metrics, matched_errors

    # frame 1: a bright emitter found 3 nm off, a dim one missed; frame 2: a dim one found 4 nm off, a
    # bright one found 6 nm off, and a second bright one missed
    gt_frame = np.array([1, 1, 2, 2, 2])
    gt_xy = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 0.0], [1000.0, 1000.0], [3000.0, 3000.0]])
    photons = np.array([2000.0, 100.0, 499.0, 500.0, 800.0])
    pred_frame = np.array([1, 2, 2])
    pred_xy = np.array([[3.0, 0.0], [0.0, 4.0], [1000.0, 1006.0]])
    metrics, m = localization_metrics(pred_frame, pred_xy, gt_frame, gt_xy)
    out = brightness_metrics(m, matched_errors(m, pred_xy, gt_xy), photons, 500.0)
    assert out["n_ground_truth_dim"] == 2 and out["n_ground_truth_bright"] == 3  # 500 counts as bright
    assert out["recall_dim"] == pytest.approx(1 / 2) and out["recall_bright"] == pytest.approx(2 / 3)
    assert out["rmse_lat_nm_dim"] == pytest.approx(4.0)
    assert out["rmse_lat_nm_bright"] == pytest.approx(math.sqrt((9 + 36) / 2))
    assert metrics["recall"] == pytest.approx(3 / 5)
    assert all(math.isnan(v) for v in brightness_metrics(m, matched_errors(m, pred_xy, gt_xy), None, 500.0).values())
