"""Per-target correlation tests (analytic and permutation), BH FDR and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from core.encoding.significance import (
    PVALUE_METHODS,
    compare_rois,
    correlation_pvalues,
    correlation_test,
    fdr_bh,
    min_attainable_p,
    paired_test,
    permutation_test,
    pvalue_method_description,
    stars,
)

# --------------------------------------------------------------------------- BH FDR


def test_fdr_bh_matches_scipy(rng):
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, size=20), [1.0, 0.0]])
    np.testing.assert_allclose(fdr_bh(p), stats.false_discovery_control(p, method="bh"))


@pytest.mark.parametrize("bad", [[0.1, 1.5], [0.1, -0.2], [0.1, np.inf]])
def test_fdr_bh_rejects_p_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fdr_bh(bad)


def test_fdr_bh_rejects_non_1d_input():
    with pytest.raises(ValueError, match="1-D"):
        fdr_bh(np.full((2, 2), 0.5))


def test_fdr_bh_ignores_nan(rng):
    p = rng.uniform(0, 0.05, size=30)
    p_nan = np.insert(p, [0, 10, 30], np.nan)  # e.g. targets with constant predictions
    q = fdr_bh(p_nan)
    nan = np.isnan(p_nan)
    assert np.all(np.isnan(q[nan]))
    # the NaN entries do not count as tests: same q as BH over the finite p alone
    np.testing.assert_allclose(q[~nan], stats.false_discovery_control(p, method="bh"))
    assert np.all(np.isnan(fdr_bh([np.nan, np.nan])))


# --------------------------------------------------------------------------- permutation test


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


# --------------------------------------------------------------------------- analytic p-values


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_correlation_pvalues_match_scipy_pearsonr(rng, alternative):
    n = 25
    y = rng.normal(size=(n, 6))
    pred = rng.normal(size=(n, 6)) + np.linspace(-1, 1, 6) * y
    res = [stats.pearsonr(y[:, j], pred[:, j], alternative=alternative) for j in range(6)]
    r = np.array([x.statistic for x in res])
    np.testing.assert_allclose(
        correlation_pvalues(r, n, alternative), [x.pvalue for x in res], rtol=1e-9
    )


def test_correlation_pvalues_resolve_tiny_p():
    # r = 0.5 over 1,000 images: p ~ 1e-64, far below any permutation floor. Reference: the
    # incomplete-beta form of the same null, p = I_{1-r^2}((n-2)/2, 1/2) / 2.
    r, n = np.array([0.5, 0.3, 0.15]), 1000
    ref = 0.5 * special.betainc((n - 2) / 2, 0.5, 1 - r**2)
    p = correlation_pvalues(r, n)
    assert 0 < p[0] < 1e-60
    np.testing.assert_allclose(p, ref, rtol=1e-8)


def test_correlation_pvalues_edge_values():
    p = correlation_pvalues(np.array([[1.0, -1.0], [np.nan, 0.0]]), 50)
    assert p.shape == (2, 2)
    assert p[0, 0] == 0.0 and p[0, 1] == 1.0 and np.isnan(p[1, 0]) and p[1, 1] == pytest.approx(0.5)
    assert correlation_pvalues(1 + 1e-12, 50) == 0.0  # floating-point overshoot is clipped
    assert correlation_pvalues(1.0, 50, "two-sided") == 0.0
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        correlation_pvalues(1.5, 50)
    with pytest.raises(ValueError, match=">= 3"):
        correlation_pvalues(0.3, 2)


@pytest.mark.parametrize("noise", ["gaussian", "student_t5"])
def test_analytic_pvalues_uniform_under_null(rng, noise):
    n, t = 200, 5000
    draw = rng.standard_normal if noise == "gaussian" else lambda size: rng.standard_t(5, size)
    y, pred = draw(size=(n, t)), draw(size=(n, t))  # independent: H0 holds for every target
    _, p = correlation_test(y, pred)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.04 <= np.mean(p < 0.05) <= 0.06


def test_analytic_pvalues_agree_with_permutation_null(rng):
    n, t, n_perm = 100, 200, 2000
    y = rng.normal(size=(n, t))
    pred = np.linspace(0, 0.3, t) * y + rng.normal(size=(n, t))  # p spread over (0, 1)
    r, p_perm = permutation_test(y, pred, n_permutations=n_perm, seed=1)
    p_an = correlation_pvalues(r, n)
    sel = p_an >= 0.01  # below, the permutation p is limited by its resolution
    assert sel.sum() > 100
    # within 4.5 Monte-Carlo standard errors of the 2000-permutation estimate (<= 0.05)
    tol = 4.5 * np.sqrt(p_an * (1 - p_an) / n_perm) + 0.002
    assert np.all(np.abs(p_an - p_perm)[sel] <= tol[sel])


def test_analytic_bh_detects_planted_targets_where_200_permutations_cannot(rng):
    # NSD-like size: 1,000 test images, 20,000 targets, 5% with population r = 0.15.
    n, t, k, rho = 1000, 20_000, 1000, 0.15
    y = rng.standard_normal((n, t))
    pred = rng.standard_normal((n, t))
    pred[:, :k] = rho * y[:, :k] + np.sqrt(1 - rho**2) * pred[:, :k]  # corr(y, pred) = rho
    r, p_perm = permutation_test(y, pred, n_permutations=200, seed=0)
    del y, pred
    q = fdr_bh(correlation_pvalues(r, n))
    found = q < 0.05
    assert found[:k].mean() > 0.8
    assert found[k:].sum() / found.sum() < 0.10  # false-discovery share among discoveries
    # p >= 1/201 everywhere: BH needs ~2,000 targets at that floor, only ~1,100 can be
    assert p_perm.min() == pytest.approx(1 / 201)
    assert not np.any(fdr_bh(p_perm) < 0.05)


def test_correlation_test_constant_predictions_get_nan_p(rng):
    y, pred = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    pred[:, 2] = 3.0
    for method in PVALUE_METHODS:
        r, p = correlation_test(y, pred, method, n_permutations=50)
        assert r[2] == 0.0 and np.isnan(p[2]) and np.all(np.isfinite(p[[0, 1, 3]]))
        assert np.isnan(fdr_bh(p)[2])


def test_correlation_test_analytic_matches_correlation_pvalues(rng):
    y, pred = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    r, p = correlation_test(y, pred, "analytic")
    np.testing.assert_allclose(r, [np.corrcoef(y[:, j], pred[:, j])[0, 1] for j in range(5)])
    np.testing.assert_allclose(p, correlation_pvalues(r, 40))


def test_pvalue_method_description_states_floor():
    perm = pvalue_method_description("permutation", 1000, 200, n_targets=20_000)
    assert "200 permutations" in perm and "1/201" in perm and "1991" in perm
    analytic = pvalue_method_description("analytic", 1000)
    assert "998 df" in analytic and "no p floor" in analytic
    with pytest.raises(ValueError, match="unknown p-value method"):
        pvalue_method_description("bootstrap", 1000)


# --------------------------------------------------------------------------- paired comparisons


def test_stars_labels():
    assert stars(0.0005) == "***" and stars(0.005) == "**" and stars(0.03) == "*"
    assert stars(0.2) == "" and stars(np.nan) == ""
    assert stars(np.array([0.0001, 0.5])).tolist() == ["***", ""]


@pytest.mark.parametrize("test, ref", [("wilcoxon", stats.wilcoxon), ("ttest", stats.ttest_rel)])
def test_paired_test_matches_scipy(rng, test, ref):
    a, b = rng.normal(size=12), rng.normal(size=12) + 0.5
    assert paired_test(a, b, test)[1] == pytest.approx(ref(a, b).pvalue)


def test_paired_test_defaults_to_ttest(rng):
    a, b = rng.normal(size=5), rng.normal(size=5)
    assert paired_test(a, b)[1] == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_paired_test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("test", ["ttest", "wilcoxon"])
def test_paired_test_identical_samples_give_p_one(test):
    assert paired_test([0.2, 0.4, 0.3], [0.2, 0.4, 0.3], test) == (0.0, 1.0)


def test_paired_test_constant_nonzero_difference_is_not_computable():
    # zero variance: no p (never p = 0, which would star two subjects that happen to agree)
    stat, p = paired_test([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])
    assert stat == np.inf and np.isnan(p)


def test_two_subjects_can_reach_p_below_005_with_a_paired_t():
    # one degree of freedom: possible when the two differences nearly agree
    assert paired_test([0.61, 0.72], [0.50, 0.60])[1] < 0.05


def test_ttest_reaches_significance_with_four_subjects_where_wilcoxon_cannot(rng):
    b = rng.normal(0.3, 0.1, size=4)  # per-subject ROI means of the reference
    a = b + 0.05 + rng.normal(0, 0.005, size=4)  # consistent improvement in every subject
    assert paired_test(a, b, "ttest")[1] < 0.05
    p_wilcoxon = paired_test(a, b, "wilcoxon")[1]
    assert p_wilcoxon >= 0.125 and p_wilcoxon == pytest.approx(min_attainable_p("wilcoxon", 4))


@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_min_attainable_p_matches_exact_wilcoxon(n):
    # all differences of one sign: the most extreme outcome of the exact signed-rank test
    p = stats.wilcoxon(np.arange(1.0, n + 1), np.zeros(n)).pvalue
    assert min_attainable_p("wilcoxon", n) == pytest.approx(p) == pytest.approx(2 / 2**n)
    assert min_attainable_p("ttest", n) == 0.0


def test_compare_rois_subjects_table(rng):
    a = {"V1": rng.normal(1.0, 0.1, 40), "FFA": rng.normal(0.0, 1.0, 40)}
    b = {"V1": rng.normal(0.0, 0.1, 40), "FFA": rng.normal(0.0, 1.0, 40)}
    table = compare_rois(a, b, test="ttest").set_index("roi")
    assert table.loc["V1", "q"] < 0.001 and table.loc["V1", "stars"] == "***"
    assert table.loc["FFA", "q"] >= table.loc["FFA", "p"]
    assert (table["test"] == "ttest").all() and (table["n"] == 40).all()
    assert not table["descriptive"].any()


def test_compare_rois_default_gives_stars_with_four_subjects(rng):
    b = {roi: rng.normal(0.3, 0.1, 4) for roi in ("V1", "V4", "FFA")}
    a = {roi: v + 0.05 + rng.normal(0, 0.005, 4) for roi, v in b.items()}
    table = compare_rois(a, b)
    assert (table["test"] == "ttest").all() and (table["stars"] != "").all()
    wil = compare_rois(a, b, test="wilcoxon")
    assert (wil["stars"] == "").all() and np.allclose(wil["min_p"], 0.125)


def test_compare_rois_targets_mode_is_descriptive(rng):
    # a large, consistent difference over many pooled targets would be "***" if tested
    a = {"V1": rng.normal(1.0, 0.1, 500), "FFA": rng.normal(0.5, 0.1, 300)}
    b = {"V1": rng.normal(0.0, 0.1, 500), "FFA": rng.normal(0.0, 0.1, 300)}
    table = compare_rois(a, b, mode="targets").set_index("roi")
    assert table["p"].isna().all() and table["q"].isna().all()
    assert (table["stars"] == "").all() and table["descriptive"].all()
    assert (table["test"] == "none").all() and table.loc["FFA", "n"] == 300
    assert table.loc["V1", "difference"] == pytest.approx(a["V1"].mean() - b["V1"].mean())


def test_compare_rois_unknown_mode_raises():
    with pytest.raises(ValueError, match="unknown mode"):
        compare_rois({"V1": [1.0, 2.0]}, {"V1": [0.0, 1.0]}, mode="voxels")
