"""The eigh RidgeCV solver against himalaya's RidgeCV (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from encoding_data import BACKENDS, CUDA, make_regression

from core.encoding._array import get_ops
from core.encoding.alphas import alpha_grid
from core.encoding.estimator import fit_himalaya_ridge_cv
from core.encoding.ridge import _decompose_fold, _splits, _use_rational, solve_ridge_cv_eigh
from core.encoding.scores import pearson_r

ALPHAS = alpha_grid("paper")
PATHS = ["rational", "direct"]


def _compare(X, Y, Xt, Yt, backend, dtype="float32", score_path="auto", **kw):
    ours = solve_ridge_cv_eigh(X, Y, ALPHAS, backend=backend, dtype=dtype,
                               score_path=score_path, **kw)
    ref = fit_himalaya_ridge_cv(X, Y, ALPHAS, backend="numpy", **kw)
    same = ours.best_alphas == ref[0]
    r_ours = pearson_r(Yt, Xt @ ours.coef + (0 if ours.intercept is None else ours.intercept))
    r_ref = pearson_r(Yt, Xt @ ref[1] + (0 if ref[2] is None else ref[2]))
    dr = np.abs(r_ours - r_ref)
    # Where alphas agree, test r agree to 1e-4; the rare float32 ties (two alphas whose CV
    # scores differ by ~1 ulp) may pick a neighbouring alpha, which moves r by < 1e-3.
    assert dr.max() < 1e-3
    return ours, ref, same.mean(), dr[same].max()


@pytest.mark.parametrize("score_path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_alphas_and_test_r_as_himalaya_random(backend, score_path):
    X, Y, Xt, Yt = make_regression(300, 40, 1000, seed=1)
    _, _, agree, dr = _compare(X, Y, Xt, Yt, backend, score_path=score_path)
    assert agree >= 0.999
    assert dr < 1e-4


@pytest.mark.parametrize("score_path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_alphas_and_test_r_as_himalaya_ill_conditioned(backend, score_path):
    X, Y, Xt, Yt = make_regression(300, 40, 1000, seed=2, ill_conditioned=True)
    assert np.linalg.cond(X.astype(np.float64)) > 500
    _, _, agree, dr = _compare(X, Y, Xt, Yt, backend, score_path=score_path)
    assert agree >= 0.999
    assert dr < 1e-4


def test_same_alphas_as_himalaya_near_rank_deficient_float64():
    X, Y, Xt, Yt = make_regression(300, 40, 300, seed=2, near_rank_deficient=True)
    X, Y, Xt, Yt = (a.astype(np.float64) for a in (X, Y, Xt, Yt))
    _, _, agree, dr = _compare(X, Y, Xt, Yt, "numpy", dtype="float64")
    assert agree == 1.0
    assert dr < 1e-8


def _grid_index(alphas):
    return np.abs(np.log(np.asarray(alphas, float))[:, None] - np.log(ALPHAS)[None]).argmin(1)


@pytest.mark.parametrize("score_path", PATHS)
def test_near_rank_deficient_float32_mismatches_are_himalaya_round_off(score_path):
    X, Y, Xt, Yt = make_regression(300, 40, 1000, seed=4, near_rank_deficient=True)
    ours, ref, agree, dr = _compare(X, Y, Xt, Yt, "numpy", score_path=score_path)
    truth = fit_himalaya_ridge_cv(X.astype(np.float64), Y.astype(np.float64), ALPHAS,
                                  backend="numpy")[0]
    ours_vs_truth = np.mean(_grid_index(ours.best_alphas) == _grid_index(truth))
    ref_vs_truth = np.mean(_grid_index(ref[0]) == _grid_index(truth))
    assert agree >= 0.98
    assert ours_vs_truth >= ref_vs_truth  # we are no noisier than himalaya's own float32
    assert dr < 1e-4


@pytest.mark.parametrize("score_path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_intercept_matches_himalaya(backend, score_path):
    X, Y, Xt, Yt = make_regression(250, 30, 300, seed=3)
    X, Xt = X + 2.0, Xt + 2.0
    Y, Yt = Y - 5.0, Yt - 5.0
    ours, ref, agree, dr = _compare(X, Y, Xt, Yt, backend, fit_intercept=True,
                                    score_path=score_path)
    assert agree >= 0.999 and dr < 1e-4
    np.testing.assert_allclose(ours.intercept, ref[2], atol=1e-4)


def test_intercept_absorbs_offsets():
    X, Y, _, _ = make_regression(250, 30, 50, seed=3)
    plain = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy", fit_intercept=True)
    shifted = solve_ridge_cv_eigh(X + 3.0, Y + 7.0, ALPHAS, backend="numpy", fit_intercept=True)
    np.testing.assert_array_equal(plain.best_alphas, shifted.best_alphas)
    np.testing.assert_allclose(shifted.coef, plain.coef, atol=1e-4)
    np.testing.assert_allclose(shifted.intercept, plain.intercept + 7.0 - 3.0 * plain.coef.sum(0),
                               atol=1e-3)


@pytest.mark.parametrize("score_path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_form_when_p_exceeds_n(backend, score_path):
    X, Y, Xt, Yt = make_regression(120, 300, 2000, seed=4)
    ours, ref, agree, dr = _compare(X, Y, Xt, Yt, backend, score_path=score_path)
    assert agree >= 0.999 and dr < 1e-4
    same = ours.best_alphas == ref[0]
    np.testing.assert_allclose(ours.coef[:, same], ref[1][:, same], atol=1e-4)


@pytest.mark.parametrize("score_path", PATHS)
def test_r2_scoring_matches_himalaya_r2(score_path):
    X, Y, Xt, Yt = make_regression(300, 40, 500, seed=5)
    _, _, agree, dr = _compare(X, Y, Xt, Yt, "numpy", scoring="r2", score_path=score_path)
    assert agree >= 0.999 and dr < 1e-4


def test_cv_scores_match_himalaya():
    X, Y, _, _ = make_regression(200, 20, 100, seed=6)
    ours = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy")
    ref = fit_himalaya_ridge_cv(X, Y, ALPHAS, backend="numpy")
    np.testing.assert_allclose(ours.cv_scores, ref[3], atol=1e-5)


def _cv_table(X, Y, score_path, **kw):
    """Per-target CV scores of every alpha, by solving with one alpha at a time."""
    return np.stack([solve_ridge_cv_eigh(X, Y, [a], backend="numpy", score_path=score_path,
                                         **kw).cv_scores for a in ALPHAS[::6]])


@pytest.mark.parametrize("kind", ["random", "rank_deficient", "repeated_eigenvalues"])
def test_rational_and_direct_paths_give_the_same_cv_scores(kind):
    X, Y, _, _ = make_regression(200, 30, 60, seed=12)
    if kind == "rank_deficient":  # duplicated columns: clipped zero eigenvalues, exactly tied
        X = np.concatenate([X[:, :15], X[:, :15]], axis=1)
    elif kind == "repeated_eigenvalues":  # every fold's Gram is 400 I: ties to float32 ulps
        block = np.linalg.qr(np.random.default_rng(0).standard_normal((40, 30)))[0]
        X = np.tile(block.astype(np.float32) * 10, (5, 1))
    if kind != "random":  # the near-pair branch of the rational path is exercised
        fold = _decompose_fold(get_ops("numpy"), X, *_splits(5, len(X))[0], False, None,
                               "rational", ALPHAS)
        assert fold.rational.near_idx is not None
    for kw in ({}, {"fit_intercept": True}):
        a = _cv_table(X, Y, "rational", **kw)
        b = _cv_table(X, Y, "direct", **kw)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_auto_path_picks_rational_for_many_alphas_and_direct_for_few():
    assert _use_rational("auto", r=768, n_val=400, n_alphas=20)
    assert not _use_rational("auto", r=768, n_val=400, n_alphas=2)
    # a slow-FP64 GPU or TF32 at large p makes the float64 product too dear
    assert not _use_rational("auto", r=4096, n_val=1800, n_alphas=20, float64_cost=16.0)
    assert _use_rational("rational", r=768, n_val=400, n_alphas=1)
    assert not _use_rational("direct", r=768, n_val=400, n_alphas=60)


def test_unknown_score_path_raises():
    X, Y, _, _ = make_regression(60, 5, 3, seed=10)
    with pytest.raises(ValueError, match="score_path"):
        solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy", score_path="fast")


def test_batching_over_targets_and_alphas_gives_same_result():
    X, Y, _, _ = make_regression(200, 30, 130, seed=7)
    full = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy")
    batched = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy", n_targets_batch=17,
                                  n_alphas_batch=7)
    np.testing.assert_array_equal(full.best_alphas, batched.best_alphas)
    np.testing.assert_allclose(full.coef, batched.coef, atol=1e-6)


def test_float64_eigh_agrees_with_float32():
    X, Y, _, _ = make_regression(200, 30, 200, seed=8, ill_conditioned=True)
    a = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy")
    b = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy", eigh_dtype="float64")
    assert np.mean(a.best_alphas == b.best_alphas) >= 0.99
    assert a.coef.dtype == np.float32 and b.coef.dtype == np.float32


def test_single_target_1d():
    X, Y, _, _ = make_regression(100, 10, 1, seed=9)
    res = solve_ridge_cv_eigh(X, Y[:, 0], ALPHAS, backend="numpy")
    assert res.coef.shape == (10, 1) and res.best_alphas.shape == (1,)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda X, Y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), Y),
         "non-finite"),
        (lambda X, Y: (X, Y[:-1]), "different numbers of samples"),
        (lambda X, Y: (X[:, :, None], Y), "2-D"),
    ],
)
def test_bad_input_raises(mutate, match):
    X, Y, _, _ = make_regression(60, 5, 3, seed=10)
    X, Y = mutate(X, Y)
    with pytest.raises(ValueError, match=match):
        solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy")


@pytest.mark.parametrize("alphas", [[], [0.0, 1.0], [np.inf]])
def test_bad_alphas_raise(alphas):
    X, Y, _, _ = make_regression(60, 5, 3, seed=10)
    with pytest.raises(ValueError, match="alphas"):
        solve_ridge_cv_eigh(X, Y, alphas, backend="numpy")


def test_unknown_scoring_raises():
    X, Y, _, _ = make_regression(60, 5, 3, seed=10)
    with pytest.raises(ValueError, match="scoring"):
        solve_ridge_cv_eigh(X, Y, ALPHAS, backend="numpy", scoring="pearson")


@pytest.mark.skipif(not CUDA, reason="no CUDA GPU")
def test_tf32_close_to_fp32():
    X, Y, Xt, Yt = make_regression(300, 40, 500, seed=11)
    a = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="torch_cuda")
    b = solve_ridge_cv_eigh(X, Y, ALPHAS, backend="torch_cuda", tf32=True)
    assert np.mean(a.best_alphas == b.best_alphas) > 0.95
    assert np.abs(pearson_r(Yt, Xt @ a.coef) - pearson_r(Yt, Xt @ b.coef)).max() < 1e-2
