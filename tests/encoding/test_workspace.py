"""Scratch buffers reused across folds (core.encoding._array.Workspace)."""

from __future__ import annotations

import numpy as np
import pytest
from encoding_data import BACKENDS

from core.encoding._array import Workspace, get_ops


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_name_shape_and_dtype_reuses_the_buffer(backend):
    ws = Workspace(get_ops(backend))
    a = ws.get("u", (3, 4), "float64")
    assert ws.get("u", (3, 4), "float64") is a


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_shape_or_dtype_reallocates(backend):
    ws = Workspace(get_ops(backend))
    a = ws.get("u", (3, 4))
    b = ws.get("u", (3, 5))
    c = ws.get("u", (3, 5), "float64")
    assert tuple(b.shape) == (3, 5) and b is not a
    assert "float64" in str(c.dtype) and c is not b


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_helpers_write_into_the_buffer(backend):
    ops = get_ops(backend)
    ws = Workspace(ops)
    a = ops.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    out = ws.get("p", (2, 2))
    res = ops.matmul(a, a.T, out)
    assert res is out or res.data_ptr() == out.data_ptr()
    np.testing.assert_allclose(ops.to_numpy(out), ops.to_numpy(a) @ ops.to_numpy(a).T)
    rows = ops.take_rows(a, ops.index(np.array([1, 0])), ws.get("r", (2, 3)))
    np.testing.assert_array_equal(ops.to_numpy(rows), ops.to_numpy(a)[[1, 0]])
    wide = ops.copy_into(ws.get("w", (2, 3), "float64"), a[:, :1])  # broadcasts
    np.testing.assert_array_equal(ops.to_numpy(wide), np.repeat(ops.to_numpy(a)[:, :1], 3, 1))
