"""Noise ceilings the NSD way: ncsnr from repeated trials, and NC from ncsnr.

NSD defines, per target, ``ncsnr = signal_sd / noise_sd`` of single-trial responses that were
z-scored within session. With ``n`` trials averaged per image the noise ceiling (fraction of
variance explainable) is ``NC = ncsnr^2 / (ncsnr^2 + 1/n)``; with mixed repetition counts (A images
seen 3 times, B twice, C once) ``1/n`` becomes ``(A/3 + B/2 + C) / (A + B + C)``.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def ncsnr_from_trials(trials: np.ndarray, image_index: np.ndarray | None = None) -> np.ndarray:
    """Estimate ncsnr from repeated trials, as NSD does.

    Parameters
    ----------
    trials : array of shape (n_images, n_repeats, n_targets) or (n_trials, n_targets)
        Single-trial responses, each target z-scored (NSD z-scores within session). The 2-D form
        allows mixed repetition counts and needs ``image_index``.
    image_index : array of shape (n_trials,), optional
        Image of each trial (2-D form only).

    Returns
    -------
    ncsnr : array of shape (n_targets,), float32
        ``sqrt(max(1 - noise_var, 0)) / sqrt(noise_var)``, where ``noise_var`` is the pooled
        within-image variance (ddof=1) over images with at least two trials.
    """
    trials = np.asarray(trials, dtype=np.float64)
    if trials.ndim == 3:
        n_img, n_rep, n_t = trials.shape
        if n_rep < 2:
            raise ValueError(f"need >= 2 repeats per image, got trials of shape {trials.shape}")
        image_index = np.repeat(np.arange(n_img), n_rep)
        trials = trials.reshape(n_img * n_rep, n_t)
    elif trials.ndim != 2 or image_index is None or len(image_index) != trials.shape[0]:
        raise ValueError("2-D trials need an image_index of one entry per trial")
    image_index = np.asarray(image_index)
    z = (trials - trials.mean(0)) / np.maximum(trials.std(0), 1e-12)
    _, inverse, counts = np.unique(image_index, return_inverse=True, return_counts=True)
    indicator = sparse.csr_matrix(
        (np.ones(inverse.size), (inverse, np.arange(inverse.size))),
        shape=(counts.size, inverse.size),
    )
    sums = indicator @ z
    means = sums / counts[:, None]
    resid_ss = ((z - means[inverse]) ** 2).sum(0)
    dof = int((counts - 1).sum())
    if dof == 0:
        raise ValueError("no image has two or more trials: ncsnr cannot be estimated")
    noise_var = resid_ss / dof
    signal_var = np.maximum(1.0 - noise_var, 0.0)
    return (np.sqrt(signal_var) / np.sqrt(np.maximum(noise_var, 1e-12))).astype(np.float32)


def effective_inverse_repeats(n_repeats: float | np.ndarray) -> float:
    """The ``1/n`` term of the NC formula for one or mixed repetition counts.

    Parameters
    ----------
    n_repeats : float or array of shape (n_images,)
        Trials averaged per image; an array gives ``mean(1 / n_i)``, which equals NSD's
        ``(A/3 + B/2 + C) / (A + B + C)``.
    """
    n = np.asarray(n_repeats, dtype=np.float64).ravel()
    if n.size == 0 or not np.all(np.isfinite(n)) or np.any(n < 1) or np.any(n != np.round(n)):
        raise ValueError("n_repeats must be integers >= 1 (trials averaged per image)")
    return float(np.mean(1.0 / n))


def noise_ceiling_from_ncsnr(ncsnr: np.ndarray, n_repeats: float | np.ndarray = 3.0) -> np.ndarray:
    """Noise ceiling as a fraction of variance (0..1) from ncsnr.

    Parameters
    ----------
    ncsnr : array of shape (n_targets,)
    n_repeats : float or array of shape (n_images,)
        Trials averaged per test image (see :func:`effective_inverse_repeats`).

    Returns
    -------
    nc : array of shape (n_targets,), float32
        ``ncsnr^2 / (ncsnr^2 + 1/n)``; multiply by 100 for NSD's NC%.
    """
    s = np.asarray(ncsnr, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("ncsnr must be finite and >= 0")
    s2 = s**2
    inv_n = effective_inverse_repeats(n_repeats)
    return (s2 / (s2 + inv_n)).astype(np.float32)
