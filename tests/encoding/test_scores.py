"""Scores, noise ceilings and ROI summaries against numpy / scipy / scikit-learn references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import r2_score as sk_r2

from core.encoding.ceiling import cross_subject_ceiling, nc_from_ncsnr, noise_term
from core.encoding.roi import across_subjects, summarize_across_subjects, summarize_rois
from core.encoding.scores import normalize_correlation, normalize_variance, pearson_r, r2_score


def test_pearson_r_matches_scipy(rng):
    y, p = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    p[:, 0] += y[:, 0]
    expected = [stats.pearsonr(y[:, i], p[:, i]).statistic for i in range(4)]
    np.testing.assert_allclose(pearson_r(y, p), expected, atol=1e-12)


def test_r2_matches_sklearn(rng):
    y, p = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    np.testing.assert_allclose(r2_score(y, p), sk_r2(y, p, multioutput="raw_values"))


def test_constant_predictions_give_zero_r(rng):
    y = rng.normal(size=(20, 2))
    assert pearson_r(y, np.ones((20, 2))).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "y, p, match",
    [
        (np.ones((20, 2)), np.zeros((20, 2)), "constant responses"),
        (np.full((20, 2), np.nan), np.zeros((20, 2)), "non-finite"),
        (np.zeros((20, 2)), np.zeros((19, 2)), "same 2-D shape"),
        (np.arange(10.0)[:5, None], np.arange(5.0)[:, None], "too few test samples"),
    ],
)
def test_bad_score_input_raises(y, p, match):
    with pytest.raises(ValueError, match=match):
        pearson_r(y, p)


def test_ceiling_module_reexports_the_data_formula():
    from core.data.noise_ceiling import noise_ceiling_from_ncsnr

    assert nc_from_ncsnr is noise_ceiling_from_ncsnr
    assert noise_term([3, 3, 2, 1]) == pytest.approx((2 / 3 + 1 / 2 + 1) / 4)


def test_normalize_correlation_scale():
    np.testing.assert_allclose(normalize_correlation([0.3, -0.2], [0.36, 0.25]), [0.5, -0.4])


def test_normalize_variance_scale_capped():
    out = normalize_variance([0.3, -0.2, 0.9], [0.36, 0.25, 0.5])
    np.testing.assert_allclose(out, [25.0, 0.0, 100.0])


def test_normalize_rejects_percent_or_zero_ceiling():
    with pytest.raises(ValueError, match="fraction"):
        normalize_correlation([0.3], [36.0])
    with pytest.raises(ValueError, match="outside"):
        normalize_variance([0.3], [0.0])


def test_cross_subject_ceiling_finds_shared_signal(rng):
    shared = rng.normal(size=(120, 3))
    subjects = {}
    for s in ("s1", "s2", "s3"):
        mix = rng.normal(size=(3, 6))
        y = shared @ mix
        y[:, 5] = 0.0
        subjects[s] = (
            y + 0.3 * rng.normal(size=(120, 6)) + np.eye(6)[5] * rng.normal(size=(120, 1)) * 3
        )
    r, nc = cross_subject_ceiling(subjects, "s1", backend="numpy")
    assert r[:5].min() > 0.8
    assert abs(r[5]) < 0.3
    np.testing.assert_allclose(nc, np.maximum(r, 0) ** 2)


def test_cross_subject_ceiling_row_mismatch_raises(rng):
    with pytest.raises(ValueError, match="same images"):
        cross_subject_ceiling({"a": rng.normal(size=(30, 2)), "b": rng.normal(size=(29, 2))}, "a")


def test_summarize_rois_mean_median():
    scores = np.array([0.1, 0.2, 0.9, 0.4])
    table = summarize_rois(scores, {"V1": np.array([True, True, True, False])})
    row = table.iloc[0]
    assert (row["n_targets"], row["mean"], row["median"]) == (3, pytest.approx(0.4), 0.2)


def test_summarize_rois_empty_roi_raises():
    with pytest.raises(ValueError, match="'FFA' has no targets"):
        summarize_rois(np.zeros(3), {"FFA": np.zeros(3, bool)})


def test_across_subjects_mean_sem():
    mean, sem = across_subjects([0.2, 0.4, 0.6, 0.8])
    assert mean == pytest.approx(0.5)
    assert sem == pytest.approx(stats.sem([0.2, 0.4, 0.6, 0.8]))


def test_summarize_across_subjects_table():
    table = pd.DataFrame(
        {
            "subject": ["1", "2", "1", "2"],
            "roi": ["V1", "V1", "FFA", "FFA"],
            "mean": [0.2, 0.4, 0.1, 0.3],
        }
    )
    out = summarize_across_subjects(table).set_index("roi")
    assert out.loc["V1", "mean"] == pytest.approx(0.3)
    assert out.loc["FFA", "sem"] == pytest.approx(0.1)
