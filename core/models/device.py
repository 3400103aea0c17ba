"""Device and dtype choice for model inference: bf16 on CUDA, float32 elsewhere."""

from __future__ import annotations

from core.backend import resolve_device


def choose_device(name: str = "auto"):
    """Return a ``torch.device``; see :func:`core.backend.resolve_device`."""
    return resolve_device(name)


def choose_dtype(device, dtype: str | None = None):
    """Return the torch dtype to load weights in.

    Parameters
    ----------
    device : torch.device
    dtype : {"auto", "bfloat16", "float16", "float32"} or None
        None / "auto": bfloat16 on CUDA, float32 on CPU and MPS.
    """
    import torch

    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto, {', '.join(table)}")
    return table[dtype]
