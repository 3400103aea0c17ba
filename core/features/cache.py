"""A pickle-free, process-safe inference cache on diskcache.

diskcache's default ``Disk`` pickles values, so anyone able to write the cache folder could run code
in every reader (CVE-2025-69872). :class:`NoPickleDisk` accepts only ``str`` keys and ``bytes``
values and refuses to unpickle anything; values are bytes this module encodes itself (a JSON header
plus ``.npy`` arrays with ``allow_pickle=False``, guarded by a SHA-256). The folder is mode 0700. A
corrupt or unreadable entry is reported as a miss and evicted. diskcache's SQLite store (WAL) makes
concurrent readers and writers in several processes safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import diskcache
import numpy as np

from core.config import subdir
from core.storage import array_from_bytes, array_to_bytes

MAGIC = b"BPC1"


class UnsafeCacheValue(TypeError):
    """Something other than bytes was offered to, or pickle found in, the cache."""


class NoPickleDisk(diskcache.Disk):
    """A diskcache ``Disk`` that stores only str keys and bytes values and never unpickles."""

    def put(self, key):
        if not isinstance(key, str):
            raise UnsafeCacheValue(f"cache keys must be str, got {type(key).__name__}")
        return super().put(key)

    def get(self, key, raw):
        if not raw:
            raise UnsafeCacheValue("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if read or not isinstance(value, bytes):
            raise UnsafeCacheValue(f"cache values must be bytes, got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode == diskcache.core.MODE_PICKLE:
            raise UnsafeCacheValue("refusing to unpickle a cache value")
        out = super().fetch(mode, filename, value, read)
        if not isinstance(out, bytes):
            raise UnsafeCacheValue("cache value is not bytes")
        return out


def encode_entry(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """Encode a JSON-able header and named arrays as one checksummed blob (no pickle)."""
    parts = {name: array_to_bytes(arr) for name, arr in arrays.items()}
    header = {"meta": meta, "arrays": {name: len(b) for name, b in parts.items()}}
    head = json.dumps(header, sort_keys=True).encode("utf-8")
    body = head + b"".join(parts[name] for name in header["arrays"])
    digest = hashlib.sha256(body).digest()
    return MAGIC + digest + struct.pack("<I", len(head)) + body


def decode_entry(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Inverse of :func:`encode_entry`; raises ``ValueError`` on any corruption."""
    if not isinstance(blob, bytes) or blob[:4] != MAGIC or len(blob) < 40:
        raise ValueError("not a BrainPrompt cache entry")
    digest, (n_head,), body = blob[4:36], struct.unpack("<I", blob[36:40]), blob[40:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("cache entry checksum mismatch")
    header = json.loads(body[:n_head].decode("utf-8"))
    arrays, pos = {}, n_head
    for name, size in header["arrays"].items():
        arrays[name] = array_from_bytes(body[pos : pos + size])
        pos += size
    return header["meta"], arrays


class InferenceCache:
    """Key -> (meta, arrays) store; see the module docstring for the safety rules.

    Parameters
    ----------
    folder : Path or None
        Default ``<home>/cache/inference``.
    size_limit : int
        Bytes before least-recently-stored entries are culled.
    """

    def __init__(self, folder: Path | None = None, size_limit: int = 4 << 30) -> None:
        self.folder = Path(folder) if folder is not None else subdir("cache", "inference")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        self._cache = diskcache.Cache(
            str(self.folder),
            disk=NoPickleDisk,
            size_limit=size_limit,
            eviction_policy="least-recently-stored",
            timeout=60,
        )

    def get(self, key: str) -> tuple[dict, dict[str, np.ndarray]] | None:
        """The entry, or None on a miss; a corrupt or unreadable entry is evicted and a miss."""
        try:
            blob = self._cache.get(key, default=None, retry=True)
            if blob is None:
                return None
            return decode_entry(blob)
        except Exception:
            self.evict(key)
            return None

    def set(self, key: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Store an entry (atomic: readers see the old or the new value, never a mix)."""
        self._cache.set(key, encode_entry(meta, arrays), retry=True)

    def evict(self, key: str) -> None:
        try:
            self._cache.delete(key, retry=True)
        except Exception:
            pass

    def clear(self) -> int:
        """Remove every entry (safe with concurrent readers); returns how many were removed."""
        return int(self._cache.clear(retry=True))

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()
