"""Shared fixtures for the encoding tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas() -> Iterator[None]:
    """One BLAS/torch thread: the tiny test problems run 10-20x slower when two-thread BLAS
    spins against other jobs on a shared 2-core machine."""
    import torch
    from threadpoolctl import threadpool_limits

    n_torch = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(n_torch)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
