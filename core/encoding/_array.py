"""A tiny array namespace so the solvers run unchanged on numpy and torch (CPU or CUDA).

Only the handful of operations the encoding solvers need are wrapped; everything else uses the
operators numpy arrays and torch tensors share (``@``, ``*``, slicing, ``.T``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.backend import resolve_backend

Array = Any  # np.ndarray or torch.Tensor


@dataclass(frozen=True)
class ArrayOps:
    """Array operations bound to one backend and dtype.

    Parameters
    ----------
    name : {"numpy", "torch", "torch_cuda"}
        Resolved backend name (see :func:`core.backend.resolve_backend`).
    dtype : {"float32", "float64"}
        Floating dtype every array is cast to.
    """

    name: str
    dtype: str = "float32"

    @property
    def is_torch(self) -> bool:
        return self.name != "numpy"

    @property
    def _torch(self):
        import torch

        return torch

    @property
    def device(self) -> str:
        return "cuda" if self.name == "torch_cuda" else "cpu"

    def float64_cost(self, tf32: bool = False) -> float:
        """Rough cost of a float64 matmul multiply-add relative to the float32 one in use.

        CPUs: 2 (half the SIMD lanes). GPUs with full-rate FP64 (compute capability 6.0, 7.0,
        8.0, 9.0, 10.0: P100, V100, A100, H100/H200, B200): 2, and 16 when TF32 matmuls are
        on (TF32 tensor cores are ~8x FP32). Other GPUs (consumer and inference cards, FP64 at
        1/32-1/64 rate): 32. A cost model for picking a code path, not a measurement.
        """
        if self.name != "torch_cuda":
            return 2.0
        major, minor = self._torch.cuda.get_device_capability()
        full_rate = (major, minor) in {(6, 0), (7, 0), (8, 0), (9, 0), (10, 0)}
        if not full_rate:
            return 32.0
        return 16.0 if tf32 else 2.0

    def _tdtype(self, dtype: str | None = None):
        return getattr(self._torch, dtype or self.dtype)

    def asarray(self, x: Any, dtype: str | None = None) -> Array:
        """Return ``x`` as a backend array of ``dtype`` (default: the ops dtype), on the device."""
        if not self.is_torch:
            return np.asarray(x, dtype=dtype or self.dtype)
        torch = self._torch
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self._tdtype(dtype))
        arr = np.asarray(x)
        if arr.dtype != np.dtype(dtype or self.dtype):
            arr = arr.astype(dtype or self.dtype)
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        """Return a numpy copy (or view) of a backend array."""
        if not self.is_torch:
            return np.asarray(x)
        return x.detach().cpu().numpy()

    def zeros(self, shape: tuple[int, ...], dtype: str | None = None) -> Array:
        if not self.is_torch:
            return np.zeros(shape, dtype=dtype or self.dtype)
        return self._torch.zeros(shape, dtype=self._tdtype(dtype), device=self.device)

    def empty(self, shape: tuple[int, ...], dtype: str | None = None) -> Array:
        if not self.is_torch:
            return np.empty(shape, dtype=dtype or self.dtype)
        return self._torch.empty(shape, dtype=self._tdtype(dtype), device=self.device)

    def matmul(self, a: Array, b: Array, out: Array) -> Array:
        """``a @ b`` written into ``out`` (preallocated, C-contiguous); returns ``out``."""
        if not self.is_torch:
            return np.matmul(a, b, out=out)
        return self._torch.matmul(a, b, out=out)

    def take_rows(self, a: Array, idx: Array, out: Array) -> Array:
        """``a[idx]`` (rows) written into ``out``; returns ``out``."""
        if not self.is_torch:
            return np.take(a, idx, axis=0, out=out)
        return self._torch.index_select(a, 0, idx, out=out)

    def copy_into(self, out: Array, a: Array) -> Array:
        """Copy ``a`` into ``out`` (casting to its dtype); returns ``out``."""
        if not self.is_torch:
            np.copyto(out, a, casting="unsafe")
        else:
            out.copy_(a)
        return out

    def eigh(self, a: Array, dtype: str | None = None) -> tuple[Array, Array]:
        """Eigendecomposition of a symmetric matrix, optionally in a higher precision.

        On CPU (numpy and torch) this calls LAPACK ``syevr`` through scipy, several times faster
        than the ``syevd`` behind ``numpy.linalg.eigh`` / ``torch.linalg.eigh`` at p ~ 1000;
        on CUDA it calls ``torch.linalg.eigh``.

        Returns
        -------
        eigenvalues : array of shape (n,), ascending, in the ops dtype
        eigenvectors : array of shape (n, n), columns, in the ops dtype
        """
        if self.name == "torch_cuda":
            lam, vec = self._torch.linalg.eigh(a.to(self._tdtype(dtype or self.dtype)))
            return lam.to(self._tdtype()), vec.to(self._tdtype())
        import scipy.linalg

        a_np = self.to_numpy(a).astype(dtype or self.dtype, copy=False)
        lam, vec = scipy.linalg.eigh(a_np, driver="evr", check_finite=False)
        return self.asarray(lam), self.asarray(vec)

    def qr(self, a: Array) -> tuple[Array, Array]:
        """Reduced QR decomposition."""
        if not self.is_torch:
            return np.linalg.qr(a)
        return self._torch.linalg.qr(a, mode="reduced")

    def sq_col_norms(self, a: Array) -> Array:
        """Column sums of squares, shape (n_columns,)."""
        if not self.is_torch:
            return np.einsum("ij,ij->j", a, a)
        return (a * a).sum(0)

    def argmax0(self, a: Array) -> Array:
        if not self.is_torch:
            return a.argmax(axis=0)
        return a.argmax(dim=0)

    def index(self, idx: np.ndarray) -> Array:
        """Integer index array usable to index backend arrays."""
        if not self.is_torch:
            return idx
        return self._torch.as_tensor(idx, device=self.device)

    @contextlib.contextmanager
    def matmul_precision(self, tf32: bool) -> Iterator[None]:
        """Allow TF32 matmuls (CUDA only) inside the block; restores the previous setting."""
        if not (tf32 and self.name == "torch_cuda"):
            yield
            return
        torch = self._torch
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old


class Workspace:
    """Named, reusable scratch arrays.

    Large temporaries that would be allocated afresh for every fold (and page-faulted in
    again, which costs as much as a matrix product on a small VM) are allocated once per
    shape and reused.

    Parameters
    ----------
    ops : ArrayOps
    """

    def __init__(self, ops: ArrayOps) -> None:
        self.ops = ops
        self._buffers: dict[str, Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: str | None = None) -> Array:
        """Return the buffer ``name`` with this shape and dtype (contents undefined)."""
        dtype = dtype or self.ops.dtype
        buf = self._buffers.get(name)
        if buf is None or tuple(buf.shape) != tuple(shape) or str(buf.dtype).split(".")[-1] != dtype:
            self._buffers.pop(name, None)
            buf = self.ops.empty(tuple(shape), dtype)
            self._buffers[name] = buf
        return buf

    def clear(self) -> None:
        self._buffers.clear()


def get_ops(backend: str = "auto", dtype: str = "float32") -> ArrayOps:
    """Return :class:`ArrayOps` for a backend name (``"auto"`` picks CUDA when present).

    Parameters
    ----------
    backend : {"auto", "numpy", "torch", "torch_cuda"}
    dtype : {"float32", "float64"}
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return ArrayOps(resolve_backend(backend), dtype)
