"""The cross-subject noise ceiling (Schrimpf-style): how well the other subjects' responses to
the shared test images predict a subject's, per target, beside NSD's ncsnr ceiling.

The ncsnr ceiling (:meth:`core.data.dataset.SubjectData.noise_ceiling`) bounds what any model can
reach given the measurement noise of one subject; the cross-subject ceiling bounds what a model
shared by all subjects can reach (it also counts idiosyncratic signal as unexplainable). Both are
offered as the normalisation of alignment: ``r / sqrt(NC)`` with NSD's NC, or ``r / r_ceiling``
with the cross-subject one, for targets whose ceiling exceeds :data:`core.results.fit.MIN_NC`
(as variance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.data.dataset import Dataset, DatasetError
from core.data.rois import roi_masks
from core.encoding.ceiling import cross_subject_ceiling
from core.hashing import content_key
from core.results.fit import MIN_NC, SCORING_VERSION, FitSettings, FitSpec, load_fit_scores
from core.storage import ArtifactError, load_npz, save_npz

#: Alpha preset and outer folds of the cross-subject encoders.
CEILING_ALPHAS = "wide"
CEILING_FOLDS = 5


def shared_test_ids(ds: Dataset) -> np.ndarray:
    """Test images every subject saw (sorted stimulus ids)."""
    ids = None
    for s in ds.subject_names:
        subject = ds.subject(s)
        test = subject.stimulus_ids[subject.split()[1]]
        ids = test if ids is None else np.intersect1d(ids, test)
    return np.sort(np.asarray(ids if ids is not None else [], dtype=np.int64))


def _path(ds: Dataset, subject: str) -> Path:
    key = content_key("cross-subject-ceiling", {
        "subjects": ds.subject_keys(), "subject": subject, "alphas": CEILING_ALPHAS,
        "folds": CEILING_FOLDS, "scoring_version": SCORING_VERSION,
    })  # fmt: skip
    return subdir("results", ds.name, "ceilings") / f"{key}.npz"


def cross_subject_r(ds: Dataset, subject: str) -> np.ndarray:
    """Per target of ``subject``, the out-of-fold correlation of its test responses with the
    prediction from the other subjects' (computed once, then read from the store).

    Returns
    -------
    r_ceiling : array of shape (n_targets,), float32

    Raises
    ------
    DatasetError
        With fewer than 2 subjects or fewer than 10 shared test images.
    """
    path = _path(ds, subject)
    try:
        return load_npz(path)["r_ceiling"]
    except ArtifactError:
        pass
    if len(ds.subject_names) < 2:
        raise DatasetError("a cross-subject ceiling needs at least 2 subjects")
    ids = shared_test_ids(ds)
    if ids.size < 10:
        raise DatasetError(f"only {ids.size} test images are shared by all subjects")
    responses = {s: ds.subject(s).responses[ds.subject(s).rows_for(ids)] for s in ds.subject_names}
    r, _ = cross_subject_ceiling(responses, subject, alphas=CEILING_ALPHAS, n_splits=CEILING_FOLDS)
    r = np.asarray(r, np.float32)
    save_npz(path, r_ceiling=r)
    return r


def ceiling_table(ds: Dataset) -> pd.DataFrame:
    """Per subject and ROI: the mean ncsnr noise ceiling (fraction of variance) and the mean
    squared cross-subject ceiling ``max(r_ceiling, 0)**2`` (the same scale).

    Returns
    -------
    DataFrame with columns subject, roi, n_targets, nc_ncsnr, nc_cross_subject.
    """
    rows = []
    for s in ds.subject_names:
        subject = ds.subject(s)
        nc = subject.noise_ceiling()
        rc = cross_subject_r(ds, s)
        for roi, mask in roi_masks(subject).items():
            rows.append({
                "subject": s, "roi": roi, "n_targets": int(mask.sum()),
                "nc_ncsnr": float(np.nanmean(nc[mask])) if nc is not None else np.nan,
                "nc_cross_subject": float(np.mean(np.maximum(rc[mask], 0) ** 2)),
            })  # fmt: skip
    return pd.DataFrame(rows)


def cross_subject_normalized(
    ds: Dataset, rows: pd.DataFrame, settings: FitSettings
) -> pd.DataFrame:
    """``rows`` (results-table rows) with ``nalign_cross``: the ROI mean of ``r / r_ceiling``
    over its targets whose cross-subject ceiling exceeds ``MIN_NC`` as variance (the
    cross-subject analog of ``nalign_mean``).

    Fits are read from the store (their per-target r); rows whose fit is not stored get NaN.
    """
    out = rows.copy()
    values = np.full(len(out), np.nan)
    cache: dict = {}
    for i, row in enumerate(out.itertuples(index=False)):
        key = (row.subject, row.model, row.instruction, int(row.layer))
        if key not in cache:
            try:
                spec = FitSpec(ds.name, row.subject, row.model, row.instruction, int(row.layer))
                r = load_fit_scores(ds, spec, settings)["r"]
                rc = cross_subject_r(ds, row.subject)
                cache[key] = (r, rc, roi_masks(ds.subject(row.subject)))
            except (ArtifactError, DatasetError, ValueError):
                cache[key] = None
        got = cache[key]
        if got is None or row.roi not in got[2]:
            continue
        r, rc, masks = got
        use = masks[row.roi] & (rc > np.sqrt(MIN_NC)) & np.isfinite(r)
        if use.any():
            values[i] = float(np.mean(r[use] / rc[use]))
    out["nalign_cross"] = values
    return out
