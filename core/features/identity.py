"""How an embedding was computed: the part of a shard's identity beyond data, model and prompt.

The same weights give different numbers in bfloat16 on a GPU and float32 on a CPU, with one-pass
or two-phase extraction, with or without the shared-prefix KV cache, and under another version
of the prompt-building and pooling code (:data:`core.models.code_version.EMBEDDING_CODE_VERSION`).
Each of these is part of the shard key, so one design matrix never mixes two feature definitions
(a run resumed on another machine writes its own shard).

Writers take the identity from the loaded adapter (:func:`adapter_extraction`); readers and
planners derive it without loading weights (:func:`planned_extraction`) from
:class:`ExtractionSettings`, whose ``"auto"`` fields resolve as loading would on this machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Extraction methods (see :mod:`core.models.adapters.base`).
METHODS = ("one-pass", "two-phase")


@dataclass(frozen=True)
class ExtractionSettings:
    """How response embeddings are (to be) computed.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "mps"}
        ``"auto"``: CUDA when available, else MPS, else CPU.
    dtype : {"auto", "bfloat16", "float16", "float32"}
        ``"auto"``: bfloat16 on CUDA, float32 elsewhere.
    method : {"one-pass", "two-phase"}
    prefix_reuse : bool
        Use the family's shared-prefix KV cache across an image's instructions (one-pass only,
        families that support it).
    """

    device: str = "auto"
    dtype: str = "auto"
    method: str = "one-pass"
    prefix_reuse: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown extraction method {self.method!r}; expected {METHODS}")

    def to_dict(self) -> dict:
        return asdict(self)


def extraction_identity(
    device: str, dtype: str, method: str, prefix_reuse: bool, generative: bool
) -> dict:
    """The extraction fields of a shard key.

    Parameters
    ----------
    device : str
        Device class (``"cpu"``, ``"cuda"``, ``"mps"``).
    dtype : str
        Weight dtype name (``"float32"``, ``"bfloat16"``, ``"float16"``).
    method : str
    prefix_reuse : bool
        Whether the shared-prefix path is used (already resolved for the family).
    generative : bool
        False for image encoders: method and prefix reuse do not apply (None).

    Returns
    -------
    identity : dict
        ``device``, ``dtype``, ``method``, ``prefix_reuse``, ``code`` (the embedding code
        version).
    """
    from core.models import code_version

    return {
        "device": device,
        "dtype": dtype,
        "method": method if generative else None,
        "prefix_reuse": bool(prefix_reuse) if generative else None,
        "code": code_version.EMBEDDING_CODE_VERSION,
    }


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def adapter_extraction(adapter, method: str, prefix_reuse: bool) -> dict:
    """The extraction identity of rows a loaded adapter computes (see
    :func:`extraction_identity`)."""
    import torch

    device = torch.device(adapter.device).type
    prefix = bool(prefix_reuse) and method == "one-pass" and adapter.supports_prefix_cache
    return extraction_identity(device, _dtype_name(adapter.dtype), method, prefix,
                               adapter.generative)  # fmt: skip


def device_class(device: str) -> str:
    """``"auto"`` resolved on this machine, else the class of the named device (never raises
    for a device absent here: a planner may name the workers' GPUs)."""
    if device == "auto":
        from core.backend import resolve_device

        return resolve_device("auto").type
    return str(device).split(":")[0]


def planned_extraction(spec, settings: ExtractionSettings) -> dict:
    """The extraction identity :func:`adapter_extraction` would give for ``spec`` loaded with
    ``settings`` (no weights are loaded: the family's flags come from its adapter class).

    Parameters
    ----------
    spec : ModelSpec
    settings : ExtractionSettings
    """
    import torch

    from core.models.adapters import adapter_class, detect_family
    from core.models.device import choose_dtype

    cls = adapter_class(detect_family(spec))
    device = device_class(settings.device)
    dtype = _dtype_name(choose_dtype(torch.device(device), settings.dtype))
    prefix = settings.prefix_reuse and settings.method == "one-pass" and cls.supports_prefix_cache
    return extraction_identity(device, dtype, settings.method, prefix, cls.generative)
