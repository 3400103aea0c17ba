"""Content addressing: one key scheme for every artifact and cache entry.

A key is the SHA-256 of the canonical JSON of everything that determines an artifact (model id and
revision, instruction text, image id, decoding parameters, ``CODE_VERSION``, ...).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from core.config import CODE_VERSION


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray_sha256__": array_digest(obj)}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"cannot hash object of type {type(obj).__name__}")


def canonical_json(fields: dict[str, Any]) -> str:
    """Serialise ``fields`` deterministically (sorted keys, no whitespace)."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=_default)


def content_key(kind: str, fields: dict[str, Any], length: int = 24) -> str:
    """Return the content key of an artifact.

    Parameters
    ----------
    kind : str
        What the artifact is (``"response"``, ``"encoder"``, ...); part of the hash.
    fields : dict
        Everything that determines the artifact. ``CODE_VERSION`` is added automatically.
    length : int
        Number of hex characters kept.

    Returns
    -------
    key : str
        Hex digest prefix of length ``length``.
    """
    payload = canonical_json({"kind": kind, "code_version": CODE_VERSION, **fields})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def bytes_digest(data: bytes) -> str:
    """SHA-256 hex digest of raw bytes (e.g. an uploaded image file)."""
    return hashlib.sha256(data).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """SHA-256 hex digest of an array's dtype, shape and bytes."""
    h = hashlib.sha256()
    arr = np.ascontiguousarray(array)
    h.update(str(arr.dtype).encode())
    h.update(str(arr.shape).encode())
    # hash the contiguous buffer in place (tobytes() would copy a 629 MB response array)
    h.update(arr.reshape(-1).view(np.uint8))
    return h.hexdigest()
