"""Representational similarity analysis (RSA) per ROI, its noise ceiling, and ranking agreement.

A second metric beside the voxelwise encoders: models are known to rank differently under
encoding and RSA, so an instruction ranking is checked under both.

* RDM (:func:`rdm`): ``1 - Pearson r`` between the patterns of every pair of test images,
  the upper triangle (``i < j``, row-major, the order of ``scipy.spatial.distance.pdist``),
  shape ``(n_images * (n_images - 1) / 2,)``.
* RSA score (:func:`rsa_score`): Spearman correlation between the ROI's RDM (patterns over the
  ROI's targets) and the embedding RDM (patterns over embedding dimensions).
* Noise-ceiling analog (:func:`rdm_reliability`), from per-repeat responses: the repeats of each
  image are split at random into two halves (``k // 2`` and ``k - k // 2`` of its ``k``
  finite repeats), each half is averaged, an RDM is made per half and the two are
  Spearman-correlated; this split-half reliability is averaged over ``n_splits`` random
  splits and stepped up to the full number of repeats by Spearman-Brown,
  ``rel = 2 rho / (1 + rho)`` (exact for equal halves of a Pearson reliability; an
  approximation for Spearman and for the unequal halves of an odd repeat count). A model RDM
  cannot correlate with the measured RDM beyond about ``sqrt(rel)`` (attenuation), so
  ``ceiling = sqrt(max(rel, 0))`` and ``normalized = rsa / ceiling``, the analog of
  ``r / sqrt(NC)`` of the encoders. Images with fewer than 2 finite repeats are left out of
  the ceiling.
* Ranking agreement (:func:`ranking_agreement`): Kendall's tau-b between the instruction
  rankings by two metrics (e.g. encoding alignment vs RSA) per ROI; :func:`flag_flips` marks
  ROIs whose rankings disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Fewest images an RDM is made from (3 images give 3 pairs).
MIN_IMAGES = 3


# --------------------------------------------------------------------------- RDMs


def rdm(patterns: Any) -> np.ndarray:
    """Correlation-distance RDM of image patterns, upper triangle.

    Parameters
    ----------
    patterns : array-like of shape (n_images, n_features)
        One row per image (ROI responses over targets, or an embedding).

    Returns
    -------
    distances : ndarray of shape (n_images * (n_images - 1) // 2,), float64
        ``1 - pearson(patterns[i], patterns[j])`` for ``i < j`` in row-major order (the order
        of ``scipy.spatial.distance.pdist``), in [0, 2].

    Raises
    ------
    ValueError
        Not 2-D, fewer than 3 images or 2 features, non-finite values, or an image whose
        pattern is constant (its correlation is undefined).
    """
    x = np.asarray(patterns, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < MIN_IMAGES or x.shape[1] < 2:
        raise ValueError(
            f"patterns must be 2-D (n_images >= {MIN_IMAGES}, n_features >= 2), got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("patterns contain non-finite values (NaN or inf)")
    x = x - x.mean(1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    if np.any(norm == 0):
        bad = np.flatnonzero(norm == 0)
        raise ValueError(
            f"{bad.size} image(s) have a constant pattern (first: {bad[:10].tolist()}); "
            "their correlation distance is undefined"
        )
    z = x / norm[:, None]
    iu = np.triu_indices(x.shape[0], k=1)
    return np.clip(1.0 - (z @ z.T)[iu], 0.0, 2.0)


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks, centred and scaled to unit norm (so a dot product is Spearman's rho)."""
    r = stats.rankdata(v)
    r -= r.mean()
    norm = np.sqrt(r @ r)
    if norm == 0:
        raise ValueError("an RDM is constant: its rank correlation is undefined")
    return r / norm


def rsa_score(rdm_a: Any, rdm_b: Any) -> float:
    """Spearman correlation of two RDMs (equal to ``scipy.stats.spearmanr``).

    Parameters
    ----------
    rdm_a, rdm_b : array-like of shape (n_pairs,)
        Upper triangles from :func:`rdm` over the same images in the same order.

    Returns
    -------
    rho : float in [-1, 1]
    """
    a = np.asarray(rdm_a, dtype=np.float64).ravel()
    b = np.asarray(rdm_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"RDMs differ in length: {a.size} != {b.size} (different image sets?)")
    return float(np.clip(_ranks(a) @ _ranks(b), -1.0, 1.0))


# --------------------------------------------------------------------------- per ROI


def _check_masks(masks: Mapping[str, Any], n_targets: int) -> dict[str, np.ndarray]:
    if not masks:
        raise ValueError("no ROI masks given")
    out = {}
    for name, mask in masks.items():
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (n_targets,):
            raise ValueError(f"mask {name!r} must be bool of shape ({n_targets},)")
        if m.sum() < 2:
            raise ValueError(f"ROI {name!r} has fewer than 2 targets: no pattern to correlate")
        out[str(name)] = m
    return out


def _as_embeddings(embeddings: Any) -> dict[str, Any]:
    if isinstance(embeddings, Mapping):
        if not embeddings:
            raise ValueError("no embeddings given")
        return {str(k): v for k, v in embeddings.items()}
    return {"embedding": embeddings}


def roi_rsa(
    responses: Any,
    embeddings: Any,
    masks: Mapping[str, Any],
    *,
    repeats: Any = None,
    n_splits: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """RSA score per (instruction, ROI): Spearman of the ROI's RDM with the embedding RDM.

    Parameters
    ----------
    responses : array-like of shape (n_images, n_targets)
        Test responses (repeat-averaged), one row per image.
    embeddings : array-like of shape (n_images, n_features), or a mapping instruction name ->
        such an array
        Response embeddings of the same images in the same order.
    masks : mapping of ROI name -> bool array of shape (n_targets,)
    repeats : array-like of shape (n_repeats, n_images, n_targets), optional
        Per-repeat responses (NaN where an image has fewer repeats); adds the noise-ceiling
        columns (see :func:`rdm_reliability`).
    n_splits, seed : int
        Random split-halves of the repeats, and their seed.

    Returns
    -------
    DataFrame, one row per (instruction, ROI), columns
        instruction, roi, n_targets, n_images, rsa; with ``repeats`` also reliability,
        ceiling (``sqrt(max(reliability, 0))``) and normalized (``rsa / ceiling``, NaN where the
        ceiling is 0).
    """
    y = np.asarray(responses, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"responses must be 2-D (n_images, n_targets), got {y.shape}")
    rois = _check_masks(masks, y.shape[1])
    model_rdms = {}
    for name, emb in _as_embeddings(embeddings).items():
        e = np.asarray(emb)
        if e.ndim != 2 or e.shape[0] != y.shape[0]:
            raise ValueError(
                f"embeddings {name!r} have shape {e.shape}; expected ({y.shape[0]}, n_features)"
            )
        model_rdms[name] = _ranks(rdm(e))
    ceilings = None if repeats is None else rdm_reliability(repeats, masks, n_splits, seed)
    rows = []
    for roi, m in rois.items():
        brain = _ranks(rdm(y[:, m]))
        for name, model in model_rdms.items():
            row = {"instruction": name, "roi": roi, "n_targets": int(m.sum()),
                   "n_images": y.shape[0], "rsa": float(np.clip(brain @ model, -1, 1))}
            if ceilings is not None:
                c = ceilings.loc[ceilings.roi == roi].iloc[0]
                row["reliability"] = float(c.reliability)
                row["ceiling"] = float(c.ceiling)
                row["normalized"] = row["rsa"] / c.ceiling if c.ceiling > 0 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- noise ceiling


def _check_repeats(repeats: Any) -> tuple[np.ndarray, np.ndarray]:
    """Repeats (n_repeats, n_images, n_targets) float64 and the finite-repeat mask
    (n_images, n_repeats) of images with >= 2 finite repeats (others dropped)."""
    r = np.asarray(repeats, dtype=np.float64)
    if r.ndim != 3 or r.shape[0] < 2:
        raise ValueError(
            f"repeats must have shape (n_repeats >= 2, n_images, n_targets), got {r.shape}"
        )
    finite = np.isfinite(r)
    whole = finite.all(2)  # (n_repeats, n_images): a repeat counts if finite on every target
    if np.any(finite.any(2) & ~whole):
        raise ValueError("a repeat is finite on some targets and not others: mark whole repeats")
    return r, whole.T


def split_half_means(
    repeats: np.ndarray, available: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random split of every image's repeats into two halves, averaged per half.

    Parameters
    ----------
    repeats : ndarray of shape (n_repeats, n_images, n_targets)
    available : bool ndarray of shape (n_images, n_repeats)
        Finite repeats; every image must have >= 2.
    rng : numpy Generator

    Returns
    -------
    half_a, half_b : ndarrays of shape (n_images, n_targets)
        Means of ``k // 2`` and ``k - k // 2`` of each image's ``k`` repeats.
    """
    keys = np.where(available, rng.random(available.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    k = available.sum(1, keepdims=True)
    in_a = rank < k // 2
    in_b = (rank >= k // 2) & available
    vals = np.nan_to_num(repeats)
    half_a = np.einsum("ri,rit->it", in_a.T.astype(np.float64), vals) / in_a.sum(1)[:, None]
    half_b = np.einsum("ri,rit->it", in_b.T.astype(np.float64), vals) / in_b.sum(1)[:, None]
    return half_a, half_b


def rdm_reliability(
    repeats: Any, masks: Mapping[str, Any], n_splits: int = 20, seed: int = 0
) -> pd.DataFrame:
    """Split-half reliability of each ROI's RDM (Spearman-Brown corrected) and its ceiling.

    Parameters
    ----------
    repeats : array-like of shape (n_repeats, n_images, n_targets)
        Per-repeat responses; NaN marks a missing repeat of an image (the whole row of targets).
    masks : mapping of ROI name -> bool array of shape (n_targets,)
    n_splits : int
        Random split-halves averaged (>= 1).
    seed : int

    Returns
    -------
    DataFrame, one row per ROI, columns
        roi, n_images (with >= 2 repeats, used), split_half (mean Spearman between the half
        RDMs), reliability (``2 s / (1 + s)``), ceiling (``sqrt(max(reliability, 0))``).
    """
    if n_splits < 1:
        raise ValueError("n_splits must be >= 1")
    r, available = _check_repeats(repeats)
    keep = available.sum(1) >= 2
    if keep.sum() < MIN_IMAGES:
        raise ValueError(
            f"only {int(keep.sum())} image(s) have >= 2 repeats; the ceiling needs {MIN_IMAGES}"
        )
    r, available = r[:, keep], available[keep]
    rois = _check_masks(masks, r.shape[2])
    rng = np.random.default_rng(seed)
    split = {roi: 0.0 for roi in rois}
    for _ in range(n_splits):
        half_a, half_b = split_half_means(r, available, rng)
        for roi, m in rois.items():
            split[roi] += rsa_score(rdm(half_a[:, m]), rdm(half_b[:, m])) / n_splits
    rows = []
    for roi, s in split.items():
        rel = 2 * s / (1 + s) if s > -1 else -1.0
        rows.append({"roi": roi, "n_images": int(keep.sum()), "split_half": s,
                     "reliability": rel, "ceiling": float(np.sqrt(max(rel, 0.0)))})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- rankings


def _score_table(scores: Any, name: str) -> pd.DataFrame:
    t = pd.DataFrame(scores)
    if t.empty:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(t.to_numpy(dtype=np.float64))):
        raise ValueError(f"{name} contains non-finite scores")
    return t


def discordant_pairs(a: Mapping[str, float], b: Mapping[str, float]) -> list[tuple[str, str]]:
    """Instruction pairs the two metrics order oppositely (ties in either are not discordant).

    Parameters
    ----------
    a, b : mapping of instruction -> score (same instructions)

    Returns
    -------
    list of (x, y)
        ``x`` scores above ``y`` under ``a`` and below it under ``b``.
    """
    if set(a) != set(b):
        raise ValueError(f"instructions differ: {sorted(set(a) ^ set(b))}")
    out = []
    for x, y in combinations(sorted(a), 2):
        s = np.sign(a[x] - a[y]) * np.sign(b[x] - b[y])
        if s < 0:
            out.append((x, y) if a[x] > a[y] else (y, x))
    return out


def ranking_agreement(scores_a: Any, scores_b: Any) -> pd.DataFrame:
    """Kendall's tau-b between two instruction rankings, per ROI.

    Parameters
    ----------
    scores_a, scores_b : DataFrame (index instruction, columns ROI) or mapping ROI ->
        mapping instruction -> score
        E.g. encoding alignment and RSA; same instructions and ROIs in both (>= 2
        instructions).

    Returns
    -------
    DataFrame, one row per ROI, columns
        roi, n_instructions, tau (``scipy.stats.kendalltau``, tau-b), p (two-sided; exact for
        small counts without ties), top_a, top_b (best instruction under each), top_agrees,
        n_discordant (pairs ordered oppositely), n_pairs.
    """
    a, b = _score_table(scores_a, "scores_a"), _score_table(scores_b, "scores_b")
    if set(a.columns) != set(b.columns) or set(a.index) != set(b.index):
        raise ValueError("scores_a and scores_b must have the same instructions and ROIs")
    if len(a.index) < 2:
        raise ValueError("a ranking needs at least 2 instructions")
    rows = []
    for roi in a.columns:
        va, vb = a[roi], b[roi].reindex(a.index)
        res = stats.kendalltau(va.to_numpy(), vb.to_numpy())
        n = len(va)
        rows.append({
            "roi": roi, "n_instructions": n, "tau": float(res.statistic),
            "p": float(res.pvalue), "top_a": va.idxmax(), "top_b": vb.idxmax(),
            "top_agrees": va.idxmax() == vb.idxmax(),
            "n_discordant": len(discordant_pairs(va.to_dict(), vb.to_dict())),
            "n_pairs": n * (n - 1) // 2,
        })
    return pd.DataFrame(rows)


def flag_flips(agreement: pd.DataFrame, max_tau: float = 0.0) -> pd.DataFrame:
    """Mark ROIs whose two instruction rankings disagree.

    Parameters
    ----------
    agreement : DataFrame from :func:`ranking_agreement`
    max_tau : float
        A ranking counts as flipped when its tau is at or below this (default 0: the metrics
        order at least as many instruction pairs oppositely as alike). NaN tau (a constant
        ranking) is not flagged.

    Returns
    -------
    DataFrame
        ``agreement`` with columns flip (``tau <= max_tau``), winner_changed (``not
        top_agrees``) and flagged (either).
    """
    out = agreement.copy()
    out["flip"] = out["tau"].to_numpy() <= max_tau
    out["winner_changed"] = ~out["top_agrees"].astype(bool)
    out["flagged"] = out["flip"] | out["winner_changed"]
    return out
