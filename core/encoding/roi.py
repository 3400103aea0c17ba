"""ROI masks and summaries of per-target scores (per subject, then across subjects)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd


def summarize_rois(scores: Any, masks: Mapping[str, Any]) -> pd.DataFrame:
    """Mean and median of per-target scores inside each ROI.

    Parameters
    ----------
    scores : array-like of shape (n_targets,)
    masks : mapping of ROI name -> bool array of shape (n_targets,)

    Returns
    -------
    table : DataFrame with columns roi, n_targets, mean, median (one row per ROI).

    Raises
    ------
    ValueError
        Non-finite scores, a mask of the wrong shape or dtype, or an empty ROI (named).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain non-finite values")
    rows = []
    for name, mask in masks.items():
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != scores.shape:
            raise ValueError(f"mask {name!r} must be bool of shape {scores.shape}")
        if not mask.any():
            raise ValueError(f"ROI {name!r} has no targets")
        vals = scores[mask]
        rows.append(
            {
                "roi": name,
                "n_targets": int(mask.sum()),
                "mean": float(vals.mean()),
                "median": float(np.median(vals)),
            }
        )
    return pd.DataFrame(rows, columns=["roi", "n_targets", "mean", "median"])


def across_subjects(values: Any) -> tuple[float, float]:
    """Mean and standard error of the mean across subjects.

    Parameters
    ----------
    values : array-like of shape (n_subjects,)
        One summary value per subject (e.g. an ROI mean).

    Returns
    -------
    mean : float
    sem : float
        ``std(ddof=1) / sqrt(n)``; NaN when there is a single subject (undefined).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("need at least one finite value per subject")
    sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), sem


def summarize_across_subjects(
    table: pd.DataFrame, value: str = "mean", by: Iterable[str] = ("roi",)
) -> pd.DataFrame:
    """Mean and s.e.m. across subjects of a per-subject ROI table.

    Parameters
    ----------
    table : DataFrame
        Columns ``subject``, the ``by`` columns and ``value`` (e.g. stacked
        :func:`summarize_rois` outputs with a subject column).
    value : str
        Column summarised.
    by : iterable of str
        Grouping columns.

    Returns
    -------
    DataFrame with the ``by`` columns, n_subjects, mean, sem.
    """
    by = list(by)
    missing = {"subject", value, *by} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    rows = []
    for key, group in table.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, sem = across_subjects(group[value].to_numpy())
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "n_subjects": group["subject"].nunique(),
                "mean": mean,
                "sem": sem,
            }
        )
    return pd.DataFrame(rows)
