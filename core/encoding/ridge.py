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
``n_alphas x n_val x n_train x n_targets`` for the validation predictions, plus a refit costing
``n_used_alphas x p x n x n_targets``):

* ``p <= n_train`` (primal form): ``A = Xtr^T Xtr = V diag(lam) V^T`` (one ``eigh`` per fold);
  ``B = V^T Xtr^T Ytr`` with ``Xtr^T Ytr = X^T Y - Xval^T Yval``, so ``X^T Y`` is formed once per
  target batch; the validation rows in the eigenbasis are ``C = Xval V``, and
  ``Y_hat(alpha) = C diag(d) B`` with ``d_j = 1 / (lam_j + alpha)``.
* ``p > n_train`` (kernel form): ``K = Xtr Xtr^T = U diag(lam) U^T``, ``B = U^T Ytr`` and
  ``C = Xval Xtr^T U``; the rest is the same.
* Rational score path (the default whenever it is cheaper, see :func:`_use_rational`): a fold's
  validation error is a rational function of alpha,
  ``||y - C diag(d) b||^2 = ||y||^2 - 2 sum_j d_j b_j (C^T y)_j + b^T diag(d) G diag(d) b``
  with ``G = C^T C``. The partial fractions ``d_j d_k = (d_j - d_k) / (lam_k - lam_j)`` turn
  the quadratic term into ``sum_j d_j^2 F_j + 2 sum_j d_j E_j``, where ``E = b * (G_far b)``
  and ``G_far[j, k] = G[j, k] / (lam_k - lam_j)``. So one ``r x r x n_targets`` product per
  fold (in float64: the partial fractions amplify round-off by ``(lam + alpha) / gap``) replaces
  ``n_alphas`` prediction products, and every alpha costs only ``r x n_targets`` more. Pairs of
  eigenvalues within ``_NEAR`` (1e-8) relative of each other (ties, clipped zeros) keep
  ``d_j d_k ~ d_j^2``. Measured: float64 scores agree with direct float64 predictions to
  ~1e-14 relative, better than forming float32 predictions (~1e-6).
* Direct score path (few alphas, or GPUs whose float64 is slow): predictions alpha by alpha. When
  ``r < n_val`` (e.g. NSD: p=768, n_val=1800) ``C`` is QR-factorised once per fold and residuals
  are formed in its r-dimensional span (``||y - C W B||^2 = ||y||^2 - ||Q^T y||^2 +
  ||Q^T y - R W B||^2``), so the per-alpha cost is ``min(n_val, r) x r x n_targets``.
* Refit: ``coef = V diag(1 / (lam + alpha_t)) V^T X^T y_t`` from the full-data eigenbasis, all
  targets in two products whatever their alphas.
* Eigenvalues are clipped at 0 (float32 round-off makes the smallest ones of an ill-conditioned
  Gram matrix slightly negative); since every alpha is > 0 the solve stays well posed, and
  directions with ``lam ~ 0`` get weight ``~1/alpha`` times a numerically-zero ``B`` row, as in
  himalaya's SVD path. ``eigh_dtype="float64"`` decomposes in double precision for very
  ill-conditioned features (the matmuls stay in ``dtype``).
* Targets are processed in batches of ``n_targets_batch`` (``Y`` stays in host memory, one batch at
  a time goes to the device; the default keeps the working arrays near 1 GiB on CPU, 4 GiB on
  CUDA) and, on the direct path, alphas in batches of ``n_alphas_batch``. Scratch arrays are
  reused across folds (:class:`core.encoding._array.Workspace`). The fold constants add about
  ``5 * (p + n_val) * p`` float32 and, on the rational path, ``5 * r * r`` float64 values.
