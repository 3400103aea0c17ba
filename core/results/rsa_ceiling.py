"""The noise-ceiling analog of representational similarity, beside the encoders' ceiling.

Per subject and ROI, the split-half reliability of the ROI's test-image RDM from the single
repeats of the test images (:func:`core.encoding.rsa.rdm_reliability`: random halves of each
image's repeats, Spearman between the half RDMs, stepped up by Spearman-Brown), computed once
per subject and stored under ``<home>/results/<dataset>/ceilings/``. An embedding RDM cannot
correlate with the measured one beyond about ``sqrt(reliability)``, so ``rsa / sqrt(rel)`` is
the analog of the encoders' ``r / sqrt(NC)``.

Only readers that keep the single repeats make it possible (``SubjectData.test_repeats``): the
demo world and NSD's reader (the shared test images' trials) do; the Algonauts release holds
repeat-averaged responses only (:func:`unavailable_reason` says which).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.data.dataset import Dataset
from core.data.rois import roi_masks
from core.hashing import array_digest, content_key
from core.results.fit import IMAGE, MIN_NC, SCORING_VERSION
from core.storage import ArtifactError, read_json, write_json

#: Random split-halves averaged per ROI, and their seed.
RSA_SPLITS = 20
RSA_SEED = 0

#: Why a dataset kind has no RSA ceiling (kinds not named here: "its reader keeps no repeats").
_NO_REPEATS = {
    "demo": "this demo world was built before the test repeats were kept: rebuild it with "
    "`python -m core demo build` (the responses, and with them every fit, stay the same)",
    "nsd": "this NSD subject has no single repeats of shared test images (none in the chosen "
    "sessions)",
    "algonauts": "the Algonauts 2023 release holds repeat-averaged responses only",
}


def unavailable_reason(ds: Dataset, subject: str | None = None) -> str:
    """'' when ``subject`` (default: every subject) has test repeats; else why not."""
    for s in [subject] if subject else ds.subject_names:
        if ds.subject(s).test_repeat_responses() is None:
            return _NO_REPEATS.get(ds.kind, f"the {ds.kind} reader keeps no single repeats")
    return ""


def _path(ds: Dataset, subject: str, masks: dict[str, np.ndarray]) -> Path:
    digest = array_digest(np.stack([masks[r] for r in sorted(masks)]).astype(np.uint8))
    key = content_key("rsa-ceiling", {
        "subject": ds.subject_key(subject), "rois": sorted(masks), "masks": digest,
        "splits": RSA_SPLITS, "seed": RSA_SEED, "scoring_version": SCORING_VERSION,
    })  # fmt: skip
    return subdir("results", ds.name, "ceilings") / f"rsa-{key}.json"


def rdm_ceiling(ds: Dataset, subject: str) -> pd.DataFrame | None:
    """Per ROI of ``subject``, the split-half RDM reliability of its test images and the RSA
    ceiling ``sqrt(max(reliability, 0))`` (computed once, then read from the store).

    Returns
    -------
    DataFrame with columns roi, n_images, split_half, reliability, ceiling; None when the
    subject has no test repeats (:func:`unavailable_reason`). An ROI whose RDM is undefined (a
    constant pattern) gets NaN.
    """
    data = ds.subject(subject)
    masks = roi_masks(data)
    path = _path(ds, subject, masks)
    try:
        return _typed(pd.DataFrame(read_json(path)["rows"]))
    except (ArtifactError, KeyError):
        pass
    repeats = data.test_repeat_responses()
    if repeats is None:
        return None
    from core.encoding.rsa import rdm_reliability

    order = np.argsort(data.stimulus_ids[data.split()[1]], kind="stable")  # as the fits' RSA
    repeats = repeats[:, order]
    try:  # every ROI at once (the split halves are shared)
        out = rdm_reliability(repeats, masks, RSA_SPLITS, RSA_SEED)
    except ValueError:  # some ROI's RDM is undefined (too few targets, a constant pattern)
        rows = []
        for roi, mask in masks.items():
            try:
                rows.append(rdm_reliability(repeats, {roi: mask}, RSA_SPLITS, RSA_SEED).iloc[0])
            except ValueError:
                rows.append(pd.Series({"roi": roi, "n_images": int(repeats.shape[1])}))
        out = pd.DataFrame(rows)
    out = _typed(out.reset_index(drop=True))
    write_json(path, {"subject": subject, "rows": [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
        for r in out.to_dict("records")
    ]})  # fmt: skip
    return out


def _typed(t: pd.DataFrame) -> pd.DataFrame:
    """Columns roi, n_images (int), split_half, reliability, ceiling (float; None -> NaN)."""
    t = t.reindex(columns=["roi", "n_images", "split_half", "reliability", "ceiling"])
    return t.astype({"n_images": int, "split_half": float, "reliability": float,
                     "ceiling": float})  # fmt: skip


def metric_ceilings(ds: Dataset, table: pd.DataFrame, model: str, layer: int) -> pd.DataFrame:
    """RSA normalised by its ceiling beside encoding normalised by its own, per ROI and
    instruction (mean over subjects).

    Parameters
    ----------
    table : DataFrame
        The ROI results table (its ``rsa`` and ``nalign_mean`` columns).

    Returns
    -------
    DataFrame with columns roi, instruction, n_subjects, nalign (encoding: r / sqrt(NC)),
    rsa, rsa_normalized (rsa / RSA ceiling, NaN where the ceiling is 0 or unknown),
    encoding_ceiling (mean sqrt(NC) over the ROI's targets with NC > MIN_NC), rsa_reliability,
    rsa_ceiling; empty without an ``rsa`` column or test repeats.
    """
    sub = table[(table["model"] == model) & (table["layer"] == int(layer))
                & (table["instruction"] != IMAGE)]  # fmt: skip
    if sub.empty or "rsa" not in sub:
        return pd.DataFrame()
    ceilings = []
    for s in sorted(sub["subject"].unique()):
        c = rdm_ceiling(ds, s)
        if c is None:
            return pd.DataFrame()
        data = ds.subject(s)
        nc = data.noise_ceiling()
        enc = {}
        for roi, mask in roi_masks(data).items():
            ok = mask & (nc > MIN_NC) if nc is not None else np.zeros_like(mask)
            enc[roi] = float(np.mean(np.sqrt(nc[ok]))) if ok.any() else np.nan
        c = c.assign(subject=s, encoding_ceiling=c["roi"].map(enc))
        ceilings.append(c[["subject", "roi", "reliability", "ceiling", "encoding_ceiling"]])
    rows = sub.merge(pd.concat(ceilings), on=["subject", "roi"], how="left")
    rows["rsa_normalized"] = np.where(rows["ceiling"] > 0, rows["rsa"] / rows["ceiling"], np.nan)
    g = rows.groupby(["roi", "instruction"], sort=False)
    out = g.agg(n_subjects=("subject", "nunique"), nalign=("nalign_mean", "mean"),
                rsa=("rsa", "mean"), rsa_normalized=("rsa_normalized", "mean"),
                encoding_ceiling=("encoding_ceiling", "mean"),
                rsa_reliability=("reliability", "mean"), rsa_ceiling=("ceiling", "mean"))  # fmt: skip
    return out.reset_index()
