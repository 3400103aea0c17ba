"""Every "best" is chosen without the test set.

A model's layer, an ROI's instruction and a target's map label are each chosen by the
cross-validated score on the training images (``cv_score``: 1 - CV MSE of the train-z-scored
responses, recorded per target by every fit, and its ROI mean ``cv_score_mean``); the test set
only reports the choice. Taking the maximum *test* score over N candidates inflates the winner
(the winner's curse) and makes every comparison with a baseline that had no choice unfair;
baselines go through the same rule (their layer is chosen the same way, and their single
"instruction" is the image).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: What picks a "best": the cross-validated score on the training images.
LAYER_CRITERION = "cv_score_mean"
#: The per-ROI choice criterion (the same column as the layer criterion).
CRITERION = LAYER_CRITERION


def _require_cv(table: pd.DataFrame) -> None:
    if CRITERION not in table:
        raise ValueError(
            "the results table has no cross-validated scores to choose with; rerun "
            "`python -m core run` (fits are reused, only the table is rewritten)"
        )


def best_layers(table: pd.DataFrame, roi: str = "general") -> dict[str, int]:
    """Per model, the layer with the highest mean cross-validated training score in ``roi``.

    Only layers fitted for as many subject x instruction pairs as the model's best-covered
    layer compete, so a layer the dashboard fitted for one subject and one instruction is not
    picked over the grid's complete layers.

    Raises
    ------
    ValueError
        When the table has no cross-validated scores (made before they were recorded).
    """
    _require_cv(table)
    sub = table[table["roi"] == roi]
    g = sub.groupby(["model", "layer"])[CRITERION].agg(["mean", "size"]).reset_index()
    out = {}
    for m, d in g.groupby("model"):
        full = d[d["size"] == d["size"].max()]
        out[m] = int(full.loc[full["mean"].idxmax(), "layer"])
    return out


def rank_instructions(
    rows: pd.DataFrame, value: str = "nalign_mean", by: tuple[str, ...] = ("model", "roi")
) -> pd.DataFrame:
    """Per model and ROI, instructions ranked by their mean cross-validated training score
    over subjects, with the test ``value`` that reports them.

    Parameters
    ----------
    rows : DataFrame
        ROI rows of one layer per model (e.g. at :func:`best_layers`), with ``model``, ``roi``,
        ``instruction``, ``subject``, ``cv_score_mean`` and ``value``.
    value : str
        The test-set column reported beside the choice.
    by : tuple of str
        The groups within which instructions compete (add ``"layer"`` when ``rows`` hold
        several layers).

    Returns
    -------
    ranked : DataFrame
        the ``by`` columns, instruction, cv (mean over subjects), ``value`` (mean over
        subjects), n_subjects, rank (1 = chosen), in rank order within each group.
    """
    _require_cv(rows)
    by = list(by)
    g = rows.groupby([*by, "instruction"], sort=False)
    out = g.agg(cv=(CRITERION, "mean"), **{value: (value, "mean")},
                n_subjects=("subject", "nunique")).reset_index()  # fmt: skip
    out = out.sort_values([*by, "cv"], ascending=[True] * len(by) + [False], kind="stable")
    out["rank"] = out.groupby(by, sort=False).cumcount() + 1
    return out.reset_index(drop=True)


def chosen_instructions(
    rows: pd.DataFrame, by: tuple[str, ...] = ("model", "roi")
) -> pd.DataFrame:
    """Per group (default: model and ROI), the instruction chosen by the cross-validated
    training score (columns: the ``by`` columns and instruction)."""
    ranked = rank_instructions(rows, by=by)
    return ranked[ranked["rank"] == 1][[*by, "instruction"]].reset_index(drop=True)


def best_target_labels(cv_scores: np.ndarray) -> np.ndarray:
    """Per target, the candidate with the highest cross-validated training score.

    Parameters
    ----------
    cv_scores : array of shape (n_candidates, n_targets)
        Per-target CV scores (NaN where a candidate has no fit).

    Returns
    -------
    labels : array of shape (n_targets,), int64
        Index of the chosen candidate; -1 where every candidate is NaN.
    """
    cv = np.asarray(cv_scores, dtype=np.float64)
    finite = np.isfinite(cv)
    labels = np.argmax(np.where(finite, cv, -np.inf), axis=0)
    return np.where(finite.any(axis=0), labels, -1).astype(np.int64)
