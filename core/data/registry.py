"""Which datasets are configured, and opening one by name.

The embedded demo is always available as ``"demo"``. Real datasets are added by
``python -m core datasets add nsd|algonauts PATH`` and recorded in ``<home>/datasets.json``
(name -> kind and path); their open options (space, format, subjects, sessions, ...) are saved
under ``<home>/datasets/<name>/options.json`` next to their compact cache. ``datasets remove NAME``
(:func:`unregister`) drops both, never the dataset's own folder. Each kind has one opener
``open_<kind>(name, path, **options) -> Dataset``.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

from core.config import home
from core.data.dataset import Dataset, DatasetError
from core.storage import ArtifactError, read_json, write_json

#: kind -> "module:function" of its opener; imported lazily.
OPENERS: dict[str, str] = {
    "demo": "core.data.demo.store:open_demo",
    "nsd": "core.data.nsd:open_nsd",
    "algonauts": "core.data.algonauts:open_algonauts",
}


def _registry_path() -> Path:
    return home() / "datasets.json"


def configured() -> dict[str, dict]:
    """Name -> ``{"kind": ..., "path": ...}`` of every configured dataset, demo included."""
    out: dict[str, dict] = {"demo": {"kind": "demo", "path": None}}
    path = _registry_path()
    if path.exists():
        try:
            out.update(read_json(path))
        except ArtifactError:
            pass  # a corrupt registry must not hide the demo; `datasets add` rewrites it
    return out


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """Return ``name`` if it can name a dataset (letters, digits, ``.``, ``_``, ``-``)."""
    if not _NAME_RE.match(str(name)):
        raise DatasetError(
            f"bad dataset name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    return name


def register(name: str, kind: str, path: str | Path) -> None:
    """Record a dataset (after its reader validated the folder)."""
    if kind not in OPENERS or kind == "demo":
        raise DatasetError(f"unknown dataset kind {kind!r}; expected 'nsd' or 'algonauts'")
    if name == "demo":
        raise DatasetError("the name 'demo' is reserved for the embedded demo")
    check_name(name)
    entries = {k: v for k, v in configured().items() if k != "demo"}
    entries[name] = {"kind": kind, "path": str(Path(path).resolve())}
    write_json(_registry_path(), entries)


def cache_dir(name: str) -> Path:
    """``<home>/datasets/<name>``: the dataset's saved options and compact cache (not created)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DatasetError(f"bad dataset name {name!r}")
    return home() / "datasets" / name


def unregister(name: str, purge: bool = False) -> dict:
    """Forget a configured dataset: its registry entry and saved open options.

    Parameters
    ----------
    name : str
    purge : bool
        Also delete its compact cache, ``<home>/datasets/<name>/``. The dataset's own folder
        (the registered path) is never touched.

    Returns
    -------
    dict
        ``{"entry": removed entry, "removed": [paths deleted]}``.

    Raises
    ------
    DatasetError
        For the demo, an unknown name, or a purge whose cache folder would contain the data.
    """
    if name == "demo":
        raise DatasetError("the embedded demo cannot be removed")
    entries = {k: v for k, v in configured().items() if k != "demo"}
    if name not in entries:
        raise DatasetError(
            f"unknown dataset {name!r}; configured: {', '.join(['demo', *entries]) or '-'}"
        )
    folder = cache_dir(name)
    data = Path(entries[name]["path"]).resolve() if entries[name].get("path") else None
    if purge and data is not None and folder.exists():
        target = folder.resolve()
        if data == target or target in data.parents:
            raise DatasetError(
                f"not purging {folder}: the dataset's own folder {data} lies inside it"
            )
    entry = entries.pop(name)
    write_json(_registry_path(), entries)
    removed: list[str] = []
    options = folder / "options.json"
    if purge and folder.is_dir():
        shutil.rmtree(folder)
        removed.append(str(folder))
    elif options.exists():
        options.unlink()
        removed.append(str(options))
    return {"entry": entry, "removed": removed}


def open_dataset(name: str = "demo", **options) -> Dataset:
    """Open a configured dataset by name.

    Raises
    ------
    DatasetError
        For an unknown name (the message lists the configured ones).
    """
    entries = configured()
    if name not in entries:
        raise DatasetError(f"unknown dataset {name!r}; configured: {', '.join(entries)}")
    entry = entries[name]
    module_name, func_name = OPENERS[entry["kind"]].split(":")
    opener = getattr(importlib.import_module(module_name), func_name)
    return opener(name=name, path=entry["path"], **options)
