"""Train-only z-scoring of features and responses."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

ConstantPolicy = Literal["error", "zero"]


class Standardizer:
    """Column-wise z-scoring with statistics from the training rows only.

    ``transform(X) = (X - mean_) / scale_`` with ``scale_`` the population standard deviation
    (ddof=0, as ``scipy.stats.zscore`` and ``sklearn.preprocessing.StandardScaler``).

    Parameters
    ----------
    on_constant : {"error", "zero"}
        What to do with a column that is constant on the training rows (std <= ``tol``):
        ``"error"`` raises ``ValueError`` naming how many and which columns; ``"zero"`` keeps
        ``scale_ = 1`` for them so they transform to exactly 0 (they then carry no signal and
        get a zero ridge weight). Use ``"zero"`` for features (dead units happen) and
        ``"error"`` for brain responses (a constant voxel is a data bug).
    tol : float
        Standard deviations at or below ``tol * max(1, |mean|)`` count as constant.

    Attributes
    ----------
    mean_ : ndarray of shape (n_columns,)
    scale_ : ndarray of shape (n_columns,)
    constant_ : ndarray of bool, shape (n_columns,)
        Columns found constant (only non-empty with ``on_constant="zero"``).
    """

    def __init__(self, on_constant: ConstantPolicy = "error", tol: float = 1e-7) -> None:
        if on_constant not in ("error", "zero"):
            raise ValueError(f"on_constant must be 'error' or 'zero', got {on_constant!r}")
        self.on_constant = on_constant
        self.tol = tol

    def fit(self, X: Any, name: str = "X") -> Standardizer:
        """Store column means and standard deviations of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
        name : str
            Used in error messages (``"features"``, ``"responses"``).

        Raises
        ------
        ValueError
            Not 2-D, fewer than 2 rows, non-finite values, or constant columns with
            ``on_constant="error"``.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(f"{name} must be 2-D with at least 2 rows, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
        mean = X.mean(0)
        std = X.std(0)
        constant = std <= self.tol * np.maximum(1.0, np.abs(mean))
        if constant.any() and self.on_constant == "error":
            idx = np.flatnonzero(constant)
            raise ValueError(
                f"{name}: {idx.size} column(s) are constant on the training rows "
                f"(first: {idx[:10].tolist()}); remove them or use on_constant='zero'"
            )
        std[constant] = 1.0
        self.mean_ = mean
        self.scale_ = std
        self.constant_ = constant
        return self

    @classmethod
    def from_moments(cls, mean: Any, scale: Any) -> Standardizer:
        """A fitted standardizer from stored moments (mean and scale of shape (d,)), as
        :func:`core.encoding.store.save_encoder` writes them."""
        out = cls("zero")
        out.mean_ = np.asarray(mean, dtype=np.float64)
        out.scale_ = np.asarray(scale, dtype=np.float64)
        out.constant_ = np.zeros(out.mean_.shape, dtype=bool)
        return out

    def transform(self, X: Any, dtype: str = "float32") -> np.ndarray:
        """Z-score ``X`` of shape (n, n_columns) with the stored training statistics."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"expected shape (n, {self.mean_.shape[0]}), got {X.shape}"
            )
        return ((X - self.mean_) / self.scale_).astype(dtype, copy=False)

    def fit_transform(self, X: Any, name: str = "X", dtype: str = "float32") -> np.ndarray:
        return self.fit(X, name).transform(X, dtype)

    def inverse_transform(self, Z: Any, dtype: str = "float32") -> np.ndarray:
        """Map z units back to original units: ``Z * scale_ + mean_``."""
        Z = np.asarray(Z)
        return (Z * self.scale_ + self.mean_).astype(dtype, copy=False)
