"""Pickle-free, atomic file I/O and JSON manifests shared by every artifact writer."""

from __future__ import annotations

import fcntl
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class ArtifactError(RuntimeError):
    """An artifact on disk is missing, corrupt or does not match what was asked for."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file atomically: ``write(fh)`` fills a temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(data))


def save_npy(path: Path, array: np.ndarray) -> None:
    """Atomically save one array as ``.npy`` (streamed: no in-memory copy; no pickle)."""
    atomic_write(path, lambda fh: np.save(fh, np.asarray(array), allow_pickle=False))


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """Load one ``.npy`` with ``allow_pickle=False``.

    Raises
    ------
    ArtifactError
        When the file is missing or corrupt (the message names it).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing file: {path}")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except Exception as exc:
        raise ArtifactError(f"corrupt array file {path}: {exc}") from exc


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write_bytes(Path(path), json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(path: Path) -> Any:
    """Read JSON, raising :class:`ArtifactError` naming the file when missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing file: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"corrupt JSON in {path}: {exc}") from exc


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Atomically save arrays to an uncompressed ``.npz`` (no object arrays allowed)."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(
                f"array {name!r} has dtype object; refusing to save (would need pickle)"
            )
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` with ``allow_pickle=False``.

    Raises
    ------
    ArtifactError
        When the file is missing or cannot be read as an npz.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError
        raise ArtifactError(f"corrupt array file {path}: {exc}") from exc


def array_to_bytes(array: np.ndarray) -> bytes:
    """Encode one array as ``.npy`` bytes (no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def array_from_bytes(data: bytes) -> np.ndarray:
    """Decode ``.npy`` bytes written by :func:`array_to_bytes` (no pickle)."""
    return np.load(io.BytesIO(data), allow_pickle=False)


#: How long a writer waits for a lock held by another process before giving up (seconds).
LOCK_TIMEOUT = 600.0


class LockTimeout(ArtifactError):
    """Another process held a lock for longer than the caller was willing to wait."""


@contextmanager
def file_lock(path: Path, timeout: float | None = LOCK_TIMEOUT, what: str | None = None):
    """Hold an exclusive advisory lock on ``path`` (created if absent) for the ``with`` block.

    Waits (polling, bounded by ``timeout`` seconds; ``None`` waits forever, ``0`` fails at once)
    while another process holds it. Locks are per open file description, so two threads of one
    process exclude each other too. Every read-merge-write of a file shared between processes
    (results tables, shard manifests, job status, fingerprint memo) runs under one of these.

    Parameters
    ----------
    path : Path
        The lock file (conventionally ``<shared file>.lock``).
    timeout : float or None
    what : str, optional
        What the lock protects, for the timeout message.

    Raises
    ------
    LockTimeout
        When the lock is still held after ``timeout`` seconds (the message names the file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 - closed below
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{what or path}: another process has held the lock {path} for more than "
                        f"{timeout:.0f} s; if no BrainPrompt process is running, retry (the lock "
                        "is released when its holder exits)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        fh.close()  # closing the descriptor releases the lock
