"""Significance: per-target correlation tests, Benjamini-Hochberg FDR, paired comparisons.

Per-target p-values of the test-set correlation
----------------------------------------------
* ``"analytic"`` (default, :func:`correlation_pvalues`): the exact null distribution of
  Pearson's r for independent test images, via Student's t with ``n - 2`` degrees of freedom.
  It has no floor, so Benjamini-Hochberg over tens of thousands of targets can pass.
* ``"permutation"`` (:func:`permutation_test`): shuffles the test images. Its smallest p is
  ``1 / (n_permutations + 1)``; with BH over ``m`` targets nothing passes q < alpha unless at
  least ``m / (alpha * (n_permutations + 1))`` targets sit at that floor (about 2,000 of
  20,000 targets with 200 permutations), so it suits small target counts only.

Comparisons of two feature spaces per ROI (:func:`compare_rois`)
---------------------------------------------------------------
* ``mode="subjects"``: one value per subject, paired t-test (default) or exact Wilcoxon, BH
  across ROIs. The exact two-sided Wilcoxon cannot go below ``2 / 2**n`` (0.25 with 3 subjects,
  0.125 with 4, see :func:`min_attainable_p`); the t-test can.
* ``mode="targets"``: targets pooled within subjects are spatially correlated, so a test that
  treats them as independent pairs is anti-conservative; this mode is descriptive only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.encoding.scores import MIN_TEST_SAMPLES, check_pair

#: Ways of computing per-target p-values of the test-set correlation.
PVALUE_METHODS: tuple[str, ...] = ("analytic", "permutation")

#: Paired tests of :func:`paired_test` / :func:`compare_rois`.
PAIRED_TESTS: tuple[str, ...] = ("ttest", "wilcoxon")

#: Modes of :func:`compare_rois`.
COMPARE_MODES: tuple[str, ...] = ("subjects", "targets")

_ALTERNATIVES = ("greater", "less", "two-sided")


def correlation_pvalues(r: Any, n_samples: Any, alternative: str = "greater") -> np.ndarray:
    """Analytic p-values of Pearson correlations under H0 (independent test images).

    Under H0 (the responses are independent of the predictions, bivariate normal or, by
    robustness, any light-to-moderately heavy-tailed data), ``t = r * sqrt((n - 2) / (1 - r**2))``
    follows Student's t with ``n - 2`` degrees of freedom. The p-value is taken from scipy's
    survival function in float64, so small p-values keep their resolution.

    Parameters
    ----------
    r : array-like of shape (n_targets,) or any shape
        Pearson correlations in [-1, 1]; NaN gives NaN (values beyond +-1 by less than 1e-6,
        floating-point error, are clipped).
    n_samples : int or array-like broadcastable to ``r``
        Number of test images each r was computed from (>= 3).
    alternative : {"greater", "less", "two-sided"}
        ``"greater"`` (default) tests r > 0 (a prediction better than chance).

    Returns
    -------
    p : ndarray of the shape of ``r`` (float64)
        There is no floor: ``p = 0`` only at ``r = 1`` (``r = -1`` for ``"less"``, ``|r| = 1``
        for ``"two-sided"``) or where the true p is below the float64 range (~1e-308; e.g.
        r = 0.5 with 1,000 images gives p ~ 1e-64). ``p = 1`` at the other extreme.

    Raises
    ------
    ValueError
        Unknown alternative, ``n_samples < 3`` or ``|r| > 1``.
    """
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; expected one of {_ALTERNATIVES}")
    r = np.asarray(r, dtype=np.float64)
    n = np.asarray(n_samples, dtype=np.float64)
    if np.any(~np.isfinite(n)) or np.any(n < 3):
        raise ValueError("n_samples must be >= 3 (the t-test of r has n - 2 degrees of freedom)")
    finite = r[np.isfinite(r)]
    if np.any(np.abs(finite) > 1 + 1e-6):
        raise ValueError("correlations must lie in [-1, 1]")
    r = np.clip(r, -1.0, 1.0)  # NaN stays NaN
    df = n - 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        # (1 - r)(1 + r) keeps the precision of 1 - r**2 near |r| = 1; r = +-1 gives t = +-inf.
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    if alternative == "greater":
        p = stats.t.sf(t, df)
    elif alternative == "less":
        p = stats.t.cdf(t, df)
    else:
        p = np.minimum(2.0 * stats.t.sf(np.abs(t), df), 1.0)
    return np.asarray(p, dtype=np.float64)


def min_attainable_p(test: str, n: int) -> float:
    """Smallest two-sided p-value a paired test can give with ``n`` pairs.

    Parameters
    ----------
    test : {"ttest", "wilcoxon"}
        ``"wilcoxon"``: the exact signed-rank test (scipy's default for ``n <= 50`` without
        ties or zeros), smallest p ``2 / 2**n`` (0.25 for 3 pairs, 0.125 for 4, 0.0625 for 5,
        below 0.05 from 6). ``"ttest"``: the paired t-test has no floor (0).
    n : int
        Number of pairs (>= 2).

    Returns
    -------
    float
    """
    if n < 2:
        raise ValueError("a paired test needs at least 2 pairs")
    if test == "wilcoxon":
        return min(1.0, 2.0 / 2.0**n)
    if test == "ttest":
        return 0.0
    raise ValueError(f"unknown test {test!r}; expected one of {PAIRED_TESTS}")


def pvalue_method_description(
    method: str, n_samples: int, n_permutations: int = 0, n_targets: int | None = None
) -> str:
    """One sentence for reports and the app: how the per-target p-values were computed.

    Parameters
    ----------
    method : {"analytic", "permutation"}
    n_samples : int
        Test images per target.
    n_permutations : int
        Permutations (``"permutation"`` only).
    n_targets : int or None
        If given with ``"permutation"``, the sentence adds how many targets must sit at the
        p floor before any can pass BH at q < 0.05.

    Returns
    -------
    str
    """
    if method == "analytic":
        return (
            f"One-sided analytic test of Pearson r (Student's t, {n_samples - 2} df, "
            f"{n_samples} independent test images); no p floor (smallest p resolvable in "
            "float64 ~1e-308), FDR by Benjamini-Hochberg."
        )
    if method == "permutation":
        if n_permutations < 1:
            raise ValueError("n_permutations must be >= 1 for the permutation method")
        floor = 1.0 / (n_permutations + 1)
        text = (
            f"One-sided permutation test of Pearson r ({n_permutations} permutations of "
            f"{n_samples} test images); smallest attainable p = 1/{n_permutations + 1} = "
            f"{floor:.2g}, FDR by Benjamini-Hochberg."
        )
        if n_targets is not None:
            # BH: q = floor * m / k at the k floor targets, < 0.05 needs k > 20 m / (n_perm + 1)
            need = 20 * n_targets // (n_permutations + 1) + 1
            text += (
                f" With {n_targets} targets no target can reach q < 0.05 unless at least "
                f"{need} of them sit at that floor."
            )
        return text
    raise ValueError(f"unknown p-value method {method!r}; expected one of {PVALUE_METHODS}")


def _zscore_cols(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    norm = np.sqrt((a * a).sum(0))
    norm[norm == 0] = 1.0  # constant predictions -> r = 0 for every permutation
    return a / norm


#: Targets per block of the permutation null (float32 blocks of batch x n x block stay in cache).
TARGET_BLOCK = 512


def permutation_test(
    y_true: Any,
    y_pred: Any,
    n_permutations: int = 1000,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    min_samples: int = MIN_TEST_SAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided permutation test of the test-set correlation, per target.

    The rows of the predictions are permuted (the same permutation for every target, which
    keeps the spatial correlation between targets in the null), and the p-value is
    ``(1 + #{r_perm >= r}) / (1 + n_permutations)``. Its floor ``1 / (n_permutations + 1)``
    makes it unsuitable with BH over many targets; see :func:`correlation_pvalues`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples, n_targets)
    n_permutations : int
    seed : int
        Seed of the permutations (``numpy.random.default_rng``).
    batch_size : int or None
        Permutations evaluated together (default 50; memory ~ ``4 * batch_size * n_samples * 512``
        bytes, about 20 MB at the defaults).
    min_samples : int

    Returns
    -------
    r : ndarray of shape (n_targets,)
        Observed Pearson r.
    p : ndarray of shape (n_targets,)
        Permutation p-values in ``[1 / (n_permutations + 1), 1]`` (1 for constant predictions).
    """
    if n_permutations < 1:
        raise ValueError("n_permutations must be >= 1")
    y_true, y_pred = check_pair(y_true, y_pred, min_samples)
    n, t = y_true.shape
    zt, zp = _zscore_cols(y_true), _zscore_cols(y_pred)
    r = (zt * zp).sum(0)
    if batch_size is None:
        batch_size = 50
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(n_permutations)])  # (n_perm, n)
    # The null is computed in float32 over blocks of targets, so each gathered block of permuted
    # predictions (batch x n x block) stays in cache: ~4x faster than one float64 gather.
    zt32, zp32 = zt.astype(np.float32), zp.astype(np.float32)
    count = np.zeros(t, dtype=np.int64)
    for c0 in range(0, t, TARGET_BLOCK):
        sl = slice(c0, c0 + TARGET_BLOCK)
        a, b_pred, r_obs = zt32[:, sl], zp32[:, sl], r[None, sl] - 1e-6
        for p0 in range(0, n_permutations, batch_size):
            r_null = np.einsum("nc,bnc->bc", a, b_pred[perms[p0 : p0 + batch_size]])
            count[sl] += (r_null >= r_obs).sum(0)
    return r, (1.0 + count) / (1.0 + n_permutations)


