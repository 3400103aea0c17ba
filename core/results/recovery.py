"""What the pipeline recovered on a simulated world, beside what it planted (the Ground truth
page and the recovery tests): the per-ROI ranking of instructions and the eccentricity gradient
an encoder recovers in V1-V3. The planted side lives with the demo world
(:mod:`core.data.demo.truth`); this module fits and reads results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.demo.subjects import GROUP_INSTRUCTIONS, PLANTED_DRIVERS, planted_label
from core.data.demo.truth import EccentricityCheck, early_targets, eccentricity_check
from core.results.fit import IMAGE, aligned_features
from core.results.selection import rank_instructions
from core.results.tables import grid_settings


def recovery_table(table: pd.DataFrame, model: str, layer: int) -> pd.DataFrame:
    """Per ROI and subject: the planted instruction(s) beside the recovered ranking, ranked by
    the cross-validated training score (the test score only reports it).

    Parameters
    ----------
    table : DataFrame
        The results table (columns roi, model, instruction, layer, subject, nalign_mean).
    model : str
    layer : int

    Returns
    -------
    DataFrame with columns roi, subject, planted, recovered best, best nalign, planted nalign,
    planted rank (1 = first among the instructions), match.
    """
    sub = table[(table["model"] == model) & (table["layer"] == int(layer))]
    rows = []
    for (roi, subject), g in sub.groupby(["roi", "subject"], sort=False):
        if roi not in PLANTED_DRIVERS:
            continue
        planted = set(GROUP_INSTRUCTIONS[PLANTED_DRIVERS[roi]])
        ranked = rank_instructions(g)  # by the CV score; nalign_mean reports the test set
        ranking = ranked.set_index("instruction")["nalign_mean"]
        if ranking.empty:
            continue
        ranks = [i + 1 for i, ins in enumerate(ranking.index) if ins in planted]
        present = [ins for ins in ranking.index if ins in planted]
        rows.append(
            {
                "roi": roi,
                "subject": subject,
                "planted": planted_label(PLANTED_DRIVERS[roi]),
                "recovered best": ranking.index[0],
                "best nalign": float(ranking.iloc[0]),
                "planted nalign": float(ranking[present[0]]) if present else np.nan,
                "planted rank": min(ranks) if ranks else np.nan,
                "match": bool(ranks) and min(ranks) == 1,
            }
        )
    order = {r: i for i, r in enumerate(PLANTED_DRIVERS)}
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values(["roi", "subject"], key=lambda c: c.map(order) if c.name == "roi" else c)


def recovered_eccentricity(
    dataset, subject: str, model: str, instruction: str | None, layer: int, settings=None
) -> EccentricityCheck:
    """The eccentricity gradient an encoding model recovers in V1-V3.

    Fits the pipeline's encoder (the same ridge, alphas and cross-validation as the grid, so
    each target gets the encoder the grid fits for it) from ``model``'s response embeddings of
    ``instruction`` at ``layer`` to the subject's V1-V3 targets on the training images,
    predicts every image the subject saw, and compares :func:`ring_eccentricity` of the
    predictions with the planted pRF eccentricity.

    Parameters
    ----------
    dataset : Dataset
        The demo world (opened).
    instruction : str or None
        None (or "image") for image-only models.
    settings : FitSettings, optional
        Default: the dataset's last grid settings.

    Raises
    ------
    DatasetError
        When the embeddings are not extracted.
    """
    from core.data.demo.drives import pixel_grids
    from core.data.demo.store import load_truth
    from core.encoding.estimator import RidgeEncoder

    settings = settings or grid_settings(dataset.name)
    subj = dataset.subject(subject)
    truth = load_truth(dataset.stimuli.root, subject)
    sel = early_targets(truth, subj.targets)
    x = aligned_features(dataset, subj, model, instruction or IMAGE, int(layer), settings)
    train, _ = subj.split()
    enc = RidgeEncoder(alphas=settings.alphas, cv=settings.cv, solver=settings.solver)
    enc.fit(x[train], subj.responses[train][:, sel])
    predicted = enc.predict(x)
    grids = pixel_grids(dataset.stimuli.load_image, subj.stimulus_ids)
    return eccentricity_check(truth, subj.targets, predicted, grids)
