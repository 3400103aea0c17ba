"""Instruction search: which instruction's response embedding best predicts a brain area?

``python -m core discover`` (:func:`run_discover`) searches a candidate set (the prompt pool, a
user file, compositional templates; :mod:`core.models.candidates`) for the instruction whose
response embeddings best predict an objective, without the test set choosing anything.

Objective (:class:`Objective`)
    An ROI (``--roi FFA``), a contrast between two ROIs (``--roi FFA --contrast PPA``: the
    first minus the second) or a custom target set (``--targets FILE.json``: subject -> target
    indices). The value of a candidate for one subject is the mean, over the objective's
    targets whose noise ceiling exceeds :data:`core.results.fit.MIN_NC`, of its per-target
    score (the contrast subtracts the second ROI's mean), averaged over subjects.

CV score (what chooses)
    The normalised cross-validated correlation of each target on the training images:
    ``sign(cv) sqrt(|cv| / NC_train)`` where ``cv`` is the encoder's per-target CV score
    (1 - CV MSE of the train-z-scored responses, ~ CV R2; ``RidgeEncoder.cv_scores_ + 1``, as
    every fit stores it) and ``NC_train`` the noise ceiling of the training rows used (their
    own repeat counts). It is the CV analogue of the reported normalised alignment
    ``r / sqrt(NC)``, so an ROI objective and a contrast between ROIs of different ceilings
    are on one scale. Only training images enter it.

Budget: successive halving
    Round 0 fits every candidate on ``n_0`` training images (a seeded random subset of the
    union of the subjects' training images), with cheap fits (the ``fast`` alphas, the
    objective's targets and the general mask only); the best ``1/eta`` survive to a round on
    ``eta`` times as many images (a superset: earlier rows are reused), until at most
    ``finalists`` remain. The finalists get full extraction (every image of the subjects) and
    a full fit through :func:`core.results.fit.run_fit` (stored and content-addressed like
    the grid's fits, with the grid's fit settings), as does every one of the paper's 10 (the
    comparison). The cost in responses is stated up front (:class:`SearchPlan`: an upper
    bound, since stored responses are never generated again) and measured after (what was
    actually generated); a ``--budget N`` picks the largest ``n_0`` whose upper bound fits.

Selection without the winner's curse
    Candidates are compared by CV scores on training images only. The finalists are ranked by
    their full fits' CV score; the best of the paper's 10 is chosen by the very same rule.
    Only then are both reported on the test images, once, with 95% bootstrap intervals over
    the test images from the fits' stored bootstrap (the same resamples for every fit and
    subject, so the winner - paper difference is paired). The result says how many candidates
    were searched (``n_candidates``): the winner is the best of N by CV.

Layer
    The model's CV-best layer (:func:`core.results.selection.best_layers` on the results table
    when the grid ran for the model), else its last layer.

Store and resume
    ``<home>/results/<dataset>/discover/<key>.json`` (the result), ``<key>.progress.json``
    (each finished round: its candidates, scores and survivors), ``<key>.screen.npz`` (round
    0's per-target CV maps, for the text-vs-map analysis) and ``<key>.maps.npz`` (the winner's
    and the best paper instruction's test maps). The key hashes the dataset's content (subject
    keys, stimulus key), the model's identity, the candidates' texts, the objective, the
    budget and schedule as requested (not the plan a budget buys, which depends on what is
    already stored), the layer and the fit settings. A rerun with the same key reads the
    result; a killed search resumes after its last finished round whose images still match
    the plan (extraction itself resumes per image).

Does the instruction's meaning predict its brain map? (:func:`text_map_similarity`)
    For every candidate, the instruction text embedded by the model's own language model
    (``text:<model>``: its decoder over the text alone, mean over the tokens, at the search's
    layer) and its round-0 CV map over the general mask; the similarity of texts (cosine)
    against the similarity of maps (Pearson over targets, averaged over subjects), pair by
    pair, with their correlation and a Mantel permutation p.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from core.config import subdir
from core.hashing import array_digest, content_key
from core.models.candidates import Candidate, candidate_set
from core.models.instructions import PAPER_INSTRUCTIONS, Instruction
from core.results.fit import MIN_NC, FitSettings
from core.storage import ArtifactError, load_npz, read_json, save_npz, write_json

#: Bumped when what a search computes changes (part of every search key).
DISCOVER_VERSION = "1"
#: Smallest first round (images): fewer leave 5-fold CV too little to rank on.
MIN_SCREEN_IMAGES = 40
#: First-round images when no budget is given.
DEFAULT_FIRST_ROUND = 100
#: Alpha grid of the screening fits.
SCREEN_ALPHAS = "fast"
#: Permutations of the Mantel test of the text-vs-map analysis.
N_MANTEL = 999


# --------------------------------------------------------------------------- objective


@dataclass(frozen=True)
class Objective:
    """What a search maximises (see the module docstring).

    Parameters
    ----------
    roi : str or None
        The ROI (None for a custom target set).
    contrast : str or None
        A second ROI whose value is subtracted.
    targets : dict of str to tuple of int, or None
        A custom target set per subject (target indices); replaces ``roi``.
    """

    roi: str | None = None
    contrast: str | None = None
    targets: dict[str, tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if (self.roi is None) == (self.targets is None):
            raise ValueError("an objective is an ROI (optionally with a contrast) or a target set")
        if self.targets is not None and self.contrast is not None:
            raise ValueError("a custom target set takes no contrast ROI")

    @property
    def kind(self) -> str:
        return "targets" if self.targets is not None else "contrast" if self.contrast else "roi"

    def label(self) -> str:
        if self.targets is not None:
            return f"custom targets ({sum(len(v) for v in self.targets.values())})"
        return f"{self.roi} − {self.contrast}" if self.contrast else str(self.roi)

    def to_dict(self) -> dict:
        targets = None
        if self.targets is not None:
            targets = {s: array_digest(np.asarray(v, np.int64)) for s, v in sorted(self.targets.items())}
        return {"kind": self.kind, "roi": self.roi, "contrast": self.contrast,
                "targets": targets}  # fmt: skip

    def masks(self, subject, roi_masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """The objective's targets of one subject: (plus, minus), boolean arrays of shape
        (n_targets,); minus is None without a contrast.

        Raises
        ------
        ValueError
            For an ROI the subject does not have, or a target set without this subject.
        """
        n = subject.n_targets
        if self.targets is not None:
            if subject.subject not in self.targets:
                raise ValueError(f"the custom target set has no targets of {subject.subject}")
            idx = np.asarray(self.targets[subject.subject], np.int64)
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
                raise ValueError(f"{subject.subject}: target indices must lie in [0, {n})")
            plus = np.zeros(n, bool)
            plus[idx] = True
            return plus, None

        def mask(roi: str) -> np.ndarray:
            if roi not in roi_masks:
                raise ValueError(f"{subject.subject} has no ROI {roi!r}; ROIs: {', '.join(roi_masks)}")
            return roi_masks[roi]

        return mask(self.roi), (mask(self.contrast) if self.contrast else None)


def read_targets(path: str | Path) -> dict[str, tuple[int, ...]]:
    """A custom target set from JSON: ``{"subj01": [0, 5, ...], ...}``."""
    info = read_json(Path(path))
    if not isinstance(info, dict) or not info:
        raise ValueError(f"{path}: expected an object subject -> list of target indices")
    return {str(s): tuple(sorted({int(i) for i in v})) for s, v in info.items()}


# --------------------------------------------------------------------------- scores


def normalized_cv(cv: np.ndarray, nc: np.ndarray) -> np.ndarray:
    """Per-target normalised CV correlation ``sign(cv) sqrt(|cv| / nc)``.

    Parameters
    ----------
    cv : array of shape (n_targets,)
        CV score (1 - CV MSE of z-scored responses).
    nc : array of shape (n_targets,)
        Noise ceiling (fraction of variance) of the same rows.

    Returns
    -------
    score : array of shape (n_targets,), float64
        NaN where the ceiling is at most :data:`MIN_NC` or ``cv`` is not finite.
    """
    cv = np.asarray(cv, np.float64)
    nc = np.asarray(nc, np.float64)
    out = np.full(cv.shape, np.nan)
    ok = np.isfinite(cv) & np.isfinite(nc) & (nc > MIN_NC)
    out[ok] = np.sign(cv[ok]) * np.sqrt(np.abs(cv[ok]) / nc[ok])
    return out


def objective_value(values: np.ndarray, plus: np.ndarray, minus: np.ndarray | None) -> float:
    """Mean of finite ``values`` (shape (n_targets,)) over ``plus``, minus that over ``minus``."""

    def mean(mask: np.ndarray) -> float:
        v = values[mask]
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    return mean(plus) - (mean(minus) if minus is not None else 0.0)


# --------------------------------------------------------------------------- plan


@dataclass
class DiscoverConfig:
    """What to search (see the module docstring and ``python -m core discover --help``).

    Parameters
    ----------
    dataset, model : str
    objective : Objective
    candidates : str
        :func:`core.models.candidates.candidate_set` spec (``pool``, ``generated``, a file, ...).
    n_generated : int
        Template candidates when ``generated`` is part of ``candidates``.
    budget : int or None
        Most new responses the search may generate (None: first round of
        :data:`DEFAULT_FIRST_ROUND` images).
    eta : int
        Keep 1 / eta per round, eta times the images.
    finalists : int
        Candidates that get full extraction and full fits.
    first_round : int or None
        Images of round 0 (overrides the budget's choice).
    seed : int
        Seeds the image subsets.
    layer : int or None
        Hidden-state index (None: the CV-best layer of the grid, else the last).
    subjects : list of str or None
    settings : FitSettings or None
        Full fits' settings (None: the last grid run's, so the paper's fits are reused).
    engine : {"local", "ray"}
        Where extraction runs (fits run here: a handful).
    address : str or None
    batch_size : int
    text_similarity : bool
        Run the text-vs-map analysis.
    fit_threads : int or None
        BLAS threads of the fits (None: the library's default). One by default: the screening
        fits are small, and on 2 shared cores oversubscribed BLAS threads made them 7-70x
        slower (measured: 13,000 targets x 90 images x 128 features, 1.3 s vs 0.18 s).
    """

    dataset: str = "demo"
    model: str = "demo-vlm"
    objective: Objective = field(default_factory=lambda: Objective(roi="FFA"))
    candidates: str = "pool+generated"
    n_generated: int = 32
    budget: int | None = None
    eta: int = 3
    finalists: int = 4
    first_round: int | None = None
    seed: int = 0
    layer: int | None = None
    subjects: list[str] | None = None
    settings: FitSettings | None = None
    engine: str = "local"
    address: str | None = None
    batch_size: int = 32
    text_similarity: bool = True
    fit_threads: int | None = 1


def schedule(n_candidates: int, n_train: int, finalists: int, eta: int, first: int) -> list[tuple[int, int]]:
    """Successive-halving rounds.

    Returns
    -------
    rounds : list of (candidates, images)
        Round r screens ``candidates`` on the first ``images`` of the seeded training subset;
        empty when there are no more candidates than finalists.
    """
    if eta < 2:
        raise ValueError("eta must be at least 2")
    rounds: list[tuple[int, int]] = []
    c, n = n_candidates, first
    while c > finalists:
        rounds.append((c, min(n, n_train)))
        c, n = max(finalists, math.ceil(c / eta)), n * eta
    return rounds


def search_cost(rounds: Sequence[tuple[int, int]], n_finalists: int, n_full: int, paper_pending: int) -> int:
    """Upper bound of the responses a search generates: every round's new images for its
    candidates (earlier rounds' images are reused), the finalists' remaining images and the
    paper instructions' missing responses."""
    total, prev = 0, 0
    for c, n in rounds:
        total += c * (n - prev)
        prev = n
    return total + n_finalists * (n_full - prev) + paper_pending


@dataclass
class SearchPlan:
    """The plan of a search and its cost in responses, stated before anything runs."""

    n_candidates: int
    rounds: list[tuple[int, int]]
    n_finalists: int
    n_train: int
    n_full: int
    paper_pending: int
    budget: int | None
    layer: int

    @property
    def responses(self) -> int:
        """Upper bound of the responses generated (stored ones are not generated again)."""
        return search_cost(self.rounds, self.n_finalists, self.n_full, self.paper_pending)

    @property
    def exhaustive(self) -> int:
        """What full extraction of every candidate would cost (the same bound)."""
        return search_cost([], self.n_candidates, self.n_full, self.paper_pending)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rounds"] = [list(r) for r in self.rounds]
        d["responses"] = self.responses
        d["exhaustive_responses"] = self.exhaustive
        return d

    def format(self) -> str:
        lines = [f"{self.n_candidates} candidates, layer {self.layer}; training images "
                 f"{self.n_train}, all images {self.n_full}"]  # fmt: skip
        prev = 0
        for r, (c, n) in enumerate(self.rounds):
            lines.append(f"  round {r}: {c} candidates on {n} training images "
                         f"(<= {c * (n - prev)} responses)")  # fmt: skip
            prev = n
        lines.append(f"  finalists: {self.n_finalists} on all {self.n_full} images "
                     f"(<= {self.n_finalists * (self.n_full - prev)} responses)")  # fmt: skip
        lines.append(f"  the paper's 10 (the comparison): {self.paper_pending} responses missing")
        budget = f" (budget {self.budget})" if self.budget is not None else ""
        lines.append(f"  at most {self.responses} responses{budget}; exhaustive extraction of "
                     f"every candidate: {self.exhaustive}")  # fmt: skip
        return "\n".join(lines)


def first_round_for(budget: int, n_candidates: int, n_train: int, n_full: int, finalists: int,
                    eta: int, paper_pending: int) -> int:  # fmt: skip
    """The largest first round (images) whose plan costs at most ``budget`` responses.

    Raises
    ------
    ValueError
        When even :data:`MIN_SCREEN_IMAGES` images cost more (the message says how much).
    """
    lo = min(MIN_SCREEN_IMAGES, n_train)

    def cost(n0: int) -> int:
        rounds = schedule(n_candidates, n_train, finalists, eta, n0)
        return search_cost(rounds, min(finalists, n_candidates), n_full, paper_pending)

    if cost(lo) > budget:
        raise ValueError(
            f"a budget of {budget} responses is too small for {n_candidates} candidates: the "
            f"smallest search ({lo} images in the first round, {finalists} finalists on all "
            f"{n_full} images, the paper's 10) costs up to {cost(lo)} responses"
        )
    best = lo
    for n0 in range(lo, n_train + 1):
        if cost(n0) <= budget:
            best = n0
    return best


# --------------------------------------------------------------------------- free-text ids


def _remembered(ins: Instruction) -> Instruction:
    """``ins``, with its text remembered under its free-text id in this home (so every reader
    of the fit, in any process, resolves the id to the text)."""
    from core.models.instructions import free_text

    if ins.id.startswith("free-") and free_text(ins.text).id != ins.id:
        raise ValueError(f"free-text id {ins.id!r} is not the id of its text {ins.text!r}")
    return ins


# --------------------------------------------------------------------------- the search


def discover_dir(dataset: str) -> Path:
    return subdir("results", dataset, "discover")


def choose_layer(dataset, model: str, layer: int | None) -> int:
    """The search's layer: ``layer`` (non-negative index) if given, else the model's CV-best
    layer in the grid's results table, else its last layer."""
    from core.models.layers import layer_index
    from core.pipeline.grid import model_layers
    from core.results.selection import best_layers
    from core.results.tables import load_roi_table

    n = len(model_layers(model, dataset.name))
    if layer is not None:
        return layer_index(layer, n, model)
    table = load_roi_table(dataset.name, dataset)
    if not table.empty and "cv_score_mean" in table and model in set(table["model"]):
        best = best_layers(table[table["model"] == model]).get(model)
        if best is not None:
            return int(best)
    return n - 1


class _Search:
    """One search's state: dataset, model, candidates, images and the store."""

    def __init__(self, config: DiscoverConfig, progress: bool, log: Callable[[str], None]):
        from core.data.registry import open_dataset
        from core.data.rois import roi_masks
        from core.models.registry import describe, resolve
        from core.pipeline.grid import grid_image_ids, is_generative
        from core.results.tables import grid_settings

        self.config, self.progress, self.log = config, progress, log
        self.ds = open_dataset(config.dataset)
        if not is_generative(config.model):
            raise ValueError(f"{config.model} takes no instruction: nothing to search")
        self.subjects = list(config.subjects or self.ds.subject_names)
        self.settings = config.settings or grid_settings(config.dataset)
        self.options = self.settings.generation_options()
        self.extraction = self.settings.extraction()
        self.spec = resolve(config.model)
        self.layer = choose_layer(self.ds, config.model, config.layer)
        self.candidates: list[Candidate] = candidate_set(config.candidates, config.n_generated)
        self.paper = list(PAPER_INSTRUCTIONS)
        self.masks = {}
        for s in self.subjects:
            subject = self.ds.subject(s)
            self.masks[s] = config.objective.masks(subject, roi_masks(subject))
        train = np.unique(np.concatenate([self.ds.subject(s).train_ids for s in self.subjects]))
        self.train_order = np.random.default_rng([config.seed, 22]).permutation(train)
        self.full_ids = grid_image_ids(self.ds, self.subjects)
        paper_pending = sum(self.pending(i, self.full_ids) for i in self.paper)
        n_train = int(train.size)
        first = config.first_round
        if first is None:
            first = (DEFAULT_FIRST_ROUND if config.budget is None else first_round_for(
                config.budget, len(self.candidates), n_train, int(self.full_ids.size),
                config.finalists, config.eta, paper_pending))  # fmt: skip
        first = max(min(first, n_train), 1)
        rounds = schedule(len(self.candidates), n_train, config.finalists, config.eta, first)
        self.plan = SearchPlan(len(self.candidates), rounds,
                               min(config.finalists, len(self.candidates)), n_train,
                               int(self.full_ids.size), paper_pending, config.budget, self.layer)  # fmt: skip
        self.key = content_key("discover", {
            "version": DISCOVER_VERSION,
            "stimuli": self.ds.stimulus_key(),
            "subjects": {s: self.ds.subject_key(s) for s in self.subjects},
            "model": describe(self.spec)["identity"],
            "candidates": [(c.text, c.task) for c in self.candidates],
            "objective": config.objective.to_dict(),
            # the request, not the plan derived from it: the plan depends on what is stored
            # (a budget buys a larger first round once the paper's responses are stored), and
            # the same request must find its stored result
            "budget": config.budget, "first_round": config.first_round, "eta": config.eta,
            "finalists": config.finalists, "seed": config.seed, "layer": self.layer,
            "settings": self.settings.to_dict(), "screen_alphas": SCREEN_ALPHAS,
        })  # fmt: skip
        self.folder = discover_dir(config.dataset)
        self.spent: dict[str, int] = {}
        self._adapter = None

    # ---------------------------------------------------------------- extraction
    def shard(self, ins: Instruction) -> Path:
        from core.features.store import find_shard

        return find_shard(self.ds, self.spec, ins, self.options, self.extraction)

    def pending(self, ins: Instruction, ids: np.ndarray) -> int:
        from core.pipeline.engine import stored_ids

        done = stored_ids(self.shard(ins))
        return int(sum(int(i) not in done for i in ids))

    def extract(self, instructions: Sequence[Instruction], ids: np.ndarray, phase: str) -> int:
        """Extract what is missing of ``instructions`` x ``ids``; returns the responses
        generated (counted before, so it is exact)."""
        todo = [i for i in instructions if self.pending(i, ids)]
        n = sum(self.pending(i, ids) for i in todo)
        self.spent[phase] = self.spent.get(phase, 0) + n
        if not n:
            return 0
        self.log(f"{phase}: generating {n} responses ({len(todo)} instructions x up to {ids.size} images)")
        if self.config.engine == "ray":
            from core.pipeline.engine import plan_extraction, ray_extract, ray_extraction, ray_init

            ray_init(self.config.address)
            extraction = ray_extraction(self.extraction)
            units = plan_extraction(self.ds, [self.config.model], todo, self.options, ids,
                                    256, extraction)  # fmt: skip
            ray_extract(self.ds, units, self.options, batch_size=self.config.batch_size,
                        progress=self.progress, extraction=extraction)  # fmt: skip
            return n
        from core.features.extract import extract_model
        from core.models.adapters import load_adapter

        if self._adapter is None:
            self._adapter = load_adapter(self.config.model, device=self.extraction.device,
                                         dtype=self.extraction.dtype)  # fmt: skip
        extract_model(self.ds, self._adapter, todo, self.options, batch_size=self.config.batch_size,
                      prefix_reuse=self.extraction.prefix_reuse, image_ids=ids,
                      progress=self.progress, method=self.extraction.method)  # fmt: skip
        return n

    def features(self, ins: Instruction) -> tuple[np.ndarray, np.ndarray]:
        from core.features.extract import load_embeddings

        return load_embeddings(self.ds, self.config.model, ins, self.layer, self.options,
                               self.extraction)  # fmt: skip

    # ---------------------------------------------------------------- screening
    def fit_targets(self, s: str) -> np.ndarray:
        """Targets a screening fit scores: the general mask and the objective's targets."""
        subject = self.ds.subject(s)
        plus, minus = self.masks[s]
        keep = subject.targets.general_mask.astype(bool) | plus
        if minus is not None:
            keep |= minus
        return np.flatnonzero(keep)

    def screen(self, candidates: Sequence[Candidate], n_images: int, maps: bool) -> tuple[np.ndarray, np.ndarray, dict]:
        """Cheap CV fits of every candidate on the first ``n_images`` of the training subset.

        Returns
        -------
        scores : array of shape (n_candidates,)
            Objective value, mean over subjects.
        per_subject : array of shape (n_candidates, n_subjects)
        cv_maps : dict of subject to array of shape (n_candidates, n_fit_targets), float32
            Per-target normalised CV scores (only when ``maps``).
        """
        from core.encoding.estimator import RidgeEncoder

        ids = np.sort(self.train_order[:n_images])
        per = np.full((len(candidates), len(self.subjects)), np.nan)
        cv_maps: dict[str, np.ndarray] = {}
        data = {}
        for s in self.subjects:
            subject = self.ds.subject(s)
            rows = np.flatnonzero(np.isin(subject.stimulus_ids, ids) & ~subject.is_test)
            cols = self.fit_targets(s)
            plus, minus = self.masks[s]
            data[s] = (rows, cols, subject.responses[np.ix_(rows, cols)],
                       subject.noise_ceiling(rows)[cols], plus[cols],
                       None if minus is None else minus[cols])  # fmt: skip
            if maps:
                cv_maps[s] = np.full((len(candidates), cols.size), np.nan, np.float32)
        bar = tqdm(candidates, desc=f"screening on {n_images} images", unit="cand",
                   disable=not self.progress)  # fmt: skip
        for k, cand in enumerate(bar):
            fid, X = self.features(cand.instruction)
            for j, s in enumerate(self.subjects):
                rows, cols, Y, nc, plus, minus = data[s]
                pos = np.searchsorted(fid, self.ds.subject(s).stimulus_ids[rows])
                if rows.size < 2 * self.settings.cv:
                    continue
                enc = RidgeEncoder(alphas=SCREEN_ALPHAS, cv=self.settings.cv,
                                   solver=self.settings.solver, backend=self.settings.backend)  # fmt: skip
                enc.fit(X[pos], Y)
                score = normalized_cv(1.0 + np.asarray(enc.cv_scores_, np.float64), nc)
                per[k, j] = objective_value(score, plus, minus)
                if maps:
                    cv_maps[s][k] = score
        bar.close()
        return np.nanmean(per, axis=1), per, cv_maps

    # ---------------------------------------------------------------- full fits
    def full_fit(self, ins: Instruction) -> dict:
        """Full fits of one instruction for every subject (stored, content-addressed): CV
        score and test value per subject, and the test bootstrap draws.

        Returns
        -------
        info : dict
            ``cv`` and ``test``: arrays of shape (n_subjects,); ``boot``: array of shape
            (n_boot, n_subjects) (NaN-filled when no bootstrap is stored); ``nalign``: dict of
            subject to array of shape (n_targets,) (per-target test normalised alignment).
        """
        from core.results.fit import FitSpec, load_fit_scores, run_fit

        n_boot = max(self.settings.n_boot, 1)
        out = {"cv": np.full(len(self.subjects), np.nan), "test": np.full(len(self.subjects), np.nan),
               "boot": np.full((n_boot, len(self.subjects)), np.nan), "nalign": {}}  # fmt: skip
        _remembered(ins)
        for j, s in enumerate(self.subjects):
            subject = self.ds.subject(s)
            spec = FitSpec(self.config.dataset, s, self.config.model, ins.id, self.layer)
            run_fit(self.ds, spec, self.settings)
            scores = load_fit_scores(self.ds, spec, self.settings)
            train, _ = subject.split()
            plus, minus = self.masks[s]
            cv = normalized_cv(scores["cv_score"], subject.noise_ceiling(train))
            out["cv"][j] = objective_value(cv, plus, minus)
            out["test"][j] = objective_value(scores["nalign"], plus, minus)
            out["nalign"][s] = np.asarray(scores["nalign"], np.float32)
            out["boot"][:, j] = self._boot(spec, ins, subject, plus, minus)[:n_boot]
        return out

    def _boot(self, spec, ins: Instruction, subject, plus, minus) -> np.ndarray:
        """Bootstrap draws (n_boot,) of the objective's test value for one fit."""
        from core.results.fit import load_fit_bootstrap

        obj = self.config.objective
        if self.settings.n_boot <= 0:
            return np.full(1, np.nan)
        if obj.targets is None:
            try:
                rois, boot = load_fit_bootstrap(self.ds, spec, self.settings)
            except ArtifactError:
                return np.full(self.settings.n_boot, np.nan)
            draws = boot["nalign"][:, rois.index(obj.roi)].astype(np.float64)
            if obj.contrast:
                draws = draws - boot["nalign"][:, rois.index(obj.contrast)]
            return draws
        return self._target_boot(ins, subject, plus)

    def _target_boot(self, ins: Instruction, subject, plus: np.ndarray) -> np.ndarray:
        """A custom target set has no stored bootstrap: the fit of those targets alone (the
        same per-target ridge, so the same predictions) and the fits' bootstrap rule."""
        from core.encoding.ceiling import ceiling_mask
        from core.encoding.estimator import RidgeEncoder
        from core.encoding.scores import pearson_r
        from core.results.fit import aligned_features, fit_bootstrap

        cols = np.flatnonzero(plus)
        X = aligned_features(self.ds, subject, self.config.model, ins.id, self.layer, self.settings)
        train, test = subject.split()
        Y = subject.responses[:, cols]
        enc = RidgeEncoder(alphas=self.settings.alphas, cv=self.settings.cv,
                           solver=self.settings.solver, backend=self.settings.backend)  # fmt: skip
        enc.fit(X[train], Y[train])
        pred = enc.predict(X[test])
        nc = subject.noise_ceiling(test)[cols]
        usable = ceiling_mask(nc, MIN_NC) & np.isfinite(pearson_r(Y[test], pred))
        boot = fit_bootstrap(subject, test, Y[test], pred, nc, usable,
                             {"targets": np.ones(cols.size, bool)}, self.settings)  # fmt: skip
        return boot["nalign"][:, 0].astype(np.float64)

    # ---------------------------------------------------------------- store
    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.key}{suffix}"


def _interval(draws: np.ndarray) -> list[float | None]:
    d = draws[np.isfinite(draws)]
    if not d.size:
        return [None, None]
    lo, hi = np.percentile(d, [2.5, 97.5])
    return [float(lo), float(hi)]


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def run_discover(config: DiscoverConfig, progress: bool = True, log: Callable[[str], None] = print,
                 dry_run: bool = False, force: bool = False) -> dict:  # fmt: skip
    """Run (or read, or resume) one search; returns its result (also stored as JSON).

    Parameters
    ----------
    config : DiscoverConfig
    progress : bool
        Progress bars.
    log : callable
        Where the plan and phase lines go.
    dry_run : bool
        Return ``{"key", "plan"}`` and run nothing.
    force : bool
        Recompute the result even when it is stored (stored rounds, embeddings and fits are
        still reused).

    Returns
    -------
    result : dict
        See :func:`format_result`; ``leaderboard`` in rank order, ``n_candidates``, ``plan``
        (the cost stated up front), ``spent`` (measured), ``paper_best``, ``gain`` (winner minus
        the best paper instruction), ``best_new`` (the best fully fitted candidate that is not
        one of the paper's 10, with its difference), ``text_similarity``; ``reused`` is True
        when read from the store.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(config.fit_threads):
        return _run_discover(config, progress, log, dry_run, force)


def _run_discover(config: DiscoverConfig, progress: bool, log: Callable[[str], None],
                  dry_run: bool, force: bool) -> dict:  # fmt: skip
    t0 = time.perf_counter()
    search = _Search(config, progress, log)
    out_path = search.path(".json")
    if dry_run:
        return {"key": search.key, "plan": search.plan.to_dict(), "plan_text": search.plan.format()}
    if out_path.exists() and not force:
        result = read_json(out_path)
        result["reused"] = True
        return result
    log(f"search {search.key} on {config.dataset}: {config.model}, objective "
        f"{config.objective.label()}\n{search.plan.format()}")  # fmt: skip
    progress_path = search.path(".progress.json")
    try:
        state = read_json(progress_path)
    except ArtifactError:
        state = {"key": search.key, "rounds": []}
    cands = search.candidates
    alive = list(range(len(cands)))
    last_score: dict[int, tuple[int, float, list]] = {}
    for r, (_, n_img) in enumerate(search.plan.rounds):
        done = state["rounds"][r] if r < len(state["rounds"]) else None
        if done is None or done.get("n_images") != n_img:
            ids = np.sort(search.train_order[:n_img])
            spent = search.extract([cands[i].instruction for i in alive], ids, f"round {r}")
            scores, per, maps = search.screen([cands[i] for i in alive], n_img, maps=r == 0)
            if r == 0:
                save_npz(search.path(".screen.npz"), **{f"map_{s}": m for s, m in maps.items()},
                         **{f"targets_{s}": search.fit_targets(s) for s in search.subjects})  # fmt: skip
            order = sorted(range(len(alive)), key=lambda k: (-np.nan_to_num(scores[k], nan=-np.inf), k))
            n_keep = search.plan.rounds[r + 1][0] if r + 1 < len(search.plan.rounds) else search.plan.n_finalists
            done = {
                "round": r, "n_images": n_img, "candidates": alive,
                "scores": [_num(x) for x in scores],
                "per_subject": [[_num(x) for x in row] for row in per],
                "survivors": sorted(alive[k] for k in order[:n_keep]),
                "responses": spent,
            }  # fmt: skip
            state["rounds"] = state["rounds"][:r] + [done]
            write_json(progress_path, state)
        else:
            search.spent[f"round {r}"] = 0
        for i, sc, ps in zip(done["candidates"], done["scores"], done["per_subject"], strict=True):
            last_score[i] = (r, sc, ps)
        alive = list(done["survivors"])
    finalists = alive
    # full extraction and full fits: the finalists and the paper's 10 (the comparison)
    fin_ins = [cands[i].instruction for i in finalists]
    search.extract(fin_ins, search.full_ids, "finalists")
    search.extract([p for p in search.paper if p not in fin_ins], search.full_ids, "paper")
    log(f"full fits: {len(finalists)} finalists and the paper's 10 x {len(search.subjects)} subjects")
    full: dict[str, dict] = {}
    for ins in tqdm([*fin_ins, *[p for p in search.paper if p not in fin_ins]], desc="full fits",
                    unit="instruction", disable=not progress):  # fmt: skip
        full[ins.id] = search.full_fit(ins)
    result = format_result(search, finalists, last_score, full)
    result["spent"] = {"responses": int(sum(search.spent.values())), "by_phase": search.spent,
                       "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    _save_maps(search, finalists, full, result)
    if config.text_similarity:
        try:
            result["text_similarity"] = _text_similarity(search)
        except Exception as exc:  # a model without a language model of its own
            result["text_similarity"] = {"error": str(exc)}
    result["spent"]["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out_path, result)
    result["reused"] = False
    return result


def format_result(search: _Search, finalists: list[int], last_score: dict, full: dict) -> dict:
    """The result JSON: the leaderboard in rank order and the test-set report."""
    cands = search.candidates
    subjects = search.subjects
    paper_ids = [p.id for p in search.paper]
    # the best paper instruction: chosen by the very same rule (full-fit CV on training images)
    paper_cv = [np.nanmean(full[p]["cv"]) for p in paper_ids]
    best_paper = paper_ids[int(np.nanargmax(paper_cv))]
    pb = full[best_paper]

    def test_report(info: dict) -> dict:
        boot = np.mean(info["boot"], axis=1)
        diff = boot - np.mean(pb["boot"], axis=1)
        per = {}
        for j, s in enumerate(subjects):
            per[s] = {"cv": _num(info["cv"][j]), "test": _num(info["test"][j]),
                      "test_ci": _interval(info["boot"][:, j]),
                      "diff_vs_paper": _num(info["test"][j] - pb["test"][j]),
                      "diff_ci": _interval(info["boot"][:, j] - pb["boot"][:, j])}  # fmt: skip
        return {"cv": _num(np.nanmean(info["cv"])), "test": _num(np.mean(info["test"])),
                "test_ci": _interval(boot),
                "diff_vs_paper": _num(np.mean(info["test"]) - np.mean(pb["test"])),
                "diff_ci": _interval(diff), "per_subject": per}  # fmt: skip

    entries = []
    fin_set = set(finalists)
    # every fully fitted instruction competes on the same full-fit CV score: the finalists and
    # the paper's 10 (fitted anyway, as the comparison), whether or not they were candidates
    extra = [Candidate(p, p.task, "paper") for p in search.paper
             if p.id not in {c.id for c in cands}]  # fmt: skip
    for i, c in enumerate([*cands, *extra]):
        rnd, score, _ = last_score.get(i, (None, None, None))
        fitted = c.id in full and (i in fin_set or c.id in paper_ids)
        entry = {**c.to_dict(), "order": i, "screened": i < len(cands), "finalist": i in fin_set,
                 "full_fit": fitted, "round_reached": rnd, "screening_cv": score,
                 "responses": int(search.plan.n_full if fitted else
                                  (search.plan.rounds[rnd][1] if rnd is not None else 0))}  # fmt: skip
        if fitted:
            entry.update(test_report(full[c.id]))
            entry["cv_stage"] = "full fit"
        else:
            entry.update({"cv": score, "cv_stage": f"round {rnd} ({search.plan.rounds[rnd][1]} images)",
                          "test": None, "test_ci": [None, None], "diff_vs_paper": None,
                          "diff_ci": [None, None]})  # fmt: skip
        entries.append(entry)

    def rank_key(e):
        cv = e["cv"] if e["cv"] is not None else -np.inf
        if e["full_fit"]:  # one criterion for every fully fitted instruction
            return (0, 0, -cv)
        return (1, -(e["round_reached"] or 0), -cv)

    entries.sort(key=rank_key)
    for k, e in enumerate(entries):
        e["rank"] = k + 1
    winner = entries[0]
    paper_entry = {"id": best_paper, "text": search.paper[paper_ids.index(best_paper)].text,
                   "task": search.paper[paper_ids.index(best_paper)].task,
                   **{k: v for k, v in test_report(pb).items() if not k.startswith("diff")},
                   "cv_all": {p: _num(c) for p, c in zip(paper_ids, paper_cv, strict=True)}}  # fmt: skip
    per_gain = {s: winner["per_subject"][s] for s in subjects}
    gain = {
        "difference": winner["diff_vs_paper"], "ci": winner["diff_ci"],
        "claimed": bool(winner["diff_ci"][0] is not None and winner["diff_ci"][0] > 0),
        "per_subject": {s: {"difference": v["diff_vs_paper"], "ci": v["diff_ci"]}
                        for s, v in per_gain.items()},
    }  # fmt: skip
    # the best fully fitted instruction that is not one of the paper's 10 (what the search added)
    new = next((e for e in entries if e["full_fit"] and e["id"] not in paper_ids), None)
    best_new = None if new is None else {k: new[k] for k in (
        "id", "text", "task", "source", "rank", "cv", "test", "test_ci", "diff_vs_paper",
        "diff_ci", "per_subject")}  # fmt: skip
    cfg = search.config
    return {
        "key": search.key, "dataset": cfg.dataset, "model": cfg.model, "layer": search.layer,
        "objective": {**cfg.objective.to_dict(), "label": cfg.objective.label()},
        "subjects": subjects, "candidates_spec": cfg.candidates,
        "n_candidates": len(entries), "n_screened": len(cands), "n_finalists": len(finalists),
        "selection": (f"best of {len(entries)} candidates by cross-validated score on training "
                      f"images ({len(cands)} screened, {len(finalists)} finalists and the "
                      "paper's 10 fully fitted); the best of the paper's 10 chosen by the same "
                      "rule; both reported once on the test images"),
        "settings": search.settings.to_dict(), "screen_alphas": SCREEN_ALPHAS,
        "plan": search.plan.to_dict(), "leaderboard": entries, "winner": winner["id"],
        "paper_best": paper_entry, "gain": gain, "best_new": best_new, "finished": time.time(),
    }  # fmt: skip


def _save_maps(search: _Search, finalists: list[int], full: dict, result: dict) -> None:
    """The winner's and the best paper instruction's per-target test maps, per subject."""
    win = result["winner"]
    best = result["paper_best"]["id"]
    arrays = {}
    for s in search.subjects:
        arrays[f"winner_{s}"] = full[win]["nalign"][s]
        arrays[f"paper_{s}"] = full[best]["nalign"][s]
    save_npz(search.path(".maps.npz"), **arrays)


# --------------------------------------------------------------------------- text vs maps


def text_embeddings(model: str, texts: Sequence[str], layer: int, device: str = "cpu",
                    dtype: str | None = None) -> np.ndarray:  # fmt: skip
    """Instruction texts embedded by the model's own language model (``text:<model>``: its
    decoder over the text alone, mean over the text's tokens).

    Returns
    -------
    E : array of shape (n_texts, d), float32
    """
    from core.models.adapters import load_adapter
    from core.models.adapters.base import GenerationOptions, Response

    adapter = load_adapter(f"text:{model}", device=device, dtype=dtype)
    options = GenerationOptions(layers=(layer,))
    out = []
    for start in range(0, len(texts), 16):
        batch = [Response(t, 0, np.zeros((0, 0), np.float32), ()) for t in texts[start : start + 16]]
        out += [r.embeddings[0] for r in adapter.derive(batch, options)]
    return np.asarray(out, np.float32)


def text_map_similarity(text_emb: np.ndarray, maps: Sequence[np.ndarray], n_perm: int = N_MANTEL,
                        seed: int = 0) -> dict:  # fmt: skip
    """Does the instruction's meaning predict its brain map?

    Parameters
    ----------
    text_emb : array of shape (n, d)
        One text embedding per candidate.
    maps : sequence of arrays of shape (n, n_targets_s)
        Per subject, one map per candidate (NaN where a target has no score).
    n_perm : int
        Permutations of the candidates for the Mantel p-value.

    Returns
    -------
    result : dict
        ``pearson``, ``spearman`` (over the n (n - 1) / 2 pairs), ``p_mantel`` (two-sided),
        ``n_candidates``, ``n_pairs`` and the pairs: ``i``, ``j`` (lists of int), ``text``
        (cosine similarity), ``map`` (Pearson over targets, mean over subjects).
    """
    from scipy import stats

    E = np.asarray(text_emb, np.float64)
    E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    T = E @ E.T
    sims = []
    for m in maps:
        m = np.asarray(m, np.float64)
        ok = np.isfinite(m).all(axis=0)
        sims.append(np.corrcoef(m[:, ok]) if ok.sum() > 2 else np.full((len(m), len(m)), np.nan))
    M = np.nanmean(np.stack(sims), axis=0)
    n = T.shape[0]
    i, j = np.triu_indices(n, 1)
    t, mm = T[i, j], M[i, j]
    ok = np.isfinite(t) & np.isfinite(mm)
    r = float(np.corrcoef(t[ok], mm[ok])[0, 1]) if ok.sum() > 2 else float("nan")
    rho = float(stats.spearmanr(t[ok], mm[ok]).statistic) if ok.sum() > 2 else float("nan")
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(n_perm):
        p = rng.permutation(n)
        tp = T[np.ix_(p, p)][i, j]
        rp = np.corrcoef(tp[ok], mm[ok])[0, 1]
        exceed += abs(rp) >= abs(r)
    return {"pearson": _num(r), "spearman": _num(rho), "p_mantel": (exceed + 1) / (n_perm + 1),
            "n_candidates": int(n), "n_pairs": int(ok.sum()), "i": i[ok].tolist(),
            "j": j[ok].tolist(), "text": np.round(t[ok], 5).tolist(),
            "map": np.round(mm[ok], 5).tolist()}  # fmt: skip


def _text_similarity(search: _Search) -> dict:
    try:
        data = load_npz(search.path(".screen.npz"))
    except ArtifactError:
        return {"error": "no screening maps (every candidate was a finalist)"}
    maps = []
    for s in search.subjects:
        m = data[f"map_{s}"]
        cols = data[f"targets_{s}"]
        general = search.ds.subject(s).targets.general_mask.astype(bool)[cols]
        maps.append(m[:, general])
    device = "cpu" if search.extraction.device in ("auto", "cpu") else search.extraction.device
    emb = text_embeddings(search.config.model, [c.text for c in search.candidates], search.layer,
                          device=device)  # fmt: skip
    return text_map_similarity(emb, maps)


# --------------------------------------------------------------------------- readers


def list_searches(dataset: str) -> pd.DataFrame:
    """Stored search results of a dataset, newest first (key, model, objective, layer,
    n_candidates, winner, gain, finished)."""
    rows = []
    folder = discover_dir(dataset)
    for path in folder.glob("*.json"):
        if path.name.endswith(".progress.json"):
            continue
        try:
            info = read_json(path)
        except ArtifactError:
            continue
        if "leaderboard" not in info:
            continue
        win = info["leaderboard"][0]
        rows.append({"key": info["key"], "model": info["model"],
                     "objective": info["objective"]["label"], "layer": info["layer"],
                     "n_candidates": info["n_candidates"], "winner": win["text"],
                     "gain": info["gain"]["difference"], "finished": info.get("finished", 0.0)})  # fmt: skip
    df = pd.DataFrame(rows)
    return df.sort_values("finished", ascending=False).reset_index(drop=True) if not df.empty else df


def read_search(dataset: str, key: str) -> dict:
    """A stored search result (raises ArtifactError when absent)."""
    return read_json(discover_dir(dataset) / f"{key}.json")


def read_search_maps(dataset: str, key: str) -> dict[str, np.ndarray]:
    """The winner's and the best paper instruction's per-target test maps
    (``winner_<subject>``, ``paper_<subject>``: arrays of shape (n_targets,))."""
    return load_npz(discover_dir(dataset) / f"{key}.maps.npz")


def leaderboard_frame(result: dict) -> pd.DataFrame:
    """The leaderboard as a table (rank, text, task, source, CV score, test score with its CI,
    difference to the best paper instruction with its CI, responses spent)."""
    rows = []
    for e in result["leaderboard"]:
        rows.append({
            "rank": e["rank"], "text": e["text"], "task": e["task"], "source": e["source"],
            "cv": e["cv"], "cv_stage": e["cv_stage"], "test": e["test"],
            "test_ci_low": e["test_ci"][0], "test_ci_high": e["test_ci"][1],
            "diff_vs_paper": e["diff_vs_paper"], "diff_ci_low": e["diff_ci"][0],
            "diff_ci_high": e["diff_ci"][1], "responses": e["responses"], "id": e["id"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def similarity_frame(result: dict) -> pd.DataFrame:
    """The text-vs-map pairs (text similarity, map similarity, both texts) of a result."""
    sim = result.get("text_similarity") or {}
    if "i" not in sim:
        return pd.DataFrame(columns=["text_similarity", "map_similarity", "a", "b"])
    order = {e["id"]: e["text"] for e in result["leaderboard"]}
    texts = [order[c] for c in _candidate_ids(result)]
    return pd.DataFrame({"text_similarity": sim["text"], "map_similarity": sim["map"],
                         "a": [texts[i] for i in sim["i"]], "b": [texts[j] for j in sim["j"]]})  # fmt: skip


def _candidate_ids(result: dict) -> list[str]:
    """Screened candidates' ids in search order (the order the similarity pairs index)."""
    screened = [e for e in result["leaderboard"] if e.get("screened", True)]
    return [e["id"] for e in sorted(screened, key=lambda e: e["order"])]


# --------------------------------------------------------------------------- Compare page


def add_to_compare(dataset: str, key: str, rank: int = 1) -> pd.DataFrame:
    """Put the full fits of a search's finalist (``rank`` on its leaderboard) into the results
    table, so the Compare instructions page shows it beside the grid's instructions (same
    layer and fit settings). A free-text instruction is listed under its text.

    Returns
    -------
    rows : DataFrame
        The ROI rows written.
    """
    from core.data.registry import open_dataset
    from core.models.instructions import free_text, resolve_instruction
    from core.pipeline.grid import model_role
    from core.results.fit import FitSpec, run_fit
    from core.results.tables import FIT_KEY, merge_table, results_dir

    result = read_search(dataset, key)
    entry = next((e for e in result["leaderboard"] if e["rank"] == rank), None)
    if entry is None or not entry.get("full_fit", entry["finalist"]):
        raise ValueError(f"rank {rank} of search {key} has no full fit (only the finalists and "
                         "the paper's 10 do)")  # fmt: skip
    ds = open_dataset(dataset)
    settings = FitSettings(**result["settings"])
    free = entry["id"].startswith("free-")
    ins = free_text(entry["text"]) if free else resolve_instruction(entry["id"])
    rows = []
    _remembered(ins)
    for s in result["subjects"]:
        rows += run_fit(ds, FitSpec(dataset, s, result["model"], ins.id, result["layer"]),
                        settings)  # fmt: skip
    table = pd.DataFrame(rows)
    if free:  # the text resolves to its embeddings in any process; the free id does not
        table["instruction"] = entry["text"]
    table["role"] = [model_role(m) for m in table["model"]]
    merge_table(results_dir(dataset) / "roi_scores", table, FIT_KEY, current=ds,
                group="settings_key", settings=settings)  # fmt: skip
    return table


def save_candidate_file(text: str) -> Path:
    """Store instructions typed in the app (one per line) as a content-addressed candidate file
    under ``<home>/discover-inputs/`` and return its path (for ``--candidates``)."""
    from core.storage import atomic_write_bytes

    body = "\n".join(line.strip() for line in text.splitlines() if line.strip()) + "\n"
    path = subdir("discover-inputs") / f"{content_key('candidate-file', {'text': body}, 16)}.txt"
    if not path.exists():
        atomic_write_bytes(path, body.encode("utf-8"))
    return path


def job_args(dataset: str, model: str, roi: str, contrast: str | None, candidates: str,
             budget: int | None, finalists: int) -> list[str]:  # fmt: skip
    """The ``python -m core`` arguments of a search the app starts in the background."""
    args = ["discover", "--dataset", dataset, "--model", model, "--roi", roi,
            "--candidates", candidates, "--finalists", str(int(finalists))]  # fmt: skip
    if contrast:
        args += ["--contrast", contrast]
    if budget:
        args += ["--budget", str(int(budget))]
    return args
