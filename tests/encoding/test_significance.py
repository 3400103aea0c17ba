"""Permutation tests, Benjamini-Hochberg FDR and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from core.encoding.significance import compare_rois, fdr_bh, paired_test, permutation_test, stars


def test_fdr_bh_matches_scipy(rng):
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=20), [1.0, 0.0]])
    np.testing.assert_allclose(fdr_bh(p), stats.false_discovery_control(p, method="bh"))


def test_fdr_bh_rejects_invalid_p():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fdr_bh([0.1, 1.5])


def test_permutation_null_targets_not_significant_after_fdr(rng):
    n, t_real, t_null = 100, 20, 200
    y = rng.normal(size=(n, t_real + t_null))
    pred = rng.normal(size=y.shape)
    pred[:, :t_real] += y[:, :t_real]  # r ~ 0.7 for the real targets
    r, p = permutation_test(y, pred, n_permutations=500, seed=1)
    q = fdr_bh(p)
    assert np.all(q[:t_real] < 0.05)
    assert np.mean(q[t_real:] < 0.05) <= 0.01


def test_permutation_p_value_matches_loop(rng):
    y, pred = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    r, p = permutation_test(y, pred, n_permutations=200, seed=3, batch_size=7)
    gen = np.random.default_rng(3)
    perms = [gen.permutation(30) for _ in range(200)]
    for j in range(3):
        null = [np.corrcoef(y[:, j], pred[perm, j])[0, 1] for perm in perms]
        assert p[j] == pytest.approx((1 + np.sum(np.array(null) >= r[j] - 1e-12)) / 201)


def test_stars_labels():
    assert stars(0.0005) == "***" and stars(0.005) == "**" and stars(0.03) == "*"
    assert stars(0.2) == ""
    assert stars(np.array([0.0001, 0.5])).tolist() == ["***", ""]


@pytest.mark.parametrize("test, ref", [("wilcoxon", stats.wilcoxon), ("ttest", stats.ttest_rel)])
def test_paired_test_matches_scipy(rng, test, ref):
    a, b = rng.normal(size=12), rng.normal(size=12) + 0.5
    assert paired_test(a, b, test)[1] == pytest.approx(ref(a, b).pvalue)


def test_paired_test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([1.0, 2.0, 3.0], [1.0, 2.0])


def test_compare_rois_table(rng):
    a = {"V1": rng.normal(1.0, 0.1, 40), "FFA": rng.normal(0.0, 1.0, 40)}
    b = {"V1": rng.normal(0.0, 0.1, 40), "FFA": rng.normal(0.0, 1.0, 40)}
    table = compare_rois(a, b, test="ttest").set_index("roi")
    assert table.loc["V1", "q"] < 0.001 and table.loc["V1", "stars"] == "***"
    assert table.loc["FFA", "q"] >= table.loc["FFA", "p"]
