"""scikit-learn style voxelwise ridge encoder (our eigh solver by default, himalaya as reference)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from core.backend import resolve_backend
from core.encoding.alphas import DEFAULT_CV, alpha_grid
from core.encoding.ridge import check_xy, solve_ridge_cv_eigh
from core.encoding.standardize import Standardizer

SOLVERS = ("eigh", "himalaya")


def fit_himalaya_ridge_cv(
    X: np.ndarray, Y: np.ndarray, alphas: np.ndarray, *, cv: Any = DEFAULT_CV,
    fit_intercept: bool = False, scoring: str = "neg_mse", n_targets_batch: int | None = None,
    n_alphas_batch: int | None = None, backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Fit ``himalaya.ridge.RidgeCV`` (the reference) and return numpy arrays.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    alphas : ndarray of shape (n_alphas,)
    cv, fit_intercept, n_targets_batch, n_alphas_batch
        Passed to himalaya (``n_*_batch`` through ``solver_params``).
    scoring : {"neg_mse", "r2"}
        ``"neg_mse"`` is RidgeCV's default ``l2_neg_loss``; ``"r2"`` passes ``r2_score``.
    backend : {"auto", "numpy", "torch", "torch_cuda"}
        himalaya backend, set for the call and restored afterwards.

    Returns
    -------
    best_alphas : ndarray of shape (n_targets,)
    coef : ndarray of shape (n_features, n_targets)
    intercept : ndarray of shape (n_targets,) or None
    cv_scores : ndarray of shape (n_targets,)
    """
    from himalaya.backend import get_backend, set_backend
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import r2_score

    previous = get_backend().name
    hb = set_backend(resolve_backend(backend), on_error="raise")
    try:
        params: dict[str, Any] = {"n_targets_batch": n_targets_batch,
                                  "n_alphas_batch": n_alphas_batch, "warn": False}
        if scoring == "r2":
            params["score_func"] = r2_score
        model = RidgeCV(alphas=np.asarray(alphas, dtype=X.dtype), cv=cv,
                        fit_intercept=fit_intercept, solver_params=params)
        model.fit(X, Y)
        best = hb.to_numpy(model.best_alphas_)
        # himalaya stores alphas as exp(-log(1 / alpha)) in float32: snap back onto the grid.
        idx = np.abs(np.log(best)[:, None] - np.log(alphas)[None, :]).argmin(1)
        intercept = hb.to_numpy(model.intercept_) if fit_intercept else None
        return (np.asarray(alphas)[idx].astype(X.dtype), hb.to_numpy(model.coef_), intercept,
                hb.to_numpy(model.cv_scores_))
    finally:
        set_backend(previous)


