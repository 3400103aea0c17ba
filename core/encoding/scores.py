"""Per-target test-set scores and noise-ceiling normalisation.

Conventions
-----------
* Inputs are arrays of shape (n_samples, n_targets) (1-D means one target).
* The noise ceiling ``nc`` is a **fraction** of explainable variance in (0, 1] (NSD's NC% / 100).
* Correlation scale: ``r / sqrt(nc)`` (the paper's "normalized brain alignment"; not capped,
  values slightly above 1 are estimation noise).
* Variance scale (Algonauts 2023): ``100 * max(r, 0)**2 / nc``, capped at 100 (percent of the
  explainable variance).
* Bad input never becomes a silent NaN: NaN/inf, mismatched shapes, constant true responses or
  fewer than ``min_samples`` test rows raise ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Fewest test rows a score is computed from (a correlation over fewer is meaningless).
MIN_TEST_SAMPLES = 10


def check_pair(
    y_true: Any, y_pred: Any, min_samples: int = MIN_TEST_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (responses, predictions) pair and return float64 2-D arrays.

    Raises
    ------
    ValueError
        Different shapes, more than 2 dimensions, fewer than ``min_samples`` rows, NaN/inf, or
        true responses constant over the test rows (naming how many targets).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.ndim != 2 or y_true.shape != y_pred.shape:
        raise ValueError(
            f"responses and predictions must have the same 2-D shape, got {y_true.shape} "
            f"and {y_pred.shape}"
        )
    if y_true.shape[0] < min_samples:
        raise ValueError(
            f"too few test samples: {y_true.shape[0]} < min_samples={min_samples}"
        )
    for name, arr in (("responses", y_true), ("predictions", y_pred)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contain non-finite values (NaN or inf)")
    const = np.ptp(y_true, axis=0) == 0
    if const.any():
        idx = np.flatnonzero(const)
        raise ValueError(
            f"{idx.size} target(s) have constant responses over the test set "
            f"(first: {idx[:10].tolist()}); their correlation is undefined"
        )
    return y_true, y_pred


def pearson_r(y_true: Any, y_pred: Any, min_samples: int = MIN_TEST_SAMPLES) -> np.ndarray:
    """Per-target Pearson correlation between responses and predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples, n_targets) or (n_samples,)
    min_samples : int

    Returns
    -------
    r : ndarray of shape (n_targets,)
        A target whose predictions are constant gets r = 0 (no linear relation predicted).
    """
    y_true, y_pred = check_pair(y_true, y_pred, min_samples)
    a = y_true - y_true.mean(0)
    b = y_pred - y_pred.mean(0)
    denom = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    num = (a * b).sum(0)
    r = np.zeros_like(num)
    ok = denom > 0
    r[ok] = num[ok] / denom[ok]
    return np.clip(r, -1.0, 1.0)


def r2_score(y_true: Any, y_pred: Any, min_samples: int = MIN_TEST_SAMPLES) -> np.ndarray:
    """Per-target coefficient of determination ``1 - SSE / SST`` (can be negative).

    Same as ``sklearn.metrics.r2_score(..., multioutput="raw_values")``.

    Returns
    -------
    r2 : ndarray of shape (n_targets,)
    """
    y_true, y_pred = check_pair(y_true, y_pred, min_samples)
    sse = ((y_true - y_pred) ** 2).sum(0)
    sst = ((y_true - y_true.mean(0)) ** 2).sum(0)
    return 1.0 - sse / sst


def _check_nc(nc: Any, n_targets: int) -> np.ndarray:
    nc = np.asarray(nc, dtype=np.float64)
    if nc.ndim == 0:
        nc = np.full(n_targets, float(nc))
    if nc.shape != (n_targets,):
        raise ValueError(f"noise ceiling has shape {nc.shape}, expected ({n_targets},)")
    if not np.all(np.isfinite(nc)) or np.any(nc <= 0) or np.any(nc > 1):
        bad = int(np.sum(~np.isfinite(nc) | (nc <= 0) | (nc > 1)))
        raise ValueError(
            f"{bad} noise-ceiling value(s) outside (0, 1]: pass NC as a fraction (NC% / 100) "
            "and drop targets without a ceiling first (see core.encoding.ceiling.ceiling_mask)"
        )
    return nc


def normalize_correlation(r: Any, nc: Any) -> np.ndarray:
    """Normalised alignment on the correlation scale, ``r / sqrt(nc)``.

    Parameters
    ----------
    r : array-like of shape (n_targets,)
    nc : float or array-like of shape (n_targets,)
        Noise ceiling as a fraction in (0, 1].

    Returns
    -------
    normalized : ndarray of shape (n_targets,), not capped.
    """
    r = np.asarray(r, dtype=np.float64).ravel()
    if not np.all(np.isfinite(r)):
        raise ValueError("r contains non-finite values")
    return r / np.sqrt(_check_nc(nc, r.size))


def normalize_variance(r: Any, nc: Any) -> np.ndarray:
    """Normalised alignment on the variance scale, ``100 * max(r, 0)**2 / nc`` capped at 100.

    Parameters
    ----------
    r : array-like of shape (n_targets,)
    nc : float or array-like of shape (n_targets,)
        Noise ceiling as a fraction in (0, 1].

    Returns
    -------
    percent : ndarray of shape (n_targets,), in [0, 100].
    """
    r = np.asarray(r, dtype=np.float64).ravel()
    if not np.all(np.isfinite(r)):
        raise ValueError("r contains non-finite values")
    return np.minimum(100.0 * np.maximum(r, 0.0) ** 2 / _check_nc(nc, r.size), 100.0)
