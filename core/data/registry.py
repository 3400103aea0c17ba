"""Which datasets are configured, and opening one by name.

The embedded demo is always available as ``"demo"``. Real datasets are added by
``python -m core datasets add nsd|algonauts PATH`` and recorded in ``<home>/datasets.json``
(name -> kind and path). Each kind has one opener ``open_<kind>(name, path, **options) -> Dataset``.
"""

from __future__ import annotations

import importlib
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


def register(name: str, kind: str, path: str | Path) -> None:
    """Record a dataset (after its reader validated the folder)."""
    if kind not in OPENERS or kind == "demo":
        raise DatasetError(f"unknown dataset kind {kind!r}; expected 'nsd' or 'algonauts'")
    if name == "demo":
        raise DatasetError("the name 'demo' is reserved for the embedded demo")
    entries = {k: v for k, v in configured().items() if k != "demo"}
    entries[name] = {"kind": kind, "path": str(Path(path).resolve())}
    write_json(_registry_path(), entries)


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