class RidgeEncoder(BaseEstimator):
    """Voxelwise ridge encoder: z-scoring with training statistics, one CV alpha per target.

    Parameters
    ----------
    alphas : {"paper", "fast"} or array-like of shape (n_alphas,)
        Alpha grid (see :func:`core.encoding.alphas.alpha_grid`).
    cv : int or scikit-learn splitter
        Cross-validation folds (default 5 contiguous folds, as himalaya).
    fit_intercept : bool
        The paper uses False (data are z-scored).
    solver : {"eigh", "himalaya"}
        ``"eigh"`` = :func:`core.encoding.ridge.solve_ridge_cv_eigh` (default);
        ``"himalaya"`` = ``himalaya.ridge.RidgeCV``, the reference.
    standardize : bool
        Z-score features (constant columns -> 0) and responses (constant columns -> error)
        with training statistics; predictions come back in original units.
    scoring : {"neg_mse", "r2"}
        Alpha-selection score (himalaya RidgeCV's default is ``"neg_mse"``).
    backend : {"auto", "numpy", "torch", "torch_cuda"}
    n_targets_batch, n_alphas_batch : int or None
        Memory knobs.
    dtype : {"float32", "float64"}
    eigh_dtype : {"float32", "float64"} or None
        Precision of the eigendecompositions (eigh solver only).
    tf32 : bool
        Allow TF32 matmuls on CUDA (eigh solver only).

    Attributes
    ----------
    best_alphas_ : ndarray of shape (n_targets,)
    coef_ : ndarray of shape (n_features, n_targets)
        Weights in z units (of the standardized features and responses when ``standardize``).
    intercept_ : ndarray of shape (n_targets,) or None
    cv_scores_ : ndarray of shape (n_targets,)
    x_scaler_, y_scaler_ : Standardizer or None
    n_features_in_ : int
    n_targets_ : int
    """

    def __init__(
        self, alphas: Any = "paper", cv: Any = DEFAULT_CV, fit_intercept: bool = False,
        solver: str = "eigh", standardize: bool = True, scoring: str = "neg_mse",
        backend: str = "auto", n_targets_batch: int | None = None,
        n_alphas_batch: int | None = None, dtype: str = "float32",
        eigh_dtype: str | None = None, tf32: bool = False,
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.standardize = standardize
        self.scoring = scoring
        self.backend = backend
        self.n_targets_batch = n_targets_batch
        self.n_alphas_batch = n_alphas_batch
        self.dtype = dtype
        self.eigh_dtype = eigh_dtype
        self.tf32 = tf32

    def fit(self, X: Any, Y: Any) -> RidgeEncoder:
        """Fit on training features X (n, p) and responses Y (n, t) or (n,)."""
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; expected one of {SOLVERS}")
        X, Y = check_xy(X, Y)
        alphas = alpha_grid(self.alphas)
        self.x_scaler_ = self.y_scaler_ = None
        if self.standardize:
            self.x_scaler_ = Standardizer("zero").fit(X, "features")
            self.y_scaler_ = Standardizer("error").fit(Y, "responses")
            X = self.x_scaler_.transform(X, self.dtype)
            Y = self.y_scaler_.transform(Y, self.dtype)
        else:
            X, Y = X.astype(self.dtype, copy=False), Y.astype(self.dtype, copy=False)
        common = dict(cv=self.cv, fit_intercept=self.fit_intercept, scoring=self.scoring,
                      n_targets_batch=self.n_targets_batch,
                      n_alphas_batch=self.n_alphas_batch, backend=self.backend)
        if self.solver == "eigh":
            res = solve_ridge_cv_eigh(X, Y, alphas, dtype=self.dtype, eigh_dtype=self.eigh_dtype,
                                      tf32=self.tf32, **common)
            out = (res.best_alphas, res.coef, res.intercept, res.cv_scores)
        else:
            out = fit_himalaya_ridge_cv(X, Y, alphas, **common)
        self.best_alphas_, self.coef_, self.intercept_, self.cv_scores_ = out
        self.alphas_ = alphas
        self.n_features_in_ = X.shape[1]
        self.n_targets_ = Y.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("RidgeEncoder is not fitted; call fit(X, Y) first")

    def predict(self, X: Any, units: str = "original") -> np.ndarray:
        """Predict responses for features X of shape (n, p) (or (p,) for one stimulus).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_features,)
        units : {"original", "z"}
            ``"original"`` = the units of the training responses; ``"z"`` = z-scored with the
            training mean and std of each target (same as original when not standardizing).

        Returns
        -------
        Y_hat : ndarray of shape (n_samples, n_targets), float32
        """
        self._check_fitted()
        if units not in ("original", "z"):
            raise ValueError(f"units must be 'original' or 'z', got {units!r}")
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"feature size mismatch: encoder expects {self.n_features_in_} features, "
                f"got array of shape {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains non-finite values (NaN or inf)")
        Xz = self.x_scaler_.transform(X, self.dtype) if self.standardize else X.astype(self.dtype)
        Yz = Xz @ self.coef_
        if self.intercept_ is not None:
            Yz = Yz + self.intercept_
        if units == "z" or not self.standardize:
            return Yz.astype(np.float32, copy=False)
        return self.y_scaler_.inverse_transform(Yz, "float32")

    def score(self, X: Any, Y: Any) -> np.ndarray:
        """Per-target Pearson r of ``predict(X)`` with Y, shape (n_targets,).

        See :func:`core.encoding.scores.pearson_r` for the input checks.
        """
        from core.encoding.scores import pearson_r

        return pearson_r(Y, self.predict(X))
