"""Variance partitioning between two feature spaces, and best-feature-space maps.

For feature spaces A and B, with test-set R2 of models fitted on A, B and both:
``unique_A = R2_AB - R2_B``, ``unique_B = R2_AB - R2_A``, ``shared = R2_A + R2_B - R2_AB``
(per target). The joint model is either ridge on the concatenation ``[A, B]`` (one alpha per
target, our solver) or himalaya's banded ridge (``BandedRidgeCV``: one regularisation per
feature space and target, found by random search), which does not let the bigger or noisier
space dominate the joint fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.encoding.alphas import DEFAULT_CV, alpha_grid
from core.encoding.estimator import RidgeEncoder
from core.encoding.scores import r2_score
from core.encoding.standardize import Standardizer

JOINT_METHODS = ("concat", "banded")


@dataclass
class Partition:
    """Per-target variance partition (arrays of shape (n_targets,), test-set R2 units)."""

    r2_a: np.ndarray
    r2_b: np.ndarray
    r2_ab: np.ndarray
    unique_a: np.ndarray
    unique_b: np.ndarray
    shared: np.ndarray


def partition_from_r2(r2_a: Any, r2_b: Any, r2_ab: Any) -> Partition:
    """Unique and shared variance from the three test-set R2 arrays of shape (n_targets,)."""
    r2_a, r2_b, r2_ab = (np.asarray(v, dtype=np.float64).ravel() for v in (r2_a, r2_b, r2_ab))
    if not (r2_a.shape == r2_b.shape == r2_ab.shape):
        raise ValueError(f"R2 arrays differ in shape: {r2_a.shape}, {r2_b.shape}, {r2_ab.shape}")
    return Partition(r2_a, r2_b, r2_ab, r2_ab - r2_b, r2_ab - r2_a, r2_a + r2_b - r2_ab)


def _banded_r2(
    xa: tuple[np.ndarray, np.ndarray], xb: tuple[np.ndarray, np.ndarray],
    y: tuple[np.ndarray, np.ndarray], alphas: np.ndarray, cv: Any, n_iter: int, seed: int,
    backend: str,
) -> np.ndarray:
    from himalaya.backend import get_backend, set_backend
    from himalaya.ridge import BandedRidgeCV

    from core.backend import resolve_backend

    previous = get_backend().name
    hb = set_backend(resolve_backend(backend), on_error="raise")
    try:
        model = BandedRidgeCV(
            groups="input", cv=cv, random_state=seed,
            solver_params=dict(n_iter=n_iter, alphas=alphas, progress_bar=False, warn=False),
        )
        model.fit([xa[0], xb[0]], y[0])
        pred = hb.to_numpy(model.predict([xa[1], xb[1]]))
    finally:
        set_backend(previous)
    return r2_score(y[1], pred)


def variance_partition(
    xa_train: Any, xb_train: Any, y_train: Any, xa_test: Any, xb_test: Any, y_test: Any,
    *, joint: str = "concat", alphas: Any = "paper", cv: Any = DEFAULT_CV,
    backend: str = "auto", banded_n_iter: int = 20, seed: int = 0, solver: str = "eigh",
) -> Partition:
    """Fit A, B and the joint model on the train split; partition test-set R2 per target.

    Features and responses are z-scored with training statistics (each space separately).

    Parameters
    ----------
    xa_train, xb_train : array-like of shape (n_train, p_a), (n_train, p_b)
    y_train : array-like of shape (n_train, n_targets)
    xa_test, xb_test : array-like of shape (n_test, p_a), (n_test, p_b)
    y_test : array-like of shape (n_test, n_targets)
    joint : {"concat", "banded"}
        How the joint model is fitted (see module docstring).
    alphas : {"paper", "fast"} or array-like
    cv : int or splitter
    backend : {"auto", "numpy", "torch", "torch_cuda"}
    banded_n_iter : int
        Random-search iterations of the banded model (himalaya's default is 100).
    seed : int
        Seed of the banded random search.
    solver : {"eigh", "himalaya"}
        Ridge solver of the A, B and concatenated fits (see
        :class:`~core.encoding.estimator.RidgeEncoder`).

    Returns
    -------
    Partition
    """
    if joint not in JOINT_METHODS:
        raise ValueError(f"unknown joint method {joint!r}; expected one of {JOINT_METHODS}")
    for name, tr, te in (("A", xa_train, xa_test), ("B", xb_train, xb_test),
                         ("Y", y_train, y_test)):
        if np.shape(tr)[0] != np.shape(y_train)[0] or np.shape(te)[0] != np.shape(y_test)[0]:
            raise ValueError(f"{name}: rows do not match the responses of the same split")
    grid = alpha_grid(alphas)
    sa, sb = Standardizer("zero").fit(xa_train, "A"), Standardizer("zero").fit(xb_train, "B")
    sy = Standardizer("error").fit(y_train, "responses")
    xa = (sa.transform(xa_train), sa.transform(xa_test))
    xb = (sb.transform(xb_train), sb.transform(xb_test))
    y = (sy.transform(y_train), sy.transform(y_test))

    def fit_r2(xtr: np.ndarray, xte: np.ndarray) -> np.ndarray:
        enc = RidgeEncoder(alphas=grid, cv=cv, standardize=False, backend=backend, solver=solver)
        return r2_score(y[1], enc.fit(xtr, y[0]).predict(xte))

    r2_a = fit_r2(*xa)
    r2_b = fit_r2(*xb)
    if joint == "concat":
        r2_ab = fit_r2(np.hstack([xa[0], xb[0]]), np.hstack([xa[1], xb[1]]))
    else:
        r2_ab = _banded_r2(xa, xb, y, grid.astype(np.float32), cv, banded_n_iter, seed, backend)
    return partition_from_r2(r2_a, r2_b, r2_ab)


def best_feature_space(
    scores: Mapping[str, Any] | Sequence[Any], names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per target, the feature space (e.g. instruction) with the highest score.

    Parameters
    ----------
    scores : mapping name -> array of shape (n_targets,), or array of shape (n_spaces, n_targets)
    names : sequence of str, optional
        Names of the rows when ``scores`` is an array (default ``"0", "1", ...``).

    Returns
    -------
    best : ndarray of shape (n_targets,), dtype object-free str (``<U``)
        Name of the best space per target (ties go to the first).
    margin : ndarray of shape (n_targets,)
        Best minus second-best score (0 with a single space).
    """
    if isinstance(scores, Mapping):
        names = list(scores)
        mat = np.stack([np.asarray(scores[k], dtype=np.float64).ravel() for k in names])
    else:
        mat = np.asarray(scores, dtype=np.float64)
        if mat.ndim != 2:
            raise ValueError(f"scores must be (n_spaces, n_targets), got shape {mat.shape}")
        names = list(names) if names is not None else [str(i) for i in range(mat.shape[0])]
    if len(names) != mat.shape[0] or mat.shape[0] == 0:
        raise ValueError("need one name per feature space, and at least one space")
    if not np.all(np.isfinite(mat)):
        raise ValueError("scores contain non-finite values")
    idx = mat.argmax(0)
    srt = np.sort(mat, axis=0)
    margin = srt[-1] - srt[-2] if mat.shape[0] > 1 else np.zeros(mat.shape[1])
    return np.asarray(names)[idx], margin


def partition_shares(parts: dict[str, float]) -> dict[str, float]:
    """Shares of the explained variance from the non-negative parts.

    Unique parts estimated on the test set can be negative (the joint model predicted worse
    than one space alone: noise, or the joint fit's heavier regularisation). A share of a total
    that includes negative parts can exceed 1 or be negative, so negative parts are counted as
    0 in the total and get share 0; report them as negative beside the shares.

    Parameters
    ----------
    parts : dict of str to float
        E.g. ``{"unique IC": 0.02, "shared": 0.05, "unique IU2": -0.01}``.

    Returns
    -------
    shares : dict of str to float
        Same keys, summing to 1 (all NaN when no part is positive).
    """
    clipped = {k: max(float(v), 0.0) if np.isfinite(v) else 0.0 for k, v in parts.items()}
    total = sum(clipped.values())
    return {k: (v / total if total > 0 else np.nan) for k, v in clipped.items()}
