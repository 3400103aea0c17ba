"""Qwen2-VL and Qwen2.5-VL: ChatML prompt with ``<|vision_start|><|image_pad|><|vision_end|>``.

The full processor needs a video processor (torchvision); without it, the adapter assembles inputs
from the image processor and the tokenizer, expanding ``<|image_pad|>`` to the image's merged patch
count exactly as the processor does. No prefix reuse (M-RoPE positions are computed over the whole
sequence). Two-phase extraction passes the whole prompt + response sequence with
``image_grid_thw`` and lets the model compute the positions as in ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.models.adapters.base import Adapter
from core.models.registry import ModelSpec

SYSTEM = "You are a helpful assistant."


def qwen_prompt(instruction: str) -> str:
    """Qwen2-VL's chat format for one image and one instruction (default system prompt)."""
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
        f"<|vision_start|><|image_pad|><|vision_end|>{instruction}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


class _ImageTextInputs:
    """Minimal processor: an image processor and a tokenizer (left padding).

    Like the real processor, it returns lists and arrays unless ``return_tensors`` is given.
    """

    def __init__(self, image_processor, tokenizer) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.chat_template = None

    def __call__(
        self,
        images: Sequence[Image.Image],
        text: Sequence[str],
        padding: bool = True,
        return_tensors: str | None = None,
    ) -> dict:
        pix = self.image_processor(images=images, return_tensors=return_tensors)
        merge = getattr(self.image_processor, "merge_size", 2) ** 2
        expanded = []
        for i, prompt in enumerate(text):
            n = int(pix["image_grid_thw"][i].prod()) // merge
            expanded.append(prompt.replace("<|image_pad|>", "<|image_pad|>" * n, 1))
        enc = self.tokenizer(expanded, padding=padding, return_tensors=return_tensors)
        return {**enc, **pix}


class Qwen2VLAdapter(Adapter):
    family = "qwen2_vl"
    #: Two-phase: position ids come from the model's own ``_prepare_position_ids_for_generation``
    #: over the whole sequence (M-RoPE from ``image_grid_thw`` when ``mm_token_type_ids`` is
    #: given, as the full processor does), so they equal those ``generate`` used.
    supports_two_phase = True

    @classmethod
    def load_processor(cls, spec: ModelSpec):
        try:
            return super().load_processor(spec)
        except Exception:
            from transformers import AutoImageProcessor, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(spec.source, revision=spec.revision)
            tok.padding_side = "left"
            ip = AutoImageProcessor.from_pretrained(spec.source, revision=spec.revision)
            return _ImageTextInputs(ip, tok)

    def prompt(self, instruction: str) -> str:
        return self.chat_prompt(instruction) or qwen_prompt(instruction)

    def encode(self, images: Sequence[Image.Image], prompts: Sequence) -> dict:
        """Processor inputs for a batch (left padded), as torch tensors on the CPU: input_ids and
        attention_mask (batch, n_tokens), pixel_values (n_patches_total, C * T * P * P),
        image_grid_thw (batch, 3)."""
        return dict(
            self.processor(
                images=list(images), text=list(prompts), padding=True, return_tensors="pt"
            )
        )
