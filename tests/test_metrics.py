"""pridss_rt.eval.metrics against values computed by hand on small crafted score sets."""

import numpy as np
import pytest

from pridss_rt.eval import metrics


def test_auc_sklearn_textbook_example():
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 1 + 0 + 1 + 1 of 4
    assert metrics.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    # positives {0.5, 0.9}, negatives {0.5, 0.2}: (0.5 vs 0.5) = 1/2, the other three pairs won -> 3.5 / 4
    assert metrics.roc_auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == pytest.approx(0.875)


def test_auc_extremes_and_flip():
    assert metrics.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert metrics.roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert metrics.roc_auc([0.5] * 4, [0, 1, 0, 1]) == 0.5
    assert metrics.flip_aware_auc(0.2) == pytest.approx(0.8)
    assert np.isnan(metrics.roc_auc([0.1, 0.2], [1, 1]))


def test_auc_matches_roc_curve_area():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
    fpr, tpr, _ = metrics.roc_curve(s, y)
    area = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids handle ties as 1/2
    assert metrics.roc_auc(s, y) == pytest.approx(area)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1


def test_det_curve_operating_points():
    fmr, fnmr, thr = metrics.det_curve([2, 6, 8], [1, 4, 7])
    assert thr.tolist() == [1, 2, 4, 6, 7, 8, np.inf]
    assert fmr.tolist() == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0])
    assert fnmr.tolist() == pytest.approx([0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])


def test_eer_at_an_operating_point():
    # at threshold 6: FNMR = 1/3 (genuine 2 rejected), FMR = 1/3 (impostor 7 accepted)
    assert metrics.eer([2, 6, 8], [1, 4, 7]) == pytest.approx(1 / 3)


def test_eer_interpolated():
    # genuine {3, 8, 9}, impostor {1, 2, 4, 5}:
    # t=4: FNMR 1/3, FMR 1/2 (d = -1/6); t=5: FNMR 1/3, FMR 1/4 (d = +1/12)
    # crossing at a = (1/6) / (1/4) = 2/3 of the segment: FMR = 1/2 - 2/3 * 1/4 = 1/3 = FNMR
    assert metrics.eer([3, 8, 9], [1, 2, 4, 5]) == pytest.approx(1 / 3)
    # genuine {5, 9}, impostor {1, 6}: t=5: (FMR, FNMR) = (1/2, 0); t=6: (1/2, 1/2) -> crossing where FMR = FNMR = 1/2
    assert metrics.eer([5, 9], [1, 6]) == pytest.approx(0.5)


def test_eer_perfect_and_worst():
    assert metrics.eer([5, 6], [1, 2]) == pytest.approx(0.0)
    assert metrics.eer([1, 2], [5, 6]) == pytest.approx(1.0)


def test_fnmr_at_fmr():
    genuine = [35, 65, 85, 95]
    impostor = [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    # t=85: FMR 2/10 (85, 95), FNMR 2/4 (35, 65); t=95: FMR 1/10, FNMR 3/4 -> exact at FMR 0.1
    assert metrics.fnmr_at_fmr(genuine, impostor, 0.1) == pytest.approx(0.75)
    assert metrics.fnmr_at_fmr(genuine, impostor, 0.1, interpolate=False) == pytest.approx(0.75)
    # FMR 0.15 lies halfway between (0.2, 0.5) and (0.1, 0.75): interpolated 0.625, conservative 0.75
    assert metrics.fnmr_at_fmr(genuine, impostor, 0.15) == pytest.approx(0.625)
    assert metrics.fnmr_at_fmr(genuine, impostor, 0.15, interpolate=False) == pytest.approx(0.75)
    assert metrics.fnmr_at_fmr(genuine, impostor, 1.0) == pytest.approx(0.0)
    assert metrics.fnmr_at_fmr(genuine, impostor, 0.0) == pytest.approx(1.0)  # (95 is both): only +inf has FMR 0
    with pytest.raises(ValueError):
        metrics.fnmr_at_fmr(genuine, impostor, 1.5)


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16)) @ np.random.default_rng(1).normal(size=(16, 16))
    assert metrics.fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_shifted_gaussian_samples_is_the_squared_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    shift = np.arange(8, dtype=np.float64) / 4
    # same sample covariance, means differ by `shift`: FID = ||shift||^2 exactly
    assert metrics.fid_from_features(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_frechet_distance_closed_form_diagonal():
    # N(m1, diag(a)) vs N(m2, diag(b)): ||m1 - m2||^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    m1, m2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    want = 9.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert metrics.frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want)


def test_frechet_distance_non_commuting_covariances():
    # 2-D closed form: Tr((S1 S2)^1/2) = sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2)))
    s1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    p = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(p) + 2 * np.sqrt(np.linalg.det(p)))
    want = np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert metrics.frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(want)


