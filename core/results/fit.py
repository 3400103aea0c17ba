"""One encoding fit of the grid: features of (model, instruction, layer) -> one subject's responses.

A fit loads the stored response embeddings, aligns them to the subject's stimulus rows, fits a
:class:`~core.encoding.estimator.RidgeEncoder` on the train split (z-scoring with train
statistics only), predicts the shared test images and scores every target: Pearson r, R2,
noise-ceiling-normalised alignment on both scales, a p-value (analytic by default, see
:mod:`core.encoding.significance`) with BH-FDR q, the cross-validated training score that picks
layers, and the alpha chosen per target.

Per-target scores are written to ``<home>/results/<dataset>/fits/<key>.npz`` with a JSON manifest
beside it. The key (:func:`fit_key`) hashes the *content* of everything that determines the fit:
the subject's data (:meth:`~core.data.dataset.Dataset.subject_key`), the response embeddings'
shard key (stimulus content, model weights fingerprint, instruction text, generation options),
the normalised layer index, the fit settings and :data:`SCORING_VERSION`. So a rerun skips
finished fits (resumable), and a rebuilt dataset, a retrained model, another token budget or a
changed setting makes a new fit; names (dataset, model, instruction id) only label it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.data.dataset import Dataset, DatasetError, SubjectData
from core.data.rois import roi_masks
from core.encoding.alphas import alpha_grid
from core.encoding.ceiling import ceiling_mask
from core.encoding.estimator import RidgeEncoder
from core.encoding.scores import normalize_correlation, normalize_variance, pearson_r, r2_score
from core.encoding.significance import correlation_test, fdr_bh
from core.encoding.store import save_encoder
from core.features.extract import load_embeddings
from core.hashing import content_key
from core.storage import ArtifactError, load_npz, read_json, save_npz, write_json

#: The instruction label of image-only baselines in the results table.
IMAGE = "image"
#: A target is "significant" when its BH q-value is below this.
Q_THRESHOLD = 0.05
#: Bumped whenever how a fit is scored changes (part of every fit key).
#: 3: a bootstrap over the test images of every ROI score is stored with each fit.
#: 4: representational similarity (RSA) per ROI, the second metric, stored with each fit.
SCORING_VERSION = "4"
#: Warn when more than this share of a fit's targets with cross-validated signal selects the
#: smallest or largest alpha.
ALPHA_EDGE_WARN = 0.05
#: A target "has cross-validated signal" when its CV score at the chosen alpha exceeds this
#: (a fraction of the variance of its train-z-scored responses). Targets without signal choose
#: the largest alpha whatever the grid (predicting ~0 is their best); they are left out of the
#: alpha-edge shares. Measured on the demo: such targets score within +-0.0002.
MIN_CV_SIGNAL = 0.001
#: Per-target p-value methods (see :mod:`core.encoding.significance`).
P_VALUE_METHODS = ("analytic", "permutation", "none")
#: Normalised alignment is only computed for targets whose noise ceiling (fraction of variance)
#: exceeds this; dividing by a near-zero ceiling would turn noise into huge ratios.
MIN_NC = 0.05


@dataclass(frozen=True)
class FitSettings:
    """Settings shared by every fit of a grid (part of each fit's key)."""

    #: Ridge alpha preset (:mod:`core.encoding.alphas`): "wide" by default, "paper" for the
    #: paper's logspace(1, 4, 60) (``reproduce paper``), "fast".
    alphas: str = "wide"
    cv: int = 5
    solver: str = "eigh"
    backend: str = "auto"
    n_permutations: int = 200
    seed: int = 0
    #: Per-target p-values: "analytic" (exact t null of Pearson r, resolution fine enough for
    #: BH over 40,000 targets), "permutation" (``n_permutations`` shuffles; smallest p is
    #: 1 / (n_permutations + 1)) or "none" (fraction significant is then "not computed").
    p_values: str = "analytic"
    #: Generation budget of the response embeddings the fits read (part of the features' identity).
    max_new_tokens: int = 48
    #: Resamples of the test images in each fit's bootstrap (seeded by ``seed``; every fit of a
    #: dataset resamples the same images, so differences between fits are paired); 0 = none.
    n_boot: int = 1000
    #: How the embeddings are computed (see :class:`core.features.identity.ExtractionSettings`):
    #: device ("auto" follows ``backend``: torch_cuda -> cuda, numpy/torch -> cpu), dtype,
    #: method and prefix reuse; all part of the features' identity.
    device: str = "auto"
    dtype: str = "auto"
    method: str = "one-pass"
    prefix_reuse: bool = True

    def generation_options(self):
        from core.models.adapters.base import GenerationOptions

        return GenerationOptions(max_new_tokens=self.max_new_tokens)

    def extraction(self):
        """The :class:`~core.features.identity.ExtractionSettings` of the embeddings."""
        from core.features.identity import ExtractionSettings

        device = self.device
        if device == "auto":
            device = {"torch_cuda": "cuda", "numpy": "cpu", "torch": "cpu"}.get(self.backend, "auto")
        return ExtractionSettings(device, self.dtype, self.method, self.prefix_reuse)

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.p_values not in P_VALUE_METHODS:
            raise ValueError(
                f"unknown p-value method {self.p_values!r}; expected one of {P_VALUE_METHODS}"
            )

    @property
    def computes_p(self) -> bool:
        """Whether fits compute p-values (False: "not computed")."""
        return self.p_values == "analytic" or (
            self.p_values == "permutation" and self.n_permutations > 0
        )


@dataclass(frozen=True)
class FitSpec:
    """Which features and which responses.

    Parameters
    ----------
    dataset, subject, model : str
    instruction : str
        Instruction id, or :data:`IMAGE` (``"image"``) for image-only baselines: the one
        spelling the results tables, encoders and links use (None is accepted from callers
        and becomes :data:`IMAGE` in :func:`normalize_spec`).
    layer : int
        Hidden-state index.
    """

    dataset: str
    subject: str
    model: str
    instruction: str
    layer: int

    def label(self) -> str:
        return f"{self.subject} {self.model} {self.instruction} L{self.layer}"


def fits_dir(dataset: str) -> Path:
    return subdir("results", dataset, "fits")


def normalize_spec(dataset: Dataset, spec: FitSpec) -> FitSpec:
    """One spelling per fit before keys are made: the instruction as its id (paper id, pool id
    or the free-text id, whatever the user typed), :data:`IMAGE` for image-only models (None
    is accepted as input), and the layer
    as its non-negative hidden-state index.

    Raises
    ------
    DatasetError
        For a layer out of range of the model.
    """
    from core.features.store import model_layers
    from core.models.layers import layer_index
    from core.models.roles import is_generative

    instruction = spec.instruction
    if not is_generative(spec.model) or instruction in (None, IMAGE):
        instruction = IMAGE
    else:
        from core.models.instructions import resolve_instruction

        instruction = resolve_instruction(instruction).id
    layer = layer_index(spec.layer, len(model_layers(spec.model, dataset.name)), spec.model)
    return FitSpec(spec.dataset, spec.subject, spec.model, instruction, layer)


def feature_instruction(instruction: str | None):
    """The instruction object the feature store keys by: None for image-only (:data:`IMAGE`)."""
    from core.models.instructions import resolve_instruction

    return None if instruction in (None, IMAGE) else resolve_instruction(instruction)


def features_key(dataset: Dataset, model: str, instruction: str, settings: FitSettings) -> str:
    """The content key of the response-embedding shard a fit reads (see
    :func:`core.features.store.shard_key` and :func:`~core.features.store.find_shard`)."""
    from core.features.store import find_shard
    from core.models.registry import resolve

    ins = feature_instruction(instruction)
    return find_shard(dataset, resolve(model), ins, settings.generation_options(),
                      settings.extraction()).name  # fmt: skip


def fit_identity(dataset: Dataset, spec: FitSpec, settings: FitSettings) -> dict:
    """Everything that determines a fit, by content (the fields of :func:`fit_key`)."""
    spec = normalize_spec(dataset, spec)
    return {
        "subject": dataset.subject_key(spec.subject),
        "features": features_key(dataset, spec.model, spec.instruction, settings),
        "layer": spec.layer,
        "settings": settings.to_dict(),
        "scoring_version": SCORING_VERSION,
    }


def fit_key(dataset: Dataset, spec: FitSpec, settings: FitSettings) -> str:
    """The content key of one fit (see the module docstring)."""
    return content_key("fit", fit_identity(dataset, spec, settings))


def aligned_features(
    dataset: Dataset,
    subject: SubjectData,
    model: str,
    instruction: str,
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
    settings = settings or FitSettings()
    options = settings.generation_options()
    try:
        ids, X = load_embeddings(dataset, model, feature_instruction(instruction), layer, options,
                                 settings.extraction())  # fmt: skip
    except ArtifactError as exc:
        raise DatasetError(
            f"no embeddings of {model} {instruction} on {dataset.name} with "
            f"{options.to_dict()}: run the extraction first (`python -m core extract` or "
            f"`python -m core run`); {exc}"
        ) from exc
    pos = np.searchsorted(ids, subject.stimulus_ids)
    pos = np.clip(pos, 0, max(ids.size - 1, 0))
    ok = ids.size > 0 and np.array_equal(ids[pos], subject.stimulus_ids)
    if not ok:
        missing = np.setdiff1d(subject.stimulus_ids, ids)
        raise DatasetError(
            f"{model} {instruction} layer {layer}: {missing.size} of the {subject.subject}'s "
            f"images have no embedding (e.g. {missing[:5].tolist()}); run the extraction first"
        )
    return X[pos]


def _finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none (an ROI whose
    targets all lie below the noise-ceiling floor has no normalized variance)."""
    ok = np.isfinite(values)
    return float(np.mean(values[ok])) if ok.any() else np.nan


def _share(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else np.nan


def roi_rows(
    spec: FitSpec,
    scores: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    provenance: dict | None = None,
    alphas: np.ndarray | None = None,
    boot: dict[str, np.ndarray] | None = None,
    rsa: dict[str, float] | None = None,
) -> list[dict]:
    """Tidy ROI summary rows of one fit.

    Parameters
    ----------
    spec : FitSpec
    scores : dict of str to array of shape (n_targets,)
    masks : dict of str to bool array of shape (n_targets,)
    provenance : dict, optional
        Columns that say what the row was computed from (``fit_key``, ``subject_key``,
        ``features_key``, ``max_new_tokens``, ``p_values``); readers drop rows whose
        ``subject_key`` is not the open dataset's.
    alphas : array of shape (n_alphas,), optional
        The alpha grid, for the share of targets whose alpha sits at either end of it
        (``alpha_low_frac``, ``alpha_high_frac``: among the ROI's targets with cross-validated
        signal, :data:`MIN_CV_SIGNAL`).
    boot : dict, optional
        The fit's bootstrap (:func:`fit_bootstrap`): 95% percentile intervals of the ROI's
        normalised alignment over resampled test images (``nalign_ci_low``, ``nalign_ci_high``).
    rsa : dict of str to float, optional
        Representational similarity per ROI (:func:`fit_rsa`), the ``rsa`` column.

    Returns
    -------
    rows : list of dict
        One per ROI. ``nalign_mean`` / ``nalign_median`` average the ``n_targets_nc`` targets
        whose noise ceiling exceeds :data:`MIN_NC`; ``r_mean``, ``r2_mean``, ``nc_mean``,
        ``n_targets`` and ``frac_significant`` use all ``n_targets`` targets of the ROI.
        ``frac_significant`` is NaN when no p-values were computed; ``cv_score_mean``
        (cross-validated on the training images) is what picks layers and instructions.
    """
    rows = []
    has_p = "q" in scores and bool(np.isfinite(scores["q"]).any())
    for k, (roi, mask) in enumerate(masks.items()):
        sel = mask & np.isfinite(scores["r"])
        nalign = scores["nalign"][sel]
        nalign = nalign[np.isfinite(nalign)]
        extra: dict = dict(provenance or {})
        extra["n_targets_nc"] = int(nalign.size)
        if rsa is not None:
            extra["rsa"] = float(rsa.get(roi, np.nan))
        if boot is not None:
            draws = boot["nalign"][:, k]
            ok = np.isfinite(draws)
            lo, hi = np.percentile(draws[ok], [2.5, 97.5]) if ok.any() else (np.nan, np.nan)
            extra["nalign_ci_low"], extra["nalign_ci_high"] = float(lo), float(hi)
        if "cv_score" in scores:
            extra["cv_score_mean"] = _share(scores["cv_score"][sel])
        if alphas is not None and "best_alpha" in scores:
            signal = sel & (scores["cv_score"] > MIN_CV_SIGNAL) if "cv_score" in scores else sel
            a = scores["best_alpha"][signal]
            lo, hi = np.float32(alphas.min()), np.float32(alphas.max())
            extra["alpha_low_frac"] = _share(a <= lo * np.float32(1 + 1e-6))
            extra["alpha_high_frac"] = _share(a >= hi * np.float32(1 - 1e-6))
        rows.append(
            {
                **asdict(spec),
                "instruction": spec.instruction,
                "roi": roi,
                "n_targets": int(sel.sum()),
                "r_mean": float(np.mean(scores["r"][sel])) if sel.any() else np.nan,
                "r_median": float(np.median(scores["r"][sel])) if sel.any() else np.nan,
                "r2_mean": float(np.mean(scores["r2"][sel])) if sel.any() else np.nan,
                "nalign_mean": float(np.mean(nalign)) if nalign.size else np.nan,
                "nalign_median": float(np.median(nalign)) if nalign.size else np.nan,
                "nalign_var_mean": _finite_mean(scores["nalign_var"][sel]),
                "nc_mean": float(np.mean(scores["nc"][sel])) if sel.any() else np.nan,
                "frac_significant": float(np.mean(scores["q"][sel] < Q_THRESHOLD))
                if sel.any() and has_p
                else np.nan,
                **extra,
            }
        )
    return rows


def _provenance(dataset: Dataset, spec: FitSpec, settings: FitSettings, key: str) -> dict:
    ident = fit_identity(dataset, spec, settings)
    return {
        "fit_key": key,
        "subject_key": ident["subject"],
        "features_key": ident["features"],
        "max_new_tokens": int(settings.max_new_tokens),
        "p_values": settings.p_values if settings.computes_p else "none",
        "settings_key": settings_key(settings),
        "scoring_version": SCORING_VERSION,
    }


def settings_key(settings: FitSettings) -> str:
    """A short key of the fit settings (results tables hold rows of one settings key)."""
    return content_key("fit-settings", settings.to_dict(), length=12)


def _stored_fit(folder: Path, key: str, subject: SubjectData) -> tuple[dict, dict] | None:
    """A stored fit's (scores, manifest) when it is complete and was made from this subject's
    target set; None otherwise (then it is recomputed)."""
    try:
        info = read_json(folder / f"{key}.json")
        scores = load_npz(folder / f"{key}.npz")
    except ArtifactError:
        return None
    if info.get("key") != key or info.get("target_digest") != subject.targets.digest():
        return None
    if any(a.shape != (subject.n_targets,) for a in scores.values()):
        return None
    return scores, info


def _stored_rsa(info: dict) -> dict[str, float] | None:
    rsa = info.get("rsa")
    return None if rsa is None else {k: np.nan if v is None else float(v) for k, v in rsa.items()}


def _stored_bootstrap(folder: Path, key: str, info: dict, masks: dict) -> dict | None:
    boot = info.get("bootstrap")
    if not boot or list(boot["rois"]) != list(masks):
        return None
    try:
        return load_npz(folder / f"{key}.boot.npz")
    except ArtifactError:
        return None


def compute_pvalues(
    y_test: np.ndarray, pred: np.ndarray, r: np.ndarray, settings: FitSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Per-target p and BH q of the test correlation, by ``settings.p_values``.

    Returns
    -------
    p, q : arrays of shape (n_targets,), float64; all NaN when not computed.
    """
    if not settings.computes_p:
        nan = np.full(r.shape, np.nan)
        return nan, nan.copy()
    # constant predictions (r undefined) get p = NaN and are left out of the BH count
    _, p = correlation_test(
        y_test,
        pred,
        method=settings.p_values,
        n_permutations=settings.n_permutations,
        seed=settings.seed,
    )
    return p, fdr_bh(p)


def run_fit(
    dataset: Dataset,
    spec: FitSpec,
    settings: FitSettings,
    keep_encoder: bool = False,
    force: bool = False,
) -> list[dict]:
    """Fit, score and store one fit (skipped when already stored, unless ``force``).

    A stored fit is reused only when its key (the content of everything that determines it)
    matches and its manifest's target digest is the subject's; anything else is refitted.

    Returns
    -------
    rows : list of dict
        ROI summary rows (see :func:`roi_rows`), with provenance columns.
    """
    spec = normalize_spec(dataset, spec)
    key = fit_key(dataset, spec, settings)
    folder = fits_dir(spec.dataset)
    manifest_path = folder / f"{key}.json"
    subject = dataset.subject(spec.subject)
    masks = roi_masks(subject)
    provenance = _provenance(dataset, spec, settings, key)
    alphas = alpha_grid(settings.alphas)
    if not force:
        stored = _stored_fit(folder, key, subject)
        if stored is not None and (not keep_encoder or _encoder_present(stored[1])):
            return roi_rows(spec, stored[0], masks, provenance, alphas,
                            _stored_bootstrap(folder, key, stored[1], masks),
                            _stored_rsa(stored[1]))  # fmt: skip
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
    p, q = compute_pvalues(Y[test], pred, r, settings)
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
        "p": np.asarray(p, np.float64),
        "q": np.asarray(q, np.float64),
        "best_alpha": np.asarray(enc.best_alphas_, np.float32),
        # 1 - CV MSE of the train-z-scored responses (~ CV R2): picks layers without the test set
        "cv_score": (1.0 + np.asarray(enc.cv_scores_, np.float64)).astype(np.float32),
    }
    save_npz(folder / f"{key}.npz", **scores)
    boot = None
    if settings.n_boot > 0:
        boot = fit_bootstrap(subject, test, Y[test], pred, nc, usable, masks, settings)
        save_npz(folder / f"{key}.boot.npz", **boot)
    rsa = fit_rsa(subject, test, Y[test], X[test], masks)
    rows = roi_rows(spec, scores, masks, provenance, alphas, boot, rsa)
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
            instruction=spec.instruction,
            layer=spec.layer,
            settings={**settings.to_dict(), "alphas": [float(a) for a in alphas]},
            provenance={k: provenance[k] for k in ("fit_key", "subject_key", "features_key")},
            scores_summary={"nalign_mean_per_roi": summary},
        )
    edges = np.isclose(scores["best_alpha"], alphas.min(), rtol=1e-5) | np.isclose(
        scores["best_alpha"], alphas.max(), rtol=1e-5
    )
    edges = edges[scores["cv_score"] > MIN_CV_SIGNAL]
    write_json(
        manifest_path,
        {
            "key": key,
            "spec": asdict(spec),
            "settings": settings.to_dict(),
            "identity": fit_identity(dataset, spec, settings),
            "provenance": provenance,
            "n_train": int(train.size),
            "n_test": int(test.size),
            "n_features": int(X.shape[1]),
            "n_targets": int(Y.shape[1]),
            "target_digest": subject.targets.digest(),
            "alpha_edge_frac": float(edges.mean()) if edges.size else 0.0,
            "rsa": {k: (None if not np.isfinite(v) else v) for k, v in rsa.items()},
            "bootstrap": None if boot is None else {
                "rois": list(masks), "n_boot": int(settings.n_boot), "seed": int(settings.seed),
                "test_ids": content_key("test-ids", {"ids": subject.stimulus_ids[test].tolist()}),
            },
            "encoder_key": encoder_key,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    return rows


def fit_bootstrap(
    subject: SubjectData,
    test: np.ndarray,
    y_test: np.ndarray,
    pred: np.ndarray,
    nc: np.ndarray,
    usable: np.ndarray,
    masks: dict[str, np.ndarray],
    settings: FitSettings,
) -> dict[str, np.ndarray]:
    """Bootstrap over the test images of one fit's ROI scores (see
    :mod:`core.encoding.bootstrap`).

    Test rows are taken in stimulus-id order and resampled with ``settings.seed``, so every fit
    of a subject, and every subject with the same test images, draws the same resamples:
    differences between instructions (and their mean over subjects) are paired. Each ROI's
    normalised alignment averages its targets with a usable noise ceiling (as ``nalign_mean``).

    Returns
    -------
    arrays : dict
        ``nalign`` and ``r``: arrays of shape (n_boot, n_rois), float32, ROIs in the order of
        ``masks`` (NaN for an ROI without usable targets).
    """
    from core.encoding.bootstrap import bootstrap_roi_scores

    order = np.argsort(subject.stimulus_ids[test], kind="stable")
    names = list(masks)
    out = {k: np.full((settings.n_boot, len(names)), np.nan, np.float32) for k in ("nalign", "r")}
    used = {n: masks[n] & usable for n in names if (masks[n] & usable).any()}
    if not used:
        return out
    res = bootstrap_roi_scores(y_test[order], pred[order], used, noise_ceiling=np.where(usable, nc, 1.0),
                               n_boot=settings.n_boot, seed=settings.seed)  # fmt: skip
    for j, name in enumerate(res.rois):
        col = names.index(name)
        out["nalign"][:, col] = res.normalized[0, :, j]
        out["r"][:, col] = res.r[0, :, j]
    return out


def fit_rsa(
    subject: SubjectData,
    test: np.ndarray,
    y_test: np.ndarray,
    x_test: np.ndarray,
    masks: dict[str, np.ndarray],
) -> dict[str, float]:
    """Representational similarity per ROI, the second metric: Spearman correlation of the ROI's
    test-image dissimilarity matrix (1 - Pearson r between image patterns) with that of the
    response embeddings (:func:`core.encoding.rsa.roi_rsa`). No fitting is involved, so it
    says whether an instruction's ranking under encoding also holds for the geometry of the
    representation.

    Returns
    -------
    rsa : dict of ROI name to float (NaN for an ROI whose patterns are constant)
    """
    from core.encoding.rsa import roi_rsa

    order = np.argsort(subject.stimulus_ids[test], kind="stable")
    y, x = y_test[order], x_test[order]
    try:
        res = roi_rsa(y, x, masks)
        return {str(r): float(v) for r, v in zip(res["roi"], res["rsa"], strict=True)}
    except ValueError:  # a constant pattern in some ROI: each ROI on its own
        out = {}
        for name, mask in masks.items():
            try:
                out[name] = float(roi_rsa(y, x, {name: mask})["rsa"].iloc[0])
            except ValueError:
                out[name] = float("nan")
        return out


def load_fit_bootstrap(dataset: Dataset, spec: FitSpec, settings: FitSettings) -> tuple[list[str], dict[str, np.ndarray]]:
    """The stored bootstrap of a fit: (ROI names, arrays ``nalign`` and ``r`` of shape
    (n_boot, n_rois)).

    Raises
    ------
    ArtifactError
        When the fit or its bootstrap is not stored.
    """
    spec = normalize_spec(dataset, spec)
    key = fit_key(dataset, spec, settings)
    folder = fits_dir(spec.dataset)
    info = read_json(folder / f"{key}.json")
    boot = info.get("bootstrap")
    if not boot:
        raise ArtifactError(f"fit {spec.label()} has no stored bootstrap")
    return list(boot["rois"]), load_npz(folder / f"{key}.boot.npz")


def is_stored(dataset: Dataset, spec: FitSpec, settings: FitSettings, keep_encoder: bool) -> bool:
    """Whether :func:`run_fit` would read this fit from the store instead of fitting it."""
    spec = normalize_spec(dataset, spec)
    stored = _stored_fit(fits_dir(spec.dataset), fit_key(dataset, spec, settings),
                         dataset.subject(spec.subject))  # fmt: skip
    return stored is not None and (not keep_encoder or _encoder_present(stored[1]))


def _encoder_present(info: dict) -> bool:
    key = info.get("encoder_key")
    return bool(key) and (subdir("encoders") / key / "manifest.json").exists()


def load_fit_scores(dataset: Dataset, spec: FitSpec, settings: FitSettings) -> dict[str, np.ndarray]:
    """Per-target scores of a stored fit (arrays of shape (n_targets,)).

    Raises
    ------
    ArtifactError
        When no fit of this content is stored (or it was made from another target set).
    """
    spec = normalize_spec(dataset, spec)
    key = fit_key(dataset, spec, settings)
    stored = _stored_fit(fits_dir(spec.dataset), key, dataset.subject(spec.subject))
    if stored is None:
        raise ArtifactError(
            f"no stored fit {spec.label()} for the current content of {spec.dataset!r} "
            f"with these settings (key {key[:12]}); run `python -m core run` or `fit`"
        )
    return stored[0]


def fit_manifest(dataset: Dataset, spec: FitSpec, settings: FitSettings) -> dict:
    """The manifest of a stored fit (raises ArtifactError when absent)."""
    spec = normalize_spec(dataset, spec)
    return read_json(fits_dir(spec.dataset) / f"{fit_key(dataset, spec, settings)}.json")


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
                "subject_key": info.get("provenance", {}).get("subject_key"),
                "features_key": info.get("provenance", {}).get("features_key"),
                "alpha_edge_frac": info.get("alpha_edge_frac"),
                "encoder_key": info.get("encoder_key"),
                "seconds": info.get("seconds"),
            }
        )
    return pd.DataFrame(rows)
