"""Tiny seeded data and backend list for the encoding tests."""

from __future__ import annotations

import numpy as np
import pytest


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


CUDA = _cuda()

BACKENDS = [
    "numpy",
    "torch",
    pytest.param("torch_cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA GPU")),
]




def make_regression(
    n: int = 300, p: int = 40, t: int = 400, *, n_test: int = 100, seed: int = 0,
    ill_conditioned: bool = False, near_rank_deficient: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear targets with SNRs spread from none to high; float32.

    ``ill_conditioned``: singular values of X decay over 3 decades in a random basis
    (condition number of X^T X ~ 1e6). ``near_rank_deficient``: X is rank 5 plus 1e-3 noise
    with column scales over 3 decades (condition number of X^T X ~ 1e12); there the CV curves
    are so flat that float32 round-off decides ~1% of the alphas (himalaya in float32 versus
    himalaya in float64 too).

    Returns
    -------
    X_train (n, p), Y_train (n, t), X_test (n_test, p), Y_test (n_test, t)
    """
    rng = np.random.default_rng(seed)
    m = n + n_test
    if ill_conditioned:
        Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
        X = (rng.standard_normal((m, p)) * np.logspace(0, -3, p)) @ Q * 30
    elif near_rank_deficient:
        X = rng.standard_normal((m, 5)) @ rng.standard_normal((5, p))
        X += 1e-3 * rng.standard_normal((m, p))
        X *= np.logspace(0, 3, p)[None, :] / 100
    else:
        X = rng.standard_normal((m, p))
    W = rng.standard_normal((p, t)) / np.sqrt(p)
    signal = X @ W
    signal /= signal.std(0)
    snr = np.linspace(0, 1.5, t)
    Y = snr * signal + rng.standard_normal((m, t))
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    return X[:n], Y[:n], X[n:], Y[n:]
