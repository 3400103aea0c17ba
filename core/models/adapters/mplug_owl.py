"""mPLUG-Owl (MAGAer13/mplug-owl-llama-7b): not in transformers; runs the model's own code.

Supported only when the user (1) installed the authors' ``mplug_owl`` package and (2) opted in by
registering the model with remote code trusted (``trust_remote_code``) *and* a pinned 40-hex
``revision``. Otherwise
:func:`check_opt_in` raises a :class:`~core.models.registry.ModelError` saying what to do. This path
cannot be tested offline here (no weights, no package).
"""

from __future__ import annotations

import importlib.util
import re

from core.models.adapters.base import Adapter
from core.models.registry import ModelError, ModelSpec

PROMPT = (
    "The following is a conversation between a curious human and AI assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions.\n"
    "Human: <image>\nHuman: {instruction}\nAI: "
)


def check_opt_in(spec: ModelSpec) -> None:
    """Raise :class:`ModelError` unless the user opted in at a pinned revision with the code
    installed."""
    if not spec.trust_remote_code or not re.fullmatch(r"[0-9a-f]{40}", spec.revision or ""):
        raise ModelError(
            f"{spec.name!r} (mPLUG-Owl) runs its authors' own code, so it is off by default. To "
            "opt in, install the `mplug_owl` package from github.com/X-PLUG/mPLUG-Owl, review it, "
            "and register the model with remote code trusted at a pinned 40-character commit "
            "revision (core.models.registry.register_local(..., trust_remote_code=<True>, "
            "revision=...))."
        )
    if importlib.util.find_spec("mplug_owl") is None:
        raise ModelError(
            "mPLUG-Owl needs the `mplug_owl` package (github.com/X-PLUG/mPLUG-Owl), which is not "
            "installed in this environment."
        )


class MplugOwlAdapter(Adapter):
    family = "mplug_owl"

    @classmethod
    def model_class(cls):  # pragma: no cover - needs the authors' package
        from mplug_owl.modeling_mplug_owl import MplugOwlForConditionalGeneration

        return MplugOwlForConditionalGeneration

    @classmethod
    def load_processor(cls, spec: ModelSpec):  # pragma: no cover - needs the authors' package
        from mplug_owl.processing_mplug_owl import MplugOwlImageProcessor, MplugOwlProcessor
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec.source, revision=spec.revision)
        tok.padding_side = "left"
        return MplugOwlProcessor(MplugOwlImageProcessor.from_pretrained(spec.source), tok)

    def prompt(self, instruction: str) -> str:
        return PROMPT.format(instruction=instruction)
