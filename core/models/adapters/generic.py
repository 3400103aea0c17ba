"""Fallback for any other image-text-to-text model: the processor's chat template, else
``"<image>\\n{instruction}"``; loaded with ``AutoModelForImageTextToText``."""

from __future__ import annotations

from core.models.adapters.base import Adapter


class GenericAdapter(Adapter):
    family = "generic"

    def prompt(self, instruction: str) -> str:
        chat = self.chat_prompt(instruction)
        if chat is not None:
            return chat
        token = getattr(self.processor, "image_token", "<image>")
        return f"{token}\n{instruction}"
