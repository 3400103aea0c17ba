"""Idefics2, Idefics3 and SmolVLM: chat template (``User:<image>{q}<end_of_utterance>\\nAssistant:``).

Images may be split into tiles by the processor; each item passes its image as a one-element list.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.models.adapters.base import Adapter


def idefics3_prompt(instruction: str) -> str:
    """The documented Idefics2/3 user turn, used when the processor has no chat template."""
    return f"User:<image>{instruction}<end_of_utterance>\nAssistant:"


class Idefics3Adapter(Adapter):
    family = "idefics3"
    supports_two_phase = True

    def prompt(self, instruction: str) -> str:
        return self.chat_prompt(instruction) or idefics3_prompt(instruction)

    def encode(self, images: Sequence[Image.Image], prompts: Sequence) -> dict:
        return dict(
            self.processor(
                images=[[im] for im in images],
                text=list(prompts),
                padding=True,
                return_tensors="pt",
            )
        )
