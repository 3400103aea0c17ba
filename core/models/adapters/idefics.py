"""IDEFICS v1 (e.g. idefics-9b-instruct): images enter through gated cross-attention.

Prompt (the model card's instruct format): ``["User: {q}", image, "<end_of_utterance>",
"\\nAssistant:"]``. The instruction precedes the image, so there is no shared prefix to reuse.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.models.adapters.base import Adapter


class IdeficsAdapter(Adapter):
    family = "idefics"
    supports_two_phase = True

    def extend_inputs(self, full: dict, n_fed: int) -> dict:
        """Also extend ``image_attention_mask`` (batch, n_tokens, n_images): response tokens see
        the images the prompt's last token sees, as in ``generate``."""
        import torch

        full = super().extend_inputs(full, n_fed)
        if (iam := full.get("image_attention_mask")) is not None:
            last = iam[:, -1:, :].expand(-1, n_fed, -1)
            full["image_attention_mask"] = torch.cat([iam, last], 1)
        return full

    @classmethod
    def model_class(cls):
        from transformers import IdeficsForVisionText2Text

        return IdeficsForVisionText2Text

    def prompt(self, instruction: str) -> list:
        return [f"User: {instruction}", None, "<end_of_utterance>", "\nAssistant:"]

    def encode(self, images: Sequence[Image.Image], prompts: Sequence) -> dict:
        filled = [
            [im if part is None else part for part in p]
            for im, p in zip(images, prompts, strict=True)
        ]
        return dict(self.processor(text=filled, padding=True, return_tensors="pt"))
