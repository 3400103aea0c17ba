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
