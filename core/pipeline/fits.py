"""One encoding fit of the grid: features of (model, instruction, layer) -> one subject's responses.

A fit loads the stored response embeddings, aligns them to the subject's stimulus rows, fits a
:class:`~core.encoding.estimator.RidgeEncoder` on the train split (z-scoring with train
statistics only), predicts the shared test images and scores every target: Pearson r, R2,
noise-ceiling-normalised alignment on both scales, and a permutation p-value with BH-FDR q.

Per-target scores are written to ``<home>/results/<dataset>/fits/<key>.npz`` with a JSON manifest
beside it; the key hashes everything that determines the fit, so a rerun skips finished fits
(resumable) and a changed setting makes a new fit.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.data.dataset import Dataset, DatasetError, SubjectData
from core.encoding.ceiling import ceiling_mask
from core.encoding.estimator import RidgeEncoder
from core.encoding.scores import normalize_correlation, normalize_variance, pearson_r, r2_score
from core.encoding.significance import fdr_bh, permutation_test
from core.encoding.store import save_encoder
from core.features.extract import load_embeddings
from core.hashing import content_key
from core.storage import ArtifactError, load_npz, read_json, save_npz, write_json

#: The ROI name used for "all targets of the general visual mask".
GENERAL = "general"
#: The instruction label of image-only baselines in the results table.
IMAGE = "image"
#: A target is "significant" when its permutation q-value is below this.
Q_THRESHOLD = 0.05
#: Normalised alignment is only computed for targets whose noise ceiling (fraction of variance)
#: exceeds this; dividing by a near-zero ceiling would turn noise into huge ratios.
MIN_NC = 0.05


@dataclass(frozen=True)
class FitSettings:
    """Settings shared by every fit of a grid (part of each fit's key)."""

    alphas: str = "paper"
    cv: int = 5
    solver: str = "eigh"
    backend: str = "auto"
    n_permutations: int = 200
    seed: int = 0
    #: Generation budget of the response embeddings the fits read (part of the features' identity).
    max_new_tokens: int = 48

    def generation_options(self):
        from core.models.adapters.base import GenerationOptions

        return GenerationOptions(max_new_tokens=self.max_new_tokens)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FitSpec:
    """Which features and which responses.

    Parameters
    ----------
    dataset, subject, model : str
    instruction : str or None
        Instruction id (None for image-only baselines).
    layer : int
        Hidden-state index.
    """

    dataset: str
    subject: str
    model: str
    instruction: str | None
    layer: int

    def key(self, settings: FitSettings) -> str:
        return content_key("fit", {**asdict(self), "settings": settings.to_dict()})

    def label(self) -> str:
        return f"{self.subject} {self.model} {self.instruction or '-'} L{self.layer}"


def fits_dir(dataset: str) -> Path:
    return subdir("results", dataset, "fits")


def aligned_features(
    dataset: Dataset,
    subject: SubjectData,
    model: str,
    instruction: str | None,
    layer: int,
    settings: FitSettings | None = None,
) -> np.ndarray:
    """Embeddings of one layer in the subject's row order.

    Returns
    -------
    X : array of shape (n_images, d), float32

    Raises
    ------
    DatasetError
        When some of the subject's images have no embedding (extraction incomplete).
    """
    options = (settings or FitSettings()).generation_options()
    try:
        ids, X = load_embeddings(dataset, model, instruction, layer, options)
    except ArtifactError as exc:
        raise DatasetError(
            f"no embeddings of {model} {instruction or '(image)'} on {dataset.name} with "
            f"{options.to_dict()}: run the extraction first (`python -m core extract` or "
            f"`python -m core run`); {exc}"
        ) from exc
    pos = np.searchsorted(ids, subject.stimulus_ids)
    pos = np.clip(pos, 0, max(ids.size - 1, 0))
    ok = ids.size > 0 and np.array_equal(ids[pos], subject.stimulus_ids)
    if not ok:
        missing = np.setdiff1d(subject.stimulus_ids, ids)
        raise DatasetError(
            f"{model} {instruction or ''} layer {layer}: {missing.size} of the {subject.subject}'s "
            f"images have no embedding (e.g. {missing[:5].tolist()}); run the extraction first"
        )
    return X[pos]


def roi_masks(subject: SubjectData) -> dict[str, np.ndarray]:
    """ROI masks (label AND general mask) plus the whole general mask as ``"general"``."""
    t = subject.targets
    masks = {GENERAL: t.general_mask.astype(bool)}
    for roi in t.roi_names():
        mask = t.roi_mask(roi)
        if mask.any():
            masks[roi] = mask
    return masks


def roi_rows(
    spec: FitSpec, scores: dict[str, np.ndarray], masks: dict[str, np.ndarray]
) -> list[dict]:
    """Tidy ROI summary rows of one fit."""
    rows = []
    for roi, mask in masks.items():
        sel = mask & np.isfinite(scores["r"])
        nalign = scores["nalign"][sel]
        nalign = nalign[np.isfinite(nalign)]
        rows.append(
            {
                **asdict(spec),
                "instruction": spec.instruction or IMAGE,
                "roi": roi,
                "n_targets": int(sel.sum()),
                "r_mean": float(np.mean(scores["r"][sel])) if sel.any() else np.nan,
                "r_median": float(np.median(scores["r"][sel])) if sel.any() else np.nan,
                "r2_mean": float(np.mean(scores["r2"][sel])) if sel.any() else np.nan,
                "nalign_mean": float(np.mean(nalign)) if nalign.size else np.nan,
                "nalign_median": float(np.median(nalign)) if nalign.size else np.nan,
                "nalign_var_mean": float(np.nanmean(scores["nalign_var"][sel]))
                if sel.any()
                else np.nan,
                "nc_mean": float(np.mean(scores["nc"][sel])) if sel.any() else np.nan,
                "frac_significant": float(np.mean(scores["q"][sel] < Q_THRESHOLD))
                if sel.any()
                else np.nan,
            }
        )
    return rows


def run_fit(
    dataset: Dataset,
    spec: FitSpec,
    settings: FitSettings,
    keep_encoder: bool = False,
    force: bool = False,
) -> list[dict]:
    """Fit, score and store one fit (skipped when already stored, unless ``force``).

    Returns
    -------
    rows : list of dict
        ROI summary rows (see :func:`roi_rows`).
    """
    key = spec.key(settings)
    folder = fits_dir(spec.dataset)
    manifest_path = folder / f"{key}.json"
    subject = dataset.subject(spec.subject)
    masks = roi_masks(subject)
    if not force and manifest_path.exists():
        try:
            scores = load_npz(folder / f"{key}.npz")
            info = read_json(manifest_path)
            if not keep_encoder or info.get("encoder_key"):
                return roi_rows(spec, scores, masks)
        except ArtifactError:
            pass  # corrupt: refit
    t0 = time.perf_counter()
    X = aligned_features(dataset, subject, spec.model, spec.instruction, spec.layer, settings)
    train, test = subject.split()
    if test.size < 10:
        raise DatasetError(f"{spec.subject}: only {test.size} test images; at least 10 are needed")
    Y = subject.responses
    enc = RidgeEncoder(
        alphas=settings.alphas, cv=settings.cv, solver=settings.solver, backend=settings.backend
    )
    enc.fit(X[train], Y[train])
    pred = enc.predict(X[test])
    r = pearson_r(Y[test], pred)
    if settings.n_permutations > 0:
        _, p = permutation_test(Y[test], pred, settings.n_permutations, seed=settings.seed)
    else:
        p = np.full(r.shape, np.nan)
    nc = subject.noise_ceiling(test)
    if nc is None:
        nc = np.full(r.shape, np.nan, np.float32)
    usable = ceiling_mask(nc, MIN_NC) & np.isfinite(r)
    nalign = np.full(r.shape, np.nan)
    nalign_var = np.full(r.shape, np.nan)
    if usable.any():
        nalign[usable] = normalize_correlation(r[usable], nc[usable])
        nalign_var[usable] = normalize_variance(r[usable], nc[usable])
    scores = {
        "r": r.astype(np.float32),
        "r2": r2_score(Y[test], pred).astype(np.float32),
        "nalign": np.asarray(nalign, np.float32),
        "nalign_var": np.asarray(nalign_var, np.float32),
        "nc": np.asarray(nc, np.float32),
        "p": p.astype(np.float32),
        "q": fdr_bh(p).astype(np.float32) if settings.n_permutations > 0 else p.astype(np.float32),
        "best_alpha": np.asarray(enc.best_alphas_, np.float32),
    }
    save_npz(folder / f"{key}.npz", **scores)
    rows = roi_rows(spec, scores, masks)
    encoder_key = None
    if keep_encoder:
        summary = {
            row["roi"]: round(row["nalign_mean"], 4)
            for row in rows
            if np.isfinite(row["nalign_mean"])
        }
        encoder_key = save_encoder(
            enc,
            dataset=spec.dataset,
            subject=spec.subject,
            model=spec.model,
            instruction=spec.instruction or IMAGE,
            layer=spec.layer,
            scores_summary={"nalign_mean_per_roi": summary},
        )
    write_json(
        manifest_path,
        {
            "key": key,
            "spec": asdict(spec),
            "settings": settings.to_dict(),
            "n_train": int(train.size),
            "n_test": int(test.size),
            "n_features": int(X.shape[1]),
            "n_targets": int(Y.shape[1]),
            "target_digest": subject.targets.digest(),
            "encoder_key": encoder_key,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    return rows


def load_fit_scores(spec: FitSpec, settings: FitSettings) -> dict[str, np.ndarray]:
    """Per-target scores of a stored fit (arrays of shape (n_targets,))."""
    return load_npz(fits_dir(spec.dataset) / f"{spec.key(settings)}.npz")


def fit_manifest(spec: FitSpec, settings: FitSettings) -> dict:
    """The manifest of a stored fit (raises ArtifactError when absent)."""
    return read_json(fits_dir(spec.dataset) / f"{spec.key(settings)}.json")


def fits_table(dataset: str) -> pd.DataFrame:
    """One row per stored fit of a dataset (spec, settings, encoder key, timing)."""
    rows = []
    for path in sorted(fits_dir(dataset).glob("*.json")):
        try:
            info = read_json(path)
        except ArtifactError:
            continue
        rows.append(
            {
                **info["spec"],
                **{f"setting_{k}": v for k, v in info["settings"].items()},
                "key": info["key"],
                "encoder_key": info.get("encoder_key"),
                "seconds": info.get("seconds"),
            }
        )
    return pd.DataFrame(rows)
