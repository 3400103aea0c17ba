"""Variance partitioning recovers planted shared and unique structure."""

from __future__ import annotations

import numpy as np
import pytest

from core.encoding.partition import best_feature_space, partition_from_r2, variance_partition


def _planted(seed: int = 0, n: int = 300, n_test: int = 150):
    """A = [S, UA], B = [S, UB]; targets 0-9 driven by S (shared), 10-19 by UA, 20-29 by UB."""
    rng = np.random.default_rng(seed)
    m = n + n_test
    S, UA, UB = (rng.normal(size=(m, 6)) for _ in range(3))
    A = np.hstack([S, UA])
    B = np.hstack([S, UB])
    drivers = [S] * 10 + [UA] * 10 + [UB] * 10
    Y = np.stack([d @ rng.normal(size=6) for d in drivers], axis=1)
    Y = Y / Y.std(0) + 0.5 * rng.normal(size=(m, 30))
    return A[:n], B[:n], Y[:n], A[n:], B[n:], Y[n:]


@pytest.mark.parametrize("joint", ["concat", "banded"])
def test_partition_recovers_planted_structure(joint):
    part = variance_partition(*_planted(), joint=joint, backend="numpy", banded_n_iter=5)
    shared, ua, ub = slice(0, 10), slice(10, 20), slice(20, 30)
    assert part.shared[shared].mean() > 0.5
    assert abs(part.unique_a[shared].mean()) < 0.05 and abs(part.unique_b[shared].mean()) < 0.05
    assert part.unique_a[ua].mean() > 0.5 and abs(part.shared[ua].mean()) < 0.05
    assert part.unique_b[ub].mean() > 0.5 and abs(part.shared[ub].mean()) < 0.05


def test_partition_identities():
    part = partition_from_r2([0.3, 0.1], [0.2, 0.4], [0.4, 0.45])
    np.testing.assert_allclose(part.unique_a, [0.2, 0.05])
    np.testing.assert_allclose(part.unique_b, [0.1, 0.35])
    np.testing.assert_allclose(part.shared, [0.1, 0.05])
    np.testing.assert_allclose(part.unique_a + part.unique_b + part.shared, part.r2_ab)


def test_partition_row_mismatch_raises():
    A, B, Y, At, Bt, Yt = _planted(n=60, n_test=20)
    with pytest.raises(ValueError, match="rows do not match"):
        variance_partition(A[:-1], B, Y, At, Bt, Yt, backend="numpy")


def test_best_feature_space_map():
    best, margin = best_feature_space({"IC": [0.1, 0.5, 0.3], "IU1": [0.2, 0.1, 0.3]})
    assert best.tolist() == ["IU1", "IC", "IC"]
    np.testing.assert_allclose(margin, [0.1, 0.4, 0.0])


def test_best_feature_space_rejects_nan():
    with pytest.raises(ValueError, match="non-finite"):
        best_feature_space(np.array([[0.1, np.nan]]), names=["IC"])


def test_shares_come_from_the_non_negative_parts():
    from core.encoding.partition import partition_shares

    shares = partition_shares({"unique A": 0.02, "shared": 0.06, "unique B": -0.01})
    assert shares == pytest.approx({"unique A": 0.25, "shared": 0.75, "unique B": 0.0})
    assert all(np.isnan(v) for v in partition_shares({"a": -1.0, "b": 0.0}).values())
