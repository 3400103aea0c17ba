"""InstructBLIP (Vicuna / Flan-T5 LLM behind a Q-Former that also reads the instruction).

Prompt: the instruction itself (the processor prepends the query-token placeholders). No prefix
reuse: the Q-Former's image tokens depend on the instruction, so nothing is shared across them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.models.adapters.base import Adapter


class InstructBlipAdapter(Adapter):
    family = "instructblip"

    @classmethod
    def model_class(cls):
        from transformers import InstructBlipForConditionalGeneration

        return InstructBlipForConditionalGeneration

    def encode(self, images: Sequence[Image.Image], prompts: Sequence) -> dict:
        """Left padding for the LLM; right padding for the Q-Former's BERT-style text input, whose
        absolute position embeddings would otherwise shift with left padding."""
        enc = super().encode(images, prompts)
        q = self.processor.qformer_tokenizer(
            list(prompts), padding=True, padding_side="right", return_tensors="pt"
        )
        enc["qformer_input_ids"] = q["input_ids"]
        enc["qformer_attention_mask"] = q["attention_mask"]
        return enc

    def prompt(self, instruction: str) -> str:
        return instruction

    @property
    def n_hidden_states(self) -> int:
        return int(self.model.config.text_config.num_hidden_layers) + 1
