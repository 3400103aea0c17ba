"""Noise ceilings: from NSD's ncsnr, and a cross-subject (Schrimpf-style) ceiling.

All ceilings are returned as **fractions** of explainable variance in [0, 1]
(NSD's NC% divided by 100), the unit :mod:`core.encoding.scores` expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core.data.noise_ceiling import effective_inverse_repeats, noise_ceiling_from_ncsnr

#: The NC formula lives with the data (one implementation); re-exported here for encoding code.
noise_term = effective_inverse_repeats
nc_from_ncsnr = noise_ceiling_from_ncsnr


def ceiling_mask(nc: Any, min_nc: float = 0.0) -> np.ndarray:
    """Targets with a usable ceiling: finite and ``nc > min_nc`` (bool, shape (n_targets,))."""
    nc = np.asarray(nc, dtype=np.float64)
    return np.isfinite(nc) & (nc > min_nc)


def cross_subject_ceiling(
    responses: Mapping[str, Any],
    subject: str,
    *,
    alphas: Any = "fast",
    n_splits: int = 5,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Predict one subject's responses from the other subjects' (shared images; Schrimpf-style).

    The other subjects' responses, concatenated over targets, are the features of a ridge
    encoder (:class:`core.encoding.estimator.RidgeEncoder`: train-only z-scoring, one CV alpha
    per target); predictions are made out of fold over ``n_splits`` contiguous folds of the
    shared images and correlated with the subject's responses.

    Parameters
    ----------
    responses : mapping of subject -> array of shape (n_shared, n_targets_s)
        Responses to the same shared images, in the same row order, for >= 2 subjects.
    subject : str
        The subject whose ceiling is computed.
    alphas : {"paper", "fast"} or array-like
    n_splits : int
        Outer folds over the shared images.
    backend : {"auto", "numpy", "torch", "torch_cuda"}

    Returns
    -------
    r_ceiling : ndarray of shape (n_targets_subject,)
        Out-of-fold Pearson r.
    nc : ndarray of shape (n_targets_subject,)
        ``max(r_ceiling, 0)**2``: the ceiling as a fraction, usable with
        :func:`core.encoding.scores.normalize_correlation` (which then divides by r_ceiling).
    """
    from sklearn.model_selection import KFold

    from core.encoding.estimator import RidgeEncoder
    from core.encoding.scores import pearson_r

    if subject not in responses:
        raise ValueError(f"subject {subject!r} not in responses ({sorted(responses)})")
    others = [s for s in responses if s != subject]
    if not others:
        raise ValueError("cross-subject ceiling needs at least 2 subjects")
    Y = np.asarray(responses[subject])
    n = Y.shape[0]
    for s in others:
        if np.asarray(responses[s]).shape[0] != n:
            raise ValueError(
                f"subject {s!r} has {np.asarray(responses[s]).shape[0]} shared rows, "
                f"subject {subject!r} has {n}: rows must be the same images in the same order"
            )
    X = np.concatenate([np.asarray(responses[s]) for s in others], axis=1)
    pred = np.empty(Y.shape, dtype=np.float64)
    for train, test in KFold(n_splits).split(X):
        enc = RidgeEncoder(alphas=alphas, backend=backend).fit(X[train], Y[train])
        pred[test] = enc.predict(X[test])
    r = pearson_r(Y, pred)
    return r, np.maximum(r, 0.0) ** 2