* ``tf32=True`` allows TF32 tensor-core matmuls on CUDA (10 mantissa bits instead of 23); it is
  ignored on CPU backends. Measured by an earlier prototype of this method on one H200 at NSD
  scale (../shared/docs/platform.md): p=4096 2.28 s -> 0.90 s, p=768 0.40 s -> 0.15 s, test
  correlations unchanged to ~1e-5. Expect the selected alpha to change where two alphas score
  within TF32 round-off of each other. (Not re-measured for this implementation: no GPU was
  available when it was written; ``benchmarks/ridge.py --device cuda`` prints the TF32 row.)
  TF32 touches only float32 products: the rational path's float64 product is unaffected, and
  with TF32 on the cost model weighs float64 at 16x, so at large p (NSD, p=4096) ``"auto"``
  picks the direct path on the GPU.
* Precision: inputs, eigendecompositions, predictions and coefficients are float32 (``dtype``);
  the rational path's ``r x r`` product and its per-alpha sums are float64, because in float32
  its partial fractions lost accuracy (8.6e-6 relative error in the fold errors against 1.4e-6
  for float32 predictions, prototype at n 2000, p 768).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import check_cv

from core.encoding._array import Array, ArrayOps, Workspace, get_ops
from core.encoding.alphas import DEFAULT_CV

SCORINGS = ("neg_mse", "r2")
SCORE_PATHS = ("auto", "rational", "direct")
#: Relative eigenvalue gap below which the rational path treats two directions as one
#: (``d_j d_k ~ d_j^2``, relative error <= _NEAR); wider gaps use partial fractions, whose
#: float64 round-off grows as 1 / gap (<= 1e-16 / _NEAR). 1e-8 balances the two.
_NEAR = 1e-8


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
    rational: _Rational | None = None  # precomputed pieces of the rational score path


@dataclass
class _Rational:
    """Fold constants of the rational score path (all float64, on the device).

    With ``d_j(alpha) = 1 / (lam_j + alpha)`` and ``G = C^T C`` (C = validation rows in the
    eigenbasis), ``||C diag(d) b||^2 = sum_j d_j^2 F_j + 2 sum_j d_j E_j`` where
    ``E_j = b_j sum_{k far from j} G_jk b_k / (lam_k - lam_j)`` and ``F_j = b_j sum_{k near j}
    G_jk b_k`` (partial fractions ``d_j d_k = (d_j - d_k) / (lam_k - lam_j)``; pairs whose
    eigenvalues are within ``_NEAR`` relative of each other keep ``d_j d_k ~ d_j^2``).
    """

    lam: Array  # (r,) eigenvalues, float64
    g_far: Array  # (r, r) G_jk / (lam_k - lam_j) for far pairs, 0 elsewhere
    g_diag: Array  # (r,) diagonal of G
    near_idx: Array | None  # (m,) eigen-indices with an off-diagonal near partner, or None
    g_near: Array | None  # (m, m) G restricted to those near pairs (zero diagonal)


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


def _use_rational(
    score_path: str, r: int, n_val: int, n_alphas: int, float64_cost: float = 2.0,
) -> bool:
    """Whether the rational score path is cheaper than forming predictions per alpha.

    Per target and fold, the direct path costs ``n_alphas * min(n_val, r) * r`` multiply-adds,
    the rational path one float64 ``r x r`` product, weighted by ``float64_cost`` (see
    :meth:`core.encoding._array.ArrayOps.float64_cost`); both need ``C^T y_val``.
    """
    if score_path != "auto":
        return score_path == "rational"
    return float64_cost * r < n_alphas * min(n_val, r)


def _rational_constants(ops: ArrayOps, C: Array, lam: Array, alpha_min: float) -> _Rational:
    """Float64 fold constants of the rational path (see :class:`_Rational`)."""
    c64 = ops.asarray(C, "float64")
    G = ops.to_numpy(c64.T @ c64)
    del c64
    lam64 = ops.to_numpy(lam).astype(np.float64)
    gap = lam64[None, :] - lam64[:, None]  # [j, k] = lam_k - lam_j
    near = np.abs(gap) <= _NEAR * (np.minimum(lam64[:, None], lam64[None, :]) + alpha_min)
    g_far = np.where(near, 0.0, G / np.where(near, 1.0, gap))
    np.fill_diagonal(near, False)
    idx = np.flatnonzero(near.any(1))
    near_idx = g_near = None
    if idx.size:
        near_idx = ops.index(idx)
        g_near = ops.asarray(np.where(near[np.ix_(idx, idx)], G[np.ix_(idx, idx)], 0.0),
                             "float64")
    return _Rational(ops.asarray(lam64, "float64"), ops.asarray(g_far, "float64"),
                     ops.asarray(np.diag(G).copy(), "float64"), near_idx, g_near)


