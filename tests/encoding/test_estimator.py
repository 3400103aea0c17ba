"""RidgeEncoder (scikit-learn style) and train-only z-scoring."""

from __future__ import annotations

import numpy as np
import pytest
from encoding_data import make_regression
from sklearn.base import clone

from core.encoding.alphas import alpha_grid
from core.encoding.estimator import RidgeEncoder
from core.encoding.standardize import Standardizer


def test_alpha_presets():
    np.testing.assert_allclose(alpha_grid("paper"), np.logspace(1, 4, 60))
    np.testing.assert_allclose(alpha_grid("fast"), np.logspace(1, 4, 20))


def test_unknown_alpha_preset_raises():
    with pytest.raises(ValueError, match="preset"):
        alpha_grid("slow")


def test_standardizer_uses_train_statistics_only(rng):
    train, test = rng.normal(5, 2, (50, 3)), rng.normal(-5, 9, (20, 3))
    s = Standardizer().fit(train)
    z = s.transform(test, "float64")
    np.testing.assert_allclose(z, (test - train.mean(0)) / train.std(0))
    np.testing.assert_allclose(s.inverse_transform(z, "float64"), test)


def test_standardizer_constant_column_error_names_columns(rng):
    x = rng.normal(size=(20, 4))
    x[:, 2] = 3.0
    with pytest.raises(ValueError, match=r"1 column\(s\) are constant.*\[2\]"):
        Standardizer("error").fit(x, "responses")


def test_standardizer_constant_column_zero_policy(rng):
    x = rng.normal(size=(20, 4))
    x[:, 1] = 3.0
    s = Standardizer("zero").fit(x)
    assert s.constant_.tolist() == [False, True, False, False]
    assert np.all(s.transform(x)[:, 1] == 0)


def test_encoder_matches_himalaya_solver():
    X, Y, Xt, _ = make_regression(200, 20, 200, seed=1)
    ours = RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y)
    ref = RidgeEncoder(alphas="fast", backend="numpy", solver="himalaya").fit(X, Y)
    assert np.mean(ours.best_alphas_ == ref.best_alphas_) >= 0.99
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), atol=1e-3)


def test_encoder_predicts_in_original_and_z_units():
    X, Y, Xt, _ = make_regression(200, 20, 10, seed=2)
    Y = Y * 4.0 + 10.0
    enc = RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y)
    z = enc.predict(Xt, units="z")
    orig = enc.predict(Xt)
    np.testing.assert_allclose(orig, z * Y.std(0) + Y.mean(0), rtol=1e-5, atol=1e-4)


def test_encoder_single_feature_vector():
    X, Y, Xt, _ = make_regression(100, 8, 5, seed=3)
    enc = RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y)
    np.testing.assert_allclose(enc.predict(Xt[0]), enc.predict(Xt[:1]))


def test_encoder_feature_size_mismatch_raises():
    X, Y, Xt, _ = make_regression(100, 8, 5, seed=3)
    enc = RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y)
    with pytest.raises(ValueError, match="feature size mismatch: encoder expects 8"):
        enc.predict(Xt[:, :7])


def test_encoder_constant_response_raises():
    X, Y, _, _ = make_regression(100, 8, 5, seed=3)
    Y[:, 3] = 1.0
    with pytest.raises(ValueError, match="responses: 1 column"):
        RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y)


def test_encoder_not_fitted_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeEncoder().predict(np.zeros((1, 3)))


def test_encoder_unknown_solver_raises():
    X, Y, _, _ = make_regression(60, 5, 2, seed=3)
    with pytest.raises(ValueError, match="solver"):
        RidgeEncoder(solver="lsqr").fit(X, Y)


def test_encoder_is_clonable_with_params():
    enc = RidgeEncoder(alphas="fast", cv=3, n_targets_batch=10)
    assert clone(enc).get_params() == enc.get_params()


def test_encoder_score_is_pearson_r():
    X, Y, Xt, Yt = make_regression(200, 20, 30, seed=4)
    enc = RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y)
    r = enc.score(Xt, Yt)
    pred = enc.predict(Xt)
    np.testing.assert_allclose(r[5], np.corrcoef(Yt[:, 5], pred[:, 5])[0, 1], atol=1e-6)