@pytest.mark.parametrize("n1,n2,d", [(30, 50, 64), (200, 150, 12), (40, 300, 20)])
def test_fid_fast_route_matches_covariance_route(n1, n2, d):
    rng = np.random.default_rng(n1 + n2 + d)
    a = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d))
    b = rng.normal(0.3, 1.5, size=(n2, d)) @ rng.normal(size=(d, d))
    slow = metrics.frechet_distance(*metrics.feature_stats(a), *metrics.feature_stats(b))
    assert metrics.fid_from_features(a, b) == pytest.approx(slow, rel=1e-6)
    ref = metrics.FrechetReference(b)
    assert ref.distance(a) == pytest.approx(slow, rel=1e-6)
    assert ref.distance(b) == pytest.approx(0.0, abs=1e-6 * max(1.0, ref.trace))


def test_sqrtm_psd():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    s = a @ a.T
    r = metrics.sqrtm_psd(s)
    assert np.allclose(r @ r, s)
    assert np.allclose(r, r.T)


def test_metric_input_errors():
    with pytest.raises(ValueError):
        metrics.roc_auc([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError):
        metrics.roc_auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError):
        metrics.eer([], [1.0])
    with pytest.raises(ValueError):
        metrics.feature_stats(np.zeros((1, 3)))


def test_boundary_ratio_by_hand():
    from pridss_rt.eval.metrics import boundary_ratio, changed_band

    rng = np.random.default_rng(0)
    orig = rng.integers(0, 256, (40, 40, 3)).astype(np.uint8)
    assert boundary_ratio(orig, orig) is None and not changed_band(orig, orig).any()
    # a hard-edged square pasted on a smooth ramp adds an edge that was not there: the band along its border
    yy, xx = np.mgrid[0:40, 0:40]
    smooth = np.repeat((100 + xx)[..., None], 3, 2).astype(np.uint8)
    pasted = smooth.copy()
    pasted[10:30, 10:30] = 200
    band = changed_band(pasted, smooth, width=2)
    want = np.zeros((40, 40), bool)
    want[8:32, 8:32] = True
    want[12:28, 12:28] = False
    np.testing.assert_array_equal(band, want)
    import cv2
    g = lambda im: (cv2.Sobel(im.mean(-1).astype(np.float32), cv2.CV_32F, 1, 0, ksize=3) ** 2
                    + cv2.Sobel(im.mean(-1).astype(np.float32), cv2.CV_32F, 0, 1, ksize=3) ** 2)  # noqa: E731
    r = boundary_ratio(pasted, smooth, width=2)
    assert r == pytest.approx(g(pasted)[want].mean() / g(smooth)[want].mean(), rel=1e-6) and r > 50
    # the same change feathered over 8 px has a far smaller ratio
    a = np.clip(np.minimum.reduce([xx - 6, 33 - xx, yy - 6, 33 - yy]) / 8.0, 0, 1)[..., None]
    soft = (smooth * (1 - a) + 200 * a + 0.5).astype(np.uint8)
    assert boundary_ratio(soft, smooth, width=2) < r / 5
