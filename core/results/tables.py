"""The locked results tables and their currency rules.

Under ``<home>/results/<dataset>/``: ``roi_scores.parquet`` (one row per subject x model x
instruction x layer x ROI) and ``partitions.parquet`` (one row per pair x subject x layer x ROI),
each with a CSV copy, and ``grid.json`` (the last grid run's configuration). Writers merge
under a file lock (:func:`merge_table`); readers see only the rows made from the open dataset's
current content and today's models (:func:`current_rows`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.results.fit import SCORING_VERSION, FitSettings, fits_dir
from core.storage import (
    LOCK_TIMEOUT,
    ArtifactError,
    atomic_write_bytes,
    file_lock,
    read_json,
)


def results_dir(dataset: str) -> Path:
    return subdir("results", dataset)


def _write_table(df: pd.DataFrame, stem: Path) -> None:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(stem.with_suffix(".parquet"), buf.getvalue())
    atomic_write_bytes(stem.with_suffix(".csv"), df.to_csv(index=False).encode())


#: Columns that identify one fit's rows in ``roi_scores`` (all its ROIs).
FIT_KEY = ["subject", "model", "instruction", "layer"]


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # truncated or foreign file
        raise ArtifactError(f"corrupt results table {path}: {exc}") from exc


#: Results-table columns that hold an embedding shard's key, with the column naming the
#: instruction whose embeddings they are (roi_scores: one; partitions: both of a pair).
FEATURES_COLUMNS = (("features_key", "instruction"), ("features_key_a", "a"), ("features_key_b", "b"))
#: The column naming the model of a features column, where it is not ``model`` (a partition's
#: B may be another feature space, e.g. the instruction's text-only control).
FEATURES_MODEL = {"features_key_b": "model_b"}


def current_rows(table: pd.DataFrame, ds, settings: FitSettings | None = None) -> pd.DataFrame:
    """The rows of a results table made from ``ds``'s current content and today's models.

    A row is current when it was scored by this code (``scoring_version``), its
    ``subject_key`` equals the open dataset's content key of that
    subject (:meth:`~core.data.dataset.Dataset.subject_key`) and each of its embedding keys
    (``features_key``; ``features_key_a`` / ``_b`` for partitions, B's model read from
    ``model_b`` where present) equals the key the model,
    instruction and ``settings`` give now (:func:`core.results.fit.features_key`): a
    retrained model, a reworded pool instruction or a rebuilt dataset leaves no row behind.
    Rows without these provenance columns (written before they existed) are dropped too.

    Parameters
    ----------
    table : DataFrame
    ds : Dataset or None
        None: the table is returned as it is.
    settings : FitSettings, optional
        The fit settings of the table's rows (default: the last grid run's,
        :func:`grid_settings`).
    """
    if table.empty or ds is None:
        return table
    pairs = [(k, c) for k, c in FEATURES_COLUMNS if c in table]
    if "subject_key" not in table or "model" not in table or not pairs:
        return table.iloc[0:0]
    keys = {}
    for s in table["subject"].unique():
        try:
            keys[s] = ds.subject_key(s)
        except Exception:  # the subject is no longer in the dataset
            keys[s] = None
    ok = table["subject_key"].to_numpy() == table["subject"].map(keys).to_numpy()
    # rows scored by other code (another SCORING_VERSION) describe other numbers
    if "scoring_version" not in table:
        return table.iloc[0:0]
    ok &= table["scoring_version"].astype(str).to_numpy() == SCORING_VERSION
    settings = settings or grid_settings(ds.name)
    expected: dict[tuple[str, str], str | None] = {}
    for key_col, ins_col in pairs:
        if key_col not in table:
            return table.iloc[0:0]
        models = table["model"]
        if FEATURES_MODEL.get(key_col) in table:  # rows without it read ``model``
            models = table[FEATURES_MODEL[key_col]].where(table[FEATURES_MODEL[key_col]].notna(),
                                                          table["model"])  # fmt: skip
        for model, ins in set(zip(models, table[ins_col], strict=True)):
            if (model, ins) not in expected:
                expected[(model, ins)] = _features_key_now(ds, model, ins, settings)
        now = [expected[(m, i)] for m, i in zip(models, table[ins_col], strict=True)]
        ok &= table[key_col].to_numpy() == np.asarray(now, dtype=object)
    return table[ok].reset_index(drop=True)


def _features_key_now(ds, model: str, instruction: str, settings: FitSettings) -> str | None:
    """The embedding key a fit of (model, instruction) would read now (None when the model or
    instruction can no longer be resolved)."""
    from core.results.fit import features_key

    try:
        return features_key(ds, model, instruction, settings)
    except Exception:
        return None


def read_table(stem: Path, ds=None, settings: FitSettings | None = None) -> pd.DataFrame:
    """A results table (``<stem>.parquet``); with ``ds``, only its current rows."""
    return current_rows(_read_parquet(stem.with_suffix(".parquet")), ds, settings)


def merge_table(
    stem: Path,
    new: pd.DataFrame,
    key: list[str],
    keep_others: bool = True,
    current=None,
    group: str | None = None,
    timeout: float | None = LOCK_TIMEOUT,
    settings: FitSettings | None = None,
) -> pd.DataFrame:
    """Write ``new`` into the results table at ``stem``, replacing the rows that share a key.

    The read-merge-write runs under an exclusive lock (``<stem>.lock``), so concurrent
    writers (grid runs on different subjects, dashboard jobs) never lose each other's rows.
    Rows of other keys (e.g. encoders or pairs the dashboard computed) are kept, in their order,
    before the new rows; with ``keep_others=False`` the table is replaced by ``new``.

    Parameters
    ----------
    stem : Path
        Table path without suffix (``.parquet`` and ``.csv`` are written).
    new : DataFrame
        Rows to write; must have the ``key`` columns.
    key : list of str
    keep_others : bool
        False when the old rows are not comparable (computed with other fit settings).
    current : Dataset, optional
        When given, kept rows whose provenance is not this dataset's current content (see
        :func:`current_rows`) are dropped: a rebuilt dataset leaves no stale row behind.
    group : str, optional
        A column (``"settings_key"``) whose value the table holds one of: old rows of another
        value than the new rows' are dropped. Decided inside the lock, so two runs with new
        settings on different subjects both keep their rows.
    timeout : float or None
        Longest wait for another writer's lock (seconds).
    settings : FitSettings, optional
        The settings of the new rows, for the currency rule (default: the last grid run's).

    Returns
    -------
    table : DataFrame
        What was written.
    """
    with file_lock(stem.with_suffix(".lock"), timeout, what=f"results table {stem.name}"):
        old = _read_parquet(stem.with_suffix(".parquet")) if keep_others else pd.DataFrame()
        if current is not None:
            old = current_rows(old, current, settings)
        if group is not None and not old.empty and not new.empty:
            if group in old:
                old = old[old[group].isin(set(new[group]))]
            else:
                old = old.iloc[0:0]
        if not old.empty and not new.empty and set(key) <= set(old.columns):
            replaced = pd.MultiIndex.from_frame(old[key].astype(str)).isin(
                pd.MultiIndex.from_frame(new[key].astype(str))
            )
            new = pd.concat([old[~replaced], new], ignore_index=True)
        elif new.empty:
            new = old
        _write_table(new, stem)
    return new


def load_roi_table(dataset: str, ds=None) -> pd.DataFrame:
    """The results table of a dataset (empty DataFrame when the grid has not run); with the
    open ``ds``, only rows made from its current content (see :func:`current_rows`)."""
    return read_table(results_dir(dataset) / "roi_scores", ds)


def grid_settings(dataset: str) -> FitSettings:
    """The fit settings of the last grid run on ``dataset`` (defaults when it never ran)."""
    try:
        cfg = read_json(results_dir(dataset) / "grid.json")["config"]["settings"]
    except (ArtifactError, KeyError, TypeError):
        return FitSettings()
    known = {f.name for f in fields(FitSettings)}
    return FitSettings(**{k: v for k, v in cfg.items() if k in known})


def results_stamp(dataset: str) -> str:
    """A string that changes whenever the results of ``dataset`` change (for cache keys)."""
    folder = results_dir(dataset)
    parts = []
    for name in ("roi_scores.parquet", "partitions.parquet", "grid.json"):
        path = folder / name
        parts.append(f"{name}:{path.stat().st_mtime_ns if path.exists() else 0}")
    fits = fits_dir(dataset)
    parts.append(f"fits:{fits.stat().st_mtime_ns if fits.exists() else 0}")
    return "|".join(parts)
