"""The compact per-subject cache of a real dataset (NSD or Algonauts), written on first load.

A subject's repetition-averaged responses, ids, masks and ceilings are saved with
:func:`core.data.store.save_subject` under
``<home>/datasets/<dataset name>/<subject>/<key>/`` where ``key`` hashes the source files' paths,
sizes and modification times plus the load options (sessions, space, masks, ...). A
``manifest.json`` written last records what made the entry; an entry without it, or one that fails
to load, is rebuilt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from core.config import CODE_VERSION, subdir
from core.data.dataset import Dataset, DatasetError, StimulusSet, SubjectData
from core.data.store import load_subject, save_subject
from core.hashing import content_key
from core.storage import ArtifactError, file_lock, read_json, write_json

#: Bumped when a reader changes what it computes from the same files.
READER_VERSION = "1"


def source_signature(paths: Iterable[Path]) -> list[list]:
    """``[path, size, mtime_ns]`` per file (``[path, None, None]`` when absent), sorted by path."""
    out = []
    for p in sorted({str(Path(p)) for p in paths}):
        path = Path(p)
        if path.exists():
            st = path.stat()
            out.append([p, int(st.st_size), int(st.st_mtime_ns)])
        else:
            out.append([p, None, None])
    return out


def cache_folder(dataset: str, subject: str, sources: Iterable[Path], options: dict) -> Path:
    """The cache folder of one subject for these source files and options (not created)."""
    key = content_key(
        "dataset-subject",
        {
            "reader_version": READER_VERSION,
            "subject": subject,
            "sources": source_signature(sources),
            "options": options,
        },
    )
    return subdir("datasets", dataset) / subject / key


def cached_dataset(
    *,
    name: str,
    kind: str,
    stimuli: StimulusSet,
    subjects: list[str],
    loader: Callable[[str], SubjectData],
    stimulus_identity: dict,
    subject_sources: Callable[[str], tuple[list[Path], dict]],
    cache: bool,
    metadata: dict,
) -> Dataset:
    """A real (not simulated) dataset whose subjects are keyed by their compact-cache entry.

    Parameters
    ----------
    subject_sources : callable
        ``subject -> (source files, load options)``: what :func:`cache_folder` hashes, so a
        subject's key (its source files' signature and the load options) is known without reading
        a response. Without ``cache`` the dataset computes keys from the loaded arrays.
    metadata : dict
        Descriptive metadata; ``compact_cache`` (True with ``cache``) is added, which
        :func:`pending_subjects` reads.
    """

    def subject_keyer(subject: str) -> str:
        return cache_folder(name, subject, *subject_sources(subject)).name

    return Dataset(
        name=name,
        kind=kind,
        simulated=False,
        stimuli=stimuli,
        subject_names=subjects,
        loader=loader,
        stimulus_identity=stimulus_identity,
        subject_keyer=subject_keyer if cache else None,
        metadata={**metadata, "compact_cache": bool(cache)},
    )


def pending_subjects(ds: Dataset) -> list[str]:
    """The subjects of ``ds`` whose compact cache entry is not written yet, so that their first
    load reads the source files (NSD: every chosen session, minutes per subject) instead of the
    cache (seconds); empty for a dataset without a compact cache (the demo).

    Nothing is read but the cache entries' manifests (keys come from the source files'
    signature, :func:`cached_dataset`).
    """
    if not ds.metadata.get("compact_cache") or ds.subject_keyer is None:
        return []
    root = subdir("datasets", ds.name)
    return [s for s in ds.subject_names
            if not (root / s / ds.subject_key(s) / "manifest.json").exists()]  # fmt: skip


def cached_subject(
    dataset: str,
    subject: str,
    sources: Iterable[Path],
    options: dict,
    build: Callable[[], SubjectData],
    encoding: str = "float32",
) -> SubjectData:
    """Load one subject from its cache entry, or ``build()`` it and write the entry.

    Parameters
    ----------
    dataset, subject : str
        Registry name and subject id.
    sources : iterable of Path
        Every file the subject is built from.
    options : dict
        Every load option that changes the result (JSON-serialisable).
    build : callable
        ``build() -> SubjectData``, the slow path.
    encoding : str
        Response encoding of the cache file (see :mod:`core.data.store`).
    """
    sources = list(sources)
    folder = cache_folder(dataset, subject, sources, options)
    cached = _read_entry(folder)
    if cached is not None:
        return cached
    # one builder per entry: the app's background load and a CLI grid asking for the same
    # subject at once build it once (the second waits, then reads what the first wrote)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.parent / f"{folder.name}.lock", timeout=None,
                   what=f"the first load of {dataset} {subject}"):  # fmt: skip
        cached = _read_entry(folder)
        if cached is not None:
            return cached
        return _build_entry(dataset, subject, sources, options, build, encoding, folder)


def _read_entry(folder: Path) -> SubjectData | None:
    """The cached subject, or None when the entry is absent or damaged (then it is rebuilt)."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    try:
        read_json(manifest)
        return load_subject(folder)
    except (ArtifactError, DatasetError, KeyError, ValueError):
        return None


def _build_entry(
    dataset: str,
    subject: str,
    sources: list[Path],
    options: dict,
    build: Callable[[], SubjectData],
    encoding: str,
    folder: Path,
) -> SubjectData:
    manifest = folder / "manifest.json"
    t0 = time.perf_counter()
    data = build()
    save_subject(folder, data, encoding=encoding)
    write_json(
        manifest,
        {
            "what": "compact per-subject cache of a real dataset",
            "dataset": dataset,
            "subject": subject,
            "options": options,
            "sources": source_signature(sources),
            "reader_version": READER_VERSION,
            "code_version": CODE_VERSION,
            "build_seconds": round(time.perf_counter() - t0, 3),
            "encoding": encoding,
        },
    )
    return data


def _options_path(dataset: str) -> Path:
    return subdir("datasets", dataset) / "options.json"


def save_dataset_options(dataset: str, options: dict) -> None:
    """Remember the open options chosen by ``datasets add`` (e.g. an Algonauts folder's NSD root)."""
    write_json(_options_path(dataset), options)


def dataset_options(dataset: str) -> dict:
    """Open options saved by :func:`save_dataset_options` (empty when none or unreadable)."""
    path = _options_path(dataset)
    if not path.exists():
        return {}
    try:
        return dict(read_json(path))
    except (ArtifactError, TypeError, ValueError):
        return {}
