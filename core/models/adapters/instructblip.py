"""InstructBLIP (Vicuna / Flan-T5 LLM behind a Q-Former that also reads the instruction).

Prompt: the instruction itself (the processor prepends the query-token placeholders). No prefix
reuse: the Q-Former's image tokens depend on the instruction, so nothing is shared across them.
"""

from __future__ import annotations

from core.models.adapters.base import Adapter
from core.models.registry import ModelSpec


class InstructBlipAdapter(Adapter):
    family = "instructblip"

    @classmethod
    def model_class(cls):
        from transformers import InstructBlipForConditionalGeneration

        return InstructBlipForConditionalGeneration

    @classmethod
    def load_processor(cls, spec: ModelSpec):
        """Left padding for the LLM; right padding for the Q-Former's BERT-style text input, whose
        absolute position embeddings would otherwise shift with the padding."""
        proc = super().load_processor(spec)
        proc.qformer_tokenizer.padding_side = "right"
        return proc

    def prompt(self, instruction: str) -> str:
        return instruction

    @property
    def n_hidden_states(self) -> int:
        return int(self.model.config.text_config.num_hidden_layers) + 1