def correlation_test(
    y_true: Any,
    y_pred: Any,
    method: str = "analytic",
    *,
    n_permutations: int = 1000,
    seed: int = 0,
    min_samples: int = MIN_TEST_SAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-target test-set Pearson r and its one-sided p-value (H1: r > 0).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples, n_targets) or (n_samples,)
    method : {"analytic", "permutation"}
        :func:`correlation_pvalues` or :func:`permutation_test`.
    n_permutations, seed : int
        Permutation method only.
    min_samples : int

    Returns
    -------
    r : ndarray of shape (n_targets,)
        Pearson r (0 for constant predictions).
    p : ndarray of shape (n_targets,)
        One-sided p-values; NaN for targets whose predictions are constant (nothing to test;
        :func:`fdr_bh` ignores them).
    """
    if method not in PVALUE_METHODS:
        raise ValueError(f"unknown p-value method {method!r}; expected one of {PVALUE_METHODS}")
    if method == "permutation":
        r, p = permutation_test(
            y_true, y_pred, n_permutations, seed=seed, min_samples=min_samples
        )
        y_pred = np.asarray(y_pred, dtype=np.float64)
    else:
        y_true, y_pred = check_pair(y_true, y_pred, min_samples)
        zt, zp = _zscore_cols(y_true), _zscore_cols(y_pred)
        r = np.clip((zt * zp).sum(0), -1.0, 1.0)
        p = correlation_pvalues(r, y_true.shape[0])
    const = np.ptp(y_pred.reshape(y_pred.shape[0], -1), axis=0) == 0
    p = np.where(const, np.nan, p)
    return r, p


def fdr_bh(p: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), ignoring NaN.

    Same as ``scipy.stats.false_discovery_control(p[~isnan(p)], method="bh")`` on the non-NaN
    entries; NaN p-values (untestable targets, e.g. constant predictions) are left out of the
    number of tests and get NaN q-values.

    Parameters
    ----------
    p : array-like of shape (n_tests,), values in [0, 1] or NaN

    Returns
    -------
    q : ndarray of shape (n_tests,)
        NaN where ``p`` is NaN (all NaN if every p is NaN).

    Raises
    ------
    ValueError
        Not a non-empty 1-D array, or a value outside [0, 1] (including +-inf).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p must be a non-empty 1-D array, got shape {p.shape}")
    valid = ~np.isnan(p)
    pv = p[valid]
    if np.any(~np.isfinite(pv)) or np.any(pv < 0) or np.any(pv > 1):
        raise ValueError("p-values must be in [0, 1] (NaN is allowed and ignored)")
    q = np.full(p.shape, np.nan)
    m = pv.size
    if m == 0:
        return q
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    qv = np.empty(m)
    qv[order] = np.minimum(q_sorted, 1.0)
    q[valid] = qv
    return q


def stars(p: Any) -> np.ndarray | str:
    """Significance label: ``"***"`` p < 0.001, ``"**"`` < 0.01, ``"*"`` < 0.05, else ``""``.

    Accepts a scalar (returns a str) or an array (returns an array of str); NaN gives ``""``.
    """
    arr = np.asarray(p, dtype=np.float64)
    labels = np.select([arr < 0.001, arr < 0.01, arr < 0.05], ["***", "**", "*"], default="")
    return str(labels) if arr.ndim == 0 else labels


def _paired_arrays(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} != {b.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired samples contain non-finite values")
    return a, b


def paired_test(a: Any, b: Any, test: str = "ttest") -> tuple[float, float]:
    """Two-sided paired test of a versus b (e.g. two feature spaces over subjects).

    Parameters
    ----------
    a, b : array-like of shape (n_pairs,)
        Independent pairs (e.g. one ROI mean per subject), n_pairs >= 2.
    test : {"ttest", "wilcoxon"}
        ``scipy.stats.ttest_rel`` (default; no p floor) or ``scipy.stats.wilcoxon`` (signed-rank,
        exact for small samples, smallest p ``2 / 2**n_pairs``, see :func:`min_attainable_p`).

    Returns
    -------
    statistic, p : float
        All-zero differences give statistic 0 and p = 1. Identical non-zero differences (zero
        variance) leave the t-test undefined: statistic +-inf and p = NaN ("not computable",
        never a star), rather than the limit p = 0 that would claim certainty from, say, two
        subjects that happen to agree to the last digit.
    """
    if test not in PAIRED_TESTS:
        raise ValueError(f"unknown test {test!r}; expected 'ttest' or 'wilcoxon'")
    a, b = _paired_arrays(a, b)
    if a.size < 2:
        raise ValueError("a paired test needs at least 2 pairs")
    if np.all(a == b):
        return 0.0, 1.0
    if test == "wilcoxon":
        res = stats.wilcoxon(a, b)
    else:
        d = a - b
        if np.all(d == d[0]):  # zero variance: the t statistic is undefined
            return float(np.copysign(np.inf, d[0])), float("nan")
        res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def compare_rois(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    test: str = "ttest",
    *,
    mode: str = "subjects",
) -> pd.DataFrame:
    """Per-ROI comparison of feature spaces A and B.

    Parameters
    ----------
    a, b : mapping of ROI name -> array-like of shape (n_pairs,)
        Paired values per ROI, same ROIs in both: one per subject (ROI means) in
        ``"subjects"`` mode, one per target (targets of one or more subjects pooled) in
        ``"targets"`` mode.
    test : {"ttest", "wilcoxon"}
        Paired test of ``"subjects"`` mode (see :func:`paired_test`); ignored in
        ``"targets"`` mode.
    mode : {"subjects", "targets"}
        ``"subjects"``: two-sided paired test per ROI (>= 2 subjects), BH FDR across ROIs,
        stars from q. ``"targets"``: descriptive only -- targets within a subject are spatially
        correlated, so no p-value is computed (p, q, min_p NaN; stars ``""``).

    Returns
    -------
    DataFrame, one row per ROI, with columns
        roi, mode, n (pairs used), mean_a, mean_b, difference (mean_a - mean_b), test (the test
        used, ``"none"`` in targets mode), statistic, p, min_p (smallest p the test could give
        with n pairs), q, stars (from q), descriptive (True when no inference was made).
    """
    if mode not in COMPARE_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {COMPARE_MODES}")
    if test not in PAIRED_TESTS:
        raise ValueError(f"unknown test {test!r}; expected 'ttest' or 'wilcoxon'")
    if set(a) != set(b):
        raise ValueError(f"ROIs differ: {sorted(set(a) ^ set(b))}")
    if not a:
        raise ValueError("no ROIs to compare")
    descriptive = mode == "targets"
    rows = []
    for roi in a:
        va, vb = _paired_arrays(a[roi], b[roi])
        if va.size == 0:
            raise ValueError(f"ROI {roi!r} has no values")
        if descriptive:
            stat, p, floor, used = np.nan, np.nan, np.nan, "none"
        else:
            stat, p = paired_test(va, vb, test)
            floor, used = min_attainable_p(test, va.size), test
        rows.append(
            {
                "roi": roi,
                "mode": mode,
                "n": int(va.size),
                "mean_a": float(va.mean()),
                "mean_b": float(vb.mean()),
                "difference": float(va.mean() - vb.mean()),
                "test": used,
                "statistic": stat,
                "p": p,
                "min_p": floor,
            }
        )
    table = pd.DataFrame(rows)
    table["q"] = fdr_bh(table["p"].to_numpy(dtype=np.float64))
    table["stars"] = stars(table["q"].to_numpy())
    table["descriptive"] = descriptive
    return table