def _decompose_fold(
    ops: ArrayOps, Xd: Array, train: np.ndarray, val: np.ndarray, fit_intercept: bool,
    eigh_dtype: str | None, score_path: str, alphas: np.ndarray, float64_cost: float = 2.0,
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
    rational = None
    if _use_rational(score_path, C.shape[1], C.shape[0], len(alphas), float64_cost):
        rational = _rational_constants(ops, C, lam, float(alphas.min()))
    elif C.shape[1] < C.shape[0]:
        # Fewer eigen-directions than validation rows: score in the r-dimensional span of C.
        Q, C = ops.qr(C)
    return _Fold(va, tr, n_train, kernel, lam, vecs, C, Q, x_val, x_mean, rational)


def _fold_b(
    ops: ArrayOps, fold: _Fold, Yb: Array, H: Array | None, fit_intercept: bool, ws: Workspace,
) -> tuple[Array, Array, Array | None]:
    """Return ``B`` (r, t), the (fold-centred) validation targets (n_val, t) and, on the
    primal rational path, ``C^T y_val`` (r, t) (else None).

    All live in ``ws`` (overwritten by the next fold).
    """
    t = Yb.shape[1]
    y_val = ops.take_rows(Yb, fold.val, ws.get("y_val", (len(fold.val), t)))
    y_mean = None
    if fit_intercept:
        # Yb is centred on all training rows, so the training-fold sum is minus the val sum.
        y_mean = -y_val.sum(0) / fold.n_train
    B = ws.get("B", (fold.vecs.shape[1], t))
    cty = None
    if fold.rational is not None and not fold.kernel:
        # V^T X_tr^T Y_tr = V^T X^T Y - C^T y_val, with C the (fold-centred) validation rows in
        # the eigenbasis and y_val as it is in Yb: the fold centring terms cancel exactly.
        cty = ops.matmul(fold.R.T, y_val, ws.get("cty", (fold.R.shape[1], t)))
        ops.matmul(fold.vecs.T, H, B)
        B -= cty
        if fit_intercept:
            cty -= fold.R.sum(0)[:, None] * y_mean[None, :]  # C^T (y_val - y_mean)
            y_val -= y_mean
        return B, y_val, cty
    if fold.kernel:
        y_tr = Yb[fold.train]
        if fit_intercept:
            y_tr -= y_mean
        ops.matmul(fold.vecs.T, y_tr, B)
        del y_tr
    else:
        h_tr = ops.matmul(fold.x_val.T, y_val, ws.get("h", tuple(H.shape)))
        h_tr *= -1.0
        h_tr += H  # X_tr^T Y_tr = X^T Y - X_val^T Y_val
        if fit_intercept:
            h_tr -= fold.n_train * (fold.x_mean[:, None] * y_mean[None, :])
        ops.matmul(fold.vecs.T, h_tr, B)
    if fit_intercept:
        y_val -= y_mean
    return B, y_val, None


def _fold_scores(
    ops: ArrayOps, fold: _Fold, B: Array, y_val: Array, alphas: Array, n_alphas_batch: int,
    scoring: str, out: Array, ws: Workspace, cty: Array | None = None,
) -> None:
    """Write the scores of one fold, shape (n_alphas, t), into ``out`` (float64).

    Dispatches to the rational path when the fold was prepared for it, else forms the
    validation predictions alpha by alpha (:func:`_direct_sse`).
    """
    if fold.rational is not None:
        sse = _rational_sse(ops, fold, B, y_val, alphas, ws, cty)
    else:
        sse = _direct_sse(ops, fold, B, y_val, alphas, n_alphas_batch)
    n_val = y_val.shape[0]
    if scoring == "neg_mse":
        out[...] = sse * (-1.0 / n_val)
        return
    y64 = ops.asarray(y_val, "float64")
    sst = ops.sq_col_norms(y64 - y64.mean(0))
    r2 = 1.0 - sse / sst[None, :]
    r2[:, sst == 0] = 0.0
    out[...] = r2


def _direct_sse(
    ops: ArrayOps, fold: _Fold, B: Array, y_val: Array, alphas: Array, n_alphas_batch: int,
) -> Array:
    """Validation sums of squared errors by forming predictions, shape (n_alphas, t), float64.

    With ``C = Q R`` (only when ``r < n_val``), ``||y - C W B||^2 = ||y||^2 - ||Q^T y||^2 +
    ||Q^T y - R W B||^2``: the alpha-dependent part is formed in k = min(n_val, r) rows.
    """
    if fold.Q is None:
        z, const = y_val, None
    else:
        z = fold.Q.T @ y_val
        const = ops.sq_col_norms(y_val) - ops.sq_col_norms(z)
    k = fold.R.shape[0]
    sse_all = ops.zeros((len(alphas), y_val.shape[1]), "float64")
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
        sse_all[start:start + na] = ops.asarray(sse, "float64")
    return sse_all


def _rational_sse(
    ops: ArrayOps, fold: _Fold, B: Array, y_val: Array, alphas: Array, ws: Workspace,
    cty: Array | None = None,
) -> Array:
    """Validation sums of squared errors as rational functions of alpha, shape (n_alphas, t).

    ``||y - C diag(d) b||^2 = ||y||^2 + 2 sum_j d_j b_j ((G_far b)_j - (C^T y)_j) +
    sum_j d_j^2 F_j`` (see :class:`_Rational`): one float64 ``r x r x t`` product per fold,
    whatever the number of alphas, then two ``(n_alphas x r) @ (r x t)`` products. The
    alpha-dependent terms are accumulated in float64 (partial fractions amplify round-off where
    eigenvalues are close); ``||y||^2`` is the same for every alpha, so float32 is enough there.
    ``cty`` = ``C^T y_val`` when the caller already has it.
    """
    rat = fold.rational
    r, t = B.shape
    d = 1.0 / (rat.lam[:, None] + ops.asarray(alphas, "float64")[None, :])  # (r, n_alphas)
    b = ops.copy_into(ws.get("b64", (r, t), "float64"), B)
    u = ops.matmul(rat.g_far, b, ws.get("u64", (r, t), "float64"))
    if cty is None:
        cty = ops.matmul(fold.R.T, y_val, ws.get("cty", (r, t)))
    u -= cty  # float32, cast on the fly
    u *= b
    sse = (2.0 * d).T @ u  # (n_alphas, t)
    f = b  # reuse: F = b^2 * diag(G) (+ near pairs), b is not needed any more
    if rat.near_idx is not None:
        bn = b[rat.near_idx]
        near = bn * (rat.g_near @ bn)
    f *= f
    f *= rat.g_diag[:, None]
    if rat.near_idx is not None:
        f[rat.near_idx] += near
    sse += (d * d).T @ f
    sse += ops.asarray(ops.sq_col_norms(y_val), "float64")[None, :]
    return sse


def _default_targets_batch(
    ops: ArrayOps, n_samples: int, n_features: int, splits: list, n_alphas: int,
) -> int:
    """Targets per batch so that the per-batch working arrays stay near 1 GiB (4 GiB on CUDA).

    Per target: Y, the validation rows, X^T Y and two more float32 vectors of length p, two
    float32 and two float64 vectors of the fold rank ``r`` (the rational path), and the
    float64 score table.
    """
    n_train = max(len(tr) for tr, _ in splits)
    n_val = max(len(va) for _, va in splits)
    r = min(n_features, n_train)
    per_target = (4 * (n_samples + n_val + 3 * n_features) + 24 * r
                  + 8 * len(splits) * n_alphas)
    budget = (4 if ops.device == "cuda" else 1) * 2**30
    return max(256, budget // per_target)


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
    score_path: str = "auto",
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
        Targets per batch (memory knob); None = as many as keep the working arrays near
        1 GiB (4 GiB on CUDA), see :func:`_default_targets_batch`.
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
    score_path : {"auto", "rational", "direct"}
        How fold scores are computed: ``"rational"`` evaluates each target's validation error as
        a rational function of alpha (cost independent of the number of alphas), ``"direct"``
        forms the validation predictions alpha by alpha; ``"auto"`` picks the cheaper one per
        fold (:func:`_use_rational`). Both give the same scores to float32 round-off.

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
    if score_path not in SCORE_PATHS:
        raise ValueError(f"unknown score_path {score_path!r}; expected one of {SCORE_PATHS}")
    X, Y = check_xy(X, Y)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError("alphas must be a non-empty array of finite values > 0")
    ops = get_ops(backend, dtype)
    n_samples, n_features = X.shape
    n_targets = Y.shape[1]
    splits = _splits(cv, n_samples)
    n_val_max = max(len(v) for _, v in splits)
    if n_targets_batch is None:
        tb = _default_targets_batch(ops, n_samples, n_features, splits, len(alphas))
    else:
        tb = max(1, int(n_targets_batch))
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
        f64_cost = 1.0 if dtype == "float64" else ops.float64_cost(tf32)
        folds = [_decompose_fold(ops, Xd, tr, va, fit_intercept, eigh_dtype, score_path, alphas,
                                 f64_cost) for tr, va in splits]
        kernel_refit = n_features > n_samples
        gram = Xd @ Xd.T if kernel_refit else Xd.T @ Xd
        lam_all, vecs_all = ops.eigh(gram, eigh_dtype)
        lam_all = lam_all.clip(min=0)
        del gram
        xu = Xd.T @ vecs_all if kernel_refit else None
        need_h = any(not f.kernel for f in folds)
        ws = Workspace(ops)

        for start in range(0, n_targets, tb):
            sl = slice(start, min(start + tb, n_targets))
            Yb = ops.asarray(Y[:, sl])
            if fit_intercept:
                y_offset = Yb.mean(0)
                Yb = Yb - y_offset
            H = Xd.T @ Yb if (need_h or not kernel_refit) else None
            scores = ops.zeros((len(splits), len(alphas), Yb.shape[1]), "float64")
            for k, fold in enumerate(folds):
                B, y_val, cty = _fold_b(ops, fold, Yb, H, fit_intercept, ws)
                _fold_scores(ops, fold, B, y_val, alphas_d, n_alphas_batch, scoring, scores[k],
                             ws, cty)
                del B, y_val, cty
            index, best = _select(ops.to_numpy(scores), alphas)
            best_alphas[sl] = alphas[index].astype(dtype)
            cv_scores[sl] = best
            a_b = alphas_d[ops.index(index)]
            # refit: coef = V diag(1 / (lam + alpha_t)) V^T X^T y_t (kernel: X^T U ... U^T y_t)
            vh = ops.matmul(vecs_all.T, Yb if kernel_refit else H,
                            ws.get("B", (vecs_all.shape[1], Yb.shape[1])))
            w = ops.copy_into(ws.get("w", tuple(vh.shape)), lam_all[:, None])  # broadcast
            w += a_b[None, :]
            vh /= w
            whole = not ops.is_torch and sl.start == 0 and sl.stop == n_targets
            coef_b = ops.matmul(xu if kernel_refit else vecs_all, vh,
                                coef if whole else ws.get("h", (n_features, Yb.shape[1])))
            if not whole:
                coef[:, sl] = ops.to_numpy(coef_b)
            if fit_intercept:
                intercept[sl] = ops.to_numpy(y_offset - x_offset @ coef_b)
            del Yb, H, scores, coef_b
        ws.clear()

    return RidgeCVResult(best_alphas, coef, intercept, cv_scores)
