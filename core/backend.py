"""One way to pick a compute device (torch) and an array backend (himalaya-style).

``resolve_device("auto")`` picks cuda, then mps, then cpu; an explicit name overrides.
``resolve_backend("auto")`` returns the himalaya backend name matching the device.
"""

from __future__ import annotations

VALID_DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto"):
    """Return a ``torch.device`` for ``name``.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda", "mps"} or a torch device string such as ``"cuda:1"``

    Raises
    ------
    ValueError
        For an unknown name, or a device that is not available here.
    """
    import torch

    base = name.split(":")[0]
    if base not in VALID_DEVICES:
        raise ValueError(f"unknown device {name!r}; expected one of {VALID_DEVICES}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available")
    if base == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' requested but MPS is not available")
    return torch.device(name)


def resolve_backend(name: str = "auto") -> str:
    """Return a himalaya backend name: ``"numpy"``, ``"torch"`` or ``"torch_cuda"``.

    ``"auto"`` gives ``"torch_cuda"`` when a CUDA GPU is present, else ``"numpy"``.
    """
    valid = ("auto", "numpy", "torch", "torch_cuda")
    if name not in valid:
        raise ValueError(f"unknown backend {name!r}; expected one of {valid}")
    if name == "auto":
        import torch

        return "torch_cuda" if torch.cuda.is_available() else "numpy"
    if name == "torch_cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("backend 'torch_cuda' requested but no CUDA GPU is available")
    return name
