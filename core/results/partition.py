"""One variance partitioning of an instruction pair (unique A, unique B, shared, per target).

For each pair (A, B), trained MLLM and subject, at the layer its scores are reported at (the
model's layer with the best cross-validated training score, :func:`core.results.selection.best_layers`),
the fits of A, B and [A, B] share one train/test split; B may come from another feature space
(``model_b``, at ``layer_b``): an instruction against its own text-only control
(``text:<model>`` with the same instruction, at the control's CV-chosen layer) asks what the
image adds to what the answer's words carry (the instruction's unique part); the joint model is ridge on the
concatenation (or himalaya's banded ridge with ``joint="banded"``). Per-target parts are stored as
``<home>/results/<dataset>/partitions/<key>.npz`` (+ JSON); ROI summaries go to
``partitions.parquet`` / ``.csv``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.data.dataset import Dataset
from core.encoding.partition import variance_partition
from core.hashing import content_key
from core.results.fit import SCORING_VERSION, FitSettings, aligned_features
from core.storage import ArtifactError, load_npz, save_npz, write_json

PARTS = ("unique_a", "shared", "unique_b", "r2_a", "r2_b", "r2_ab")


@dataclass(frozen=True)
class PartitionSpec:
    dataset: str
    subject: str
    model: str
    a: str
    b: str
    layer: int
    joint: str = "concat"
    #: B's feature space when it is not ``model``'s (e.g. ``text:<model>``); None = ``model``.
    model_b: str | None = None
    #: B's layer when it differs from ``layer``; None = ``layer``.
    layer_b: int | None = None

    @property
    def b_model(self) -> str:
        """The feature space B is read from."""
        return self.model_b or self.model

    @property
    def b_layer(self) -> int:
        """The layer B is read at."""
        return int(self.layer if self.layer_b is None else self.layer_b)

    def identity(self, ds: Dataset, settings: FitSettings) -> dict:
        """Everything that determines the partition, by content: the subject's data, both
        instructions' response embeddings (model weights, instruction text, token budget; B's
        from ``model_b`` when set), the layer(s), the joint model and the fit settings. B's layer
        is only part of it when it differs from A's, so pairs of one model keep their keys."""
        from core.results.fit import features_key

        extra = {} if self.b_layer == int(self.layer) else {"layer_b": self.b_layer}
        return {
            "subject": ds.subject_key(self.subject),
            "a": features_key(ds, self.model, self.a, settings),
            "b": features_key(ds, self.b_model, self.b, settings),
            "layer": int(self.layer),
            **extra,
            "joint": self.joint,
            "alphas": settings.alphas,
            "cv": int(settings.cv),
            "solver": settings.solver,
            "backend": settings.backend,
            "scoring_version": SCORING_VERSION,
        }

    def key(self, ds: Dataset, settings: FitSettings) -> str:
        return content_key("partition", self.identity(ds, settings))


def partitions_dir(dataset: str) -> Path:
    return subdir("results", dataset, "partitions")


def _stored_partition(ds: Dataset, spec: PartitionSpec, settings: FitSettings):
    path = partitions_dir(spec.dataset) / f"{spec.key(ds, settings)}.npz"
    try:
        arrays = load_npz(path)
    except ArtifactError:
        return None
    n = ds.subject(spec.subject).n_targets
    return arrays if all(a.shape == (n,) for a in arrays.values()) else None


def partition_stored(ds: Dataset, spec: PartitionSpec, settings: FitSettings) -> bool:
    """Whether the partition of ``spec`` is stored for the dataset's current content."""
    return _stored_partition(ds, spec, settings) is not None


def run_partition(ds: Dataset, spec: PartitionSpec, settings: FitSettings) -> dict[str, np.ndarray]:
    """Compute (or load) the per-target partition of one pair."""
    alphas, backend = settings.alphas, settings.backend
    key = spec.key(ds, settings)
    path = partitions_dir(spec.dataset) / f"{key}.npz"
    subject = ds.subject(spec.subject)
    stored = _stored_partition(ds, spec, settings)
    if stored is not None:
        return stored
    xa = aligned_features(ds, subject, spec.model, spec.a, spec.layer, settings)
    xb = aligned_features(ds, subject, spec.b_model, spec.b, spec.b_layer, settings)
    train, test = subject.split()
    y = subject.responses
    part = variance_partition(
        xa[train],
        xb[train],
        y[train],
        xa[test],
        xb[test],
        y[test],
        joint=spec.joint,
        alphas=alphas,
        cv=settings.cv,
        solver=settings.solver,
        backend=backend,
    )
    arrays = {name: np.asarray(getattr(part, name), np.float32) for name in PARTS}
    save_npz(path, **arrays)
    write_json(
        path.with_suffix(".json"),
        {
            "key": key,
            "spec": asdict(spec),
            "alphas": alphas,
            "identity": spec.identity(ds, settings),
        },
    )
    return arrays


def partition_rows(
    spec: PartitionSpec,
    arrays: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    provenance: dict | None = None,
) -> list[dict]:
    """ROI means of the per-target parts; ``provenance`` columns (``partition_key``,
    ``subject_key``) let readers drop rows of content that is no longer the dataset's.
    ``model_b`` and ``layer_b`` are always filled (B's feature space and layer)."""
    rows = []
    ident = {**asdict(spec), "model_b": spec.b_model, "layer_b": spec.b_layer}
    for roi, mask in masks.items():
        row = {**ident, **(provenance or {}), "roi": roi, "n_targets": int(mask.sum())}
        for name in PARTS:
            row[name] = float(np.mean(arrays[name][mask])) if mask.any() else np.nan
        rows.append(row)
    return rows


#: Columns that identify one partition's rows in ``partitions`` (with ``roi``): rerunning one
#: subject, layer or pair replaces only its own rows (``model_b``: an instruction against its
#: text-only control is another pair than against its length control).
PARTITION_KEY = ["subject", "model", "a", "b", "layer", "joint", "model_b"]


def partition_provenance(ds: Dataset, spec: PartitionSpec, settings: FitSettings) -> dict:
    """The provenance columns of a partition's rows."""
    ident = spec.identity(ds, settings)
    return {
        "partition_key": spec.key(ds, settings),
        "subject_key": ds.subject_key(spec.subject),
        "features_key_a": ident["a"],
        "features_key_b": ident["b"],
        "scoring_version": SCORING_VERSION,
        # only what a partition depends on (not the p-value settings of the fits)
        "settings_key": content_key(
            "partition-settings",
            {
                "alphas": settings.alphas,
                "cv": int(settings.cv),
                "solver": settings.solver,
                "backend": settings.backend,
                "max_new_tokens": settings.max_new_tokens,
                "extraction": settings.extraction().to_dict(),
            },
            length=12,
        ),
    }


def load_partition_table(dataset: str, ds: Dataset | None = None) -> pd.DataFrame:
    """The partitions table; with ``ds``, only rows made from its current content."""
    from core.results.tables import read_table, results_dir

    return read_table(results_dir(dataset) / "partitions", ds)
