"""Adapters per model family, and :func:`load_adapter` (detects the family, loads weights or a
random-init twin on the chosen device and dtype)."""

from __future__ import annotations

import importlib

from core.models.adapters.base import (
    DEFAULT_METHOD,
    GENERATION_METHODS,
    TWO_PHASE_FAMILIES,
    Adapter,
    GenerationOptions,
    Response,
)
from core.models.registry import (
    FAMILIES,
    ModelError,
    ModelSpec,
    detect_family,
    resolve,
)


def adapter_class(family: str) -> type[Adapter]:
    module, cls = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), cls)


def load_adapter(name: str | ModelSpec, device: str = "auto", dtype: str | None = None) -> Adapter:
    """Open a model by registry name, hub id or folder (``"random:<name>"`` for its twin;
    ``"vision:<vlm>"``, ``"text:<vlm>"``, ``"length:<vlm>"`` for derived feature spaces).

    Parameters
    ----------
    name : str or ModelSpec
    device : {"auto", "cpu", "cuda", "mps"}
    dtype : {"auto", "bfloat16", "float16", "float32"} or None
        Default: bfloat16 on CUDA, float32 otherwise.

    Raises
    ------
    ModelError
        Unknown name, missing folder, weights not available offline, or remote code not opted in.
    """
    import torch

    from core.models.device import choose_device, choose_dtype

    spec = resolve(name)
    family = detect_family(spec)
    if family == "mplug_owl":
        from core.models.adapters.mplug_owl import check_opt_in

        check_opt_in(spec)
    elif spec.trust_remote_code and not spec.revision:
        raise ModelError(f"{spec.name!r}: trust_remote_code needs a pinned revision")
    cls = adapter_class(family)
    if cls.derived:  # text: / length: controls build themselves (from their source model)
        return cls.open(spec, device, dtype)
    dev = choose_device(device)
    torch_dtype = choose_dtype(dev, dtype)
    model_cls = cls.model_class()
    common = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    try:
        processor = cls.load_processor(spec)
        if spec.random_init:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(spec.source, **common)
            torch.manual_seed(spec.seed)
            model = _with_attention(
                lambda attn: model_cls.from_config(
                    config, attn_implementation=attn, dtype=torch_dtype, **_rc(spec)
                )
            )
        else:
            model = _with_attention(
                lambda attn: model_cls.from_pretrained(
                    spec.source, attn_implementation=attn, dtype=torch_dtype, **common
                )
            )
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(
            f"cannot load {spec.name!r} from {spec.source!r} offline: {exc}. Save the model to a "
            "local folder and register it, or fill the Hugging Face cache."
        ) from exc
    model = model.to(dev).eval()
    return cls(spec, model, processor, dev, torch_dtype)


def _rc(spec: ModelSpec) -> dict:
    return {"trust_remote_code": True} if spec.trust_remote_code else {}


def _with_attention(build):
    """Build with sdpa attention, falling back to eager where a model does not support it."""
    try:
        return build("sdpa")
    except (ValueError, NotImplementedError):
        return build("eager")


__all__ = [
    "Adapter",
    "DEFAULT_METHOD",
    "GENERATION_METHODS",
    "GenerationOptions",
    "TWO_PHASE_FAMILIES",
    "Response",
    "FAMILIES",
    "detect_family",
    "load_adapter",
]
