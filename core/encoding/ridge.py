"""Eigendecomposition RidgeCV: per-target alphas selected exactly as himalaya's ``RidgeCV``.

What himalaya 0.4 ``RidgeCV(alphas, cv=5, fit_intercept=...)`` does, and what this solver
reproduces:

* folds: ``sklearn.model_selection.check_cv(cv)``, i.e. a contiguous, unshuffled ``KFold(5)``;
* per fold, ridge predictions of the validation rows for every alpha, scored per target with
  himalaya's default ``score_func``, ``l2_neg_loss`` = ``-sum((y - y_hat)**2) / n_val``
  (``scoring="neg_mse"``; ``scoring="r2"`` reproduces ``solver_params={"score_func": r2_score}``);
* scores averaged over folds in float64, plus ``1e-10 * log(alpha)`` so that exact ties go to the
  larger alpha, then ``argmax`` per target;
* refit of every target on all training rows with its own alpha;
* ``fit_intercept=True``: X and Y centred on the training means, each fold re-centred on its own
  training-fold means (validation rows too), ``intercept = mean(Y) - mean(X) @ coef``.

How it is computed (the difference with himalaya, whose per-fold cost is dominated by
``n_alphas x n_val x n_train x n_targets``):

* ``p <= n_train`` (primal form): ``G = Xtr^T Xtr`` and ``eigh(G) = V diag(lam) V^T``;
  ``B = V^T Xtr^T Ytr`` once per fold (``Xtr^T Ytr = X^T Y - Xval^T Yval``, so ``X^T Y`` is formed
  once per target batch); then per alpha ``Y_hat = (Xval V) diag(1 / (lam + alpha)) B``.
* ``p > n_train`` (kernel form): ``K = Xtr Xtr^T = U diag(lam) U^T``, ``B = U^T Ytr`` and
  ``Y_hat = (Xval Xtr^T U) diag(1 / (lam + alpha)) B``.
* When ``r < n_val`` (e.g. NSD: p=768, n_val=1800) the validation block ``C = Xval V`` is
  QR-factorised once per fold and residuals are formed in its r-dimensional span
  (``||y - C W B||^2 = ||y||^2 - ||Q^T y||^2 + ||Q^T y - R W B||^2``), so the per-alpha cost is
  ``min(n_val, r) x r x n_targets`` against himalaya's ``n_val x n_train x n_targets``.
* Eigenvalues are clipped at 0 (float32 round-off makes the smallest ones of an ill-conditioned
  Gram matrix slightly negative); since every alpha is > 0 the solve stays well posed, and
  directions with ``lam ~ 0`` get weight ``~1/alpha`` times a numerically-zero ``B`` row, as in
  himalaya's SVD path. ``eigh_dtype="float64"`` decomposes in double precision for very
  ill-conditioned features (the matmuls stay in ``dtype``).
* Targets are processed in batches of ``n_targets_batch`` (``Y`` stays in host memory, one batch at
  a time goes to the device) and alphas in batches of ``n_alphas_batch``: peak working memory is
  about ``4 * (n_alphas_batch * n_val + 3 * p) * n_targets_batch`` bytes on top of the fold
  decompositions (``5 * (p + n_val) * p`` floats).
* ``tf32=True`` allows TF32 tensor-core matmuls on CUDA (10 mantissa bits instead of 23); it is
  ignored on CPU backends. Measured by an earlier prototype of this method on one H200 at NSD
  scale (../shared/docs/platform.md): p=4096 2.28 s -> 0.90 s, p=768 0.40 s -> 0.15 s, test
  correlations unchanged to ~1e-5. Expect the selected alpha to change where two alphas score
  within TF32 round-off of each other. (Not re-measured for this implementation: no GPU was
  available when it was written; ``benchmarks/ridge.py --device cuda`` prints the TF32 row.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import check_cv

from core.encoding._array import Array, ArrayOps, get_ops
from core.encoding.alphas import DEFAULT_CV

SCORINGS = ("neg_mse", "r2")


@dataclass
class RidgeCVResult:
    """Output of :func:`solve_ridge_cv_eigh` (numpy arrays on the host).

    Attributes
    ----------
    best_alphas : ndarray of shape (n_targets,)
        Selected alpha per target (an element of the grid).
    coef : ndarray of shape (n_features, n_targets)
        Weights refit on all training rows with each target's alpha.
    intercept : ndarray of shape (n_targets,) or None
        Only when ``fit_intercept=True``.
    cv_scores : ndarray of shape (n_targets,)
        Cross-validation score (averaged over folds) at the selected alpha.
    """

    best_alphas: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray | None
    cv_scores: np.ndarray


@dataclass
class _Fold:
    val: Array  # index, (n_val,)
    train: Array  # index, (n_train,)
    n_train: int
    kernel: bool
    lam: Array  # (r,)
    vecs: Array  # V (p, r) primal, U (n_train, r) kernel
    R: Array  # (k, r): validation rows in the eigenbasis (C), or the R of C = Q R when r < n_val
    Q: Array | None  # (n_val, k) or None (when n_val <= r, R is C itself)
    x_val: Array | None  # (n_val, p) uncentred-per-fold validation rows (primal H trick)
    x_mean: Array | None  # (p,) training-fold mean of X (fit_intercept)


def check_xy(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate features and targets for a fit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    Y : array-like of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    X, Y : ndarrays, 2-D.

    Raises
    ------
    ValueError
        Wrong dimensions, mismatched numbers of samples, or non-finite values (naming which).
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if Y.ndim != 2:
        raise ValueError(f"Y must be 1-D or 2-D (n_samples, n_targets), got shape {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y have different numbers of samples: {X.shape[0]} != {Y.shape[0]}"
        )
    if X.shape[0] < 2 or X.shape[1] < 1 or Y.shape[1] < 1:
        raise ValueError(f"empty or too small inputs: X {X.shape}, Y {Y.shape}")
    for name, arr in (("X", X), ("Y", Y)):
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return X, Y


def _splits(cv: Any, n_samples: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = check_cv(cv)
    splits = list(splitter.split(np.zeros((n_samples, 1))))
    for train, val in splits:
        if len(train) == 0 or len(val) == 0:
            raise ValueError("empty train or validation fold; check `cv`")
    return splits


def _decompose_fold(
    ops: ArrayOps, Xd: Array, train: np.ndarray, val: np.ndarray, fit_intercept: bool,
    eigh_dtype: str | None,
) -> _Fold:
    """Eigendecompose one training fold (primal if p <= n_train, else kernel)."""
    tr, va = ops.index(train), ops.index(val)
    n_train, p = len(train), Xd.shape[1]
    x_tr = Xd[tr]
    x_val = Xd[va]
    x_mean = None
    if fit_intercept:
        x_mean = x_tr.mean(0)
        x_tr = x_tr - x_mean
    x_val_c = x_val - x_mean if fit_intercept else x_val
    kernel = p > n_train
    if kernel:
        lam, vecs = ops.eigh(x_tr @ x_tr.T, eigh_dtype)
        C = (x_val_c @ x_tr.T) @ vecs
        x_val = None
    else:
        lam, vecs = ops.eigh(x_tr.T @ x_tr, eigh_dtype)
        C = x_val_c @ vecs
    lam = lam.clip(min=0)
    Q = None
    if C.shape[1] < C.shape[0]:
        # Fewer eigen-directions than validation rows: score in the r-dimensional span of C.
        Q, C = ops.qr(C)
    return _Fold(va, tr, n_train, kernel, lam, vecs, C, Q, x_val, x_mean)


def _fold_b(fold: _Fold, Yb: Array, H: Array | None, fit_intercept: bool) -> tuple[Array, Array]:
    """Return ``B`` (r, t) and the (fold-centred) validation targets (n_val, t)."""
    y_val = Yb[fold.val]
    y_mean = None
    if fit_intercept:
        # Yb is centred on all training rows, so the training-fold sum is minus the val sum.
        y_mean = -y_val.sum(0) / fold.n_train
    if fold.kernel:
        y_tr = Yb[fold.train]
        if fit_intercept:
            y_tr = y_tr - y_mean
        B = fold.vecs.T @ y_tr
    else:
        h_tr = H - fold.x_val.T @ y_val
        if fit_intercept:
            h_tr = h_tr - fold.n_train * (fold.x_mean[:, None] * y_mean[None, :])
        B = fold.vecs.T @ h_tr
    if fit_intercept:
        y_val = y_val - y_mean
    return B, y_val


def _fold_scores(
    ops: ArrayOps, fold: _Fold, B: Array, y_val: Array, alphas: Array, n_alphas_batch: int,
    scoring: str, out: Array,
) -> None:
    """Write the scores of one fold, shape (n_alphas, t), into ``out``.

    With ``C = Q R`` (only when ``r < n_val``), ``||y - C W B||^2 = ||y||^2 - ||Q^T y||^2 +
    ||Q^T y - R W B||^2``: the alpha-dependent part is formed in k = min(n_val, r) rows.
    """
    n_val = y_val.shape[0]
    k = fold.R.shape[0]
    if fold.Q is None:
        z, const = y_val, None
    else:
        z = fold.Q.T @ y_val
        const = ops.sq_col_norms(y_val) - ops.sq_col_norms(z)
    sst = ops.sq_col_norms(y_val - y_val.mean(0)) if scoring == "r2" else None
    for start in range(0, len(alphas), n_alphas_batch):
        a = alphas[start:start + n_alphas_batch]
        na = len(a)
        w = 1.0 / (fold.lam[None, :] + a[:, None])  # (na, r)
        Rw = (w[:, None, :] * fold.R[None]).reshape(na * k, -1)  # (na * k, r)
        resid = Rw @ B  # (na * k, t)
        resid = resid.reshape(na, k, -1)
        resid -= z[None]
        resid *= resid
        sse = resid.sum(1)  # (na, t)
        del resid
        if const is not None:
            sse += const[None, :]
        if scoring == "neg_mse":
            out[start:start + na] = -sse / n_val
        else:
            r2 = 1.0 - sse / sst[None, :]
            r2[:, sst == 0] = 0.0
            out[start:start + na] = r2


def _select(scores: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """himalaya's rule: float64 mean over folds, + 1e-10 log(alpha), argmax per target.

    Parameters
    ----------
    scores : ndarray of shape (n_splits, n_alphas, n_targets)
    alphas : ndarray of shape (n_alphas,)

    Returns
    -------
    index : ndarray of shape (n_targets,)
    best_scores : ndarray of shape (n_targets,)
    """
    mean = scores.astype(np.float64).mean(0)
    mean += (np.log(alphas.astype(scores.dtype)) * 1e-10)[:, None]
    index = mean.argmax(0)
    return index, mean[index, np.arange(mean.shape[1])]


def solve_ridge_cv_eigh(
    X: Any,
    Y: Any,
    alphas: Any,
    *,
    cv: Any = DEFAULT_CV,
    fit_intercept: bool = False,
    scoring: str = "neg_mse",
    n_targets_batch: int | None = None,
    n_alphas_batch: int | None = None,
    backend: str = "auto",
    dtype: str = "float32",
    eigh_dtype: str | None = None,
    tf32: bool = False,
) -> RidgeCVResult:
    """Ridge regression with one cross-validated alpha per target, by eigendecomposition.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training features (z-scored by the caller if wanted).
    Y : array-like of shape (n_samples, n_targets) or (n_samples,)
        Training targets. Kept on the host; batches of targets are moved to the device.
    alphas : array-like of shape (n_alphas,)
        Candidate regularisation strengths, all > 0 (see :func:`core.encoding.alphas.alpha_grid`).
    cv : int or scikit-learn splitter
        Folds; an int means a contiguous ``KFold`` (himalaya's and scikit-learn's default).
    fit_intercept : bool
        Centre X and Y on the training means (and each fold on its own training means).
    scoring : {"neg_mse", "r2"}
        Fold score: himalaya RidgeCV's default ``l2_neg_loss`` or himalaya's ``r2_score``.
    n_targets_batch : int or None
        Targets per batch (memory knob); None = all at once.
    n_alphas_batch : int or None
        Alphas whose predictions are formed together (memory knob); None = a size that keeps
        the prediction block near 256 MB (1 GB on CUDA).
    backend : {"auto", "numpy", "torch", "torch_cuda"}
        ``"auto"`` = ``torch_cuda`` when a GPU is present, else numpy.
    dtype : {"float32", "float64"}
        Arithmetic precision.
    eigh_dtype : {"float32", "float64"} or None
        Precision of the eigendecompositions only (None = ``dtype``).
    tf32 : bool
        Allow TF32 matmuls on CUDA (ignored elsewhere).

    Returns
    -------
    result : RidgeCVResult

    Raises
    ------
    ValueError
        Bad shapes, non-finite inputs, bad alphas, unknown scoring, or folds with empty sides.
    """
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    X, Y = check_xy(X, Y)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError("alphas must be a non-empty array of finite values > 0")
    ops = get_ops(backend, dtype)
    n_samples, n_features = X.shape
    n_targets = Y.shape[1]
    splits = _splits(cv, n_samples)
    n_val_max = max(len(v) for _, v in splits)
    tb = n_targets if n_targets_batch is None else max(1, int(n_targets_batch))
    tb = min(tb, n_targets)
    if n_alphas_batch is None:
        per_alpha = 4 * n_val_max * tb
        budget = (1024 if ops.device == "cuda" else 256) * 2**20
        n_alphas_batch = int(max(1, min(len(alphas), budget // max(per_alpha, 1))))
    alphas_d = ops.asarray(alphas.astype(dtype))

    best_alphas = np.empty(n_targets, dtype=dtype)
    cv_scores = np.empty(n_targets, dtype=dtype)
    coef = np.empty((n_features, n_targets), dtype=dtype)
    intercept = np.empty(n_targets, dtype=dtype) if fit_intercept else None

    with ops.matmul_precision(tf32):
        Xd = ops.asarray(X)
        x_offset = None
        if fit_intercept:
            x_offset = Xd.mean(0)
            Xd = Xd - x_offset
        folds = [_decompose_fold(ops, Xd, tr, va, fit_intercept, eigh_dtype) for tr, va in splits]
        kernel_refit = n_features > n_samples
        gram = Xd @ Xd.T if kernel_refit else Xd.T @ Xd
        lam_all, vecs_all = ops.eigh(gram, eigh_dtype)
        lam_all = lam_all.clip(min=0)
        del gram
        xu = Xd.T @ vecs_all if kernel_refit else None
        need_h = any(not f.kernel for f in folds)

        for start in range(0, n_targets, tb):
            sl = slice(start, min(start + tb, n_targets))
            Yb = ops.asarray(Y[:, sl])
            if fit_intercept:
                y_offset = Yb.mean(0)
                Yb = Yb - y_offset
            H = Xd.T @ Yb if (need_h or not kernel_refit) else None
            scores = ops.zeros((len(splits), len(alphas), Yb.shape[1]))
            for k, fold in enumerate(folds):
                B, y_val = _fold_b(fold, Yb, H, fit_intercept)
                _fold_scores(ops, fold, B, y_val, alphas_d, n_alphas_batch, scoring, scores[k])
                del B, y_val
            index, best = _select(ops.to_numpy(scores), alphas)
            best_alphas[sl] = alphas[index].astype(dtype)
            cv_scores[sl] = best
            a_b = alphas_d[ops.index(index)]
            if kernel_refit:
                w = 1.0 / (lam_all[:, None] + a_b[None, :])
                coef_b = xu @ ((vecs_all.T @ Yb) * w)
            else:
                w = 1.0 / (lam_all[:, None] + a_b[None, :])
                coef_b = vecs_all @ ((vecs_all.T @ H) * w)
            coef[:, sl] = ops.to_numpy(coef_b)
            if fit_intercept:
                intercept[sl] = ops.to_numpy(y_offset - x_offset @ coef_b)
            del Yb, H, scores, coef_b

    return RidgeCVResult(best_alphas, coef, intercept, cv_scores)
