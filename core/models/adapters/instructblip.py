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
    #: Decoder-only LLMs (Vicuna) only; a Flan-T5 LLM raises in :meth:`check_method`.
    supports_two_phase = True

    def check_method(self, method: str) -> None:
        super().check_method(method)
        if method == "two-phase" and not self.model.config.use_decoder_only_language_model:
            raise NotImplementedError(
                "method='two-phase' needs a decoder-only language model; this InstructBLIP's "
                "is an encoder-decoder (Flan-T5): use method='one-pass'"
            )

    def forward_hidden_states(self, full: dict) -> tuple:
        """The language model's hidden states (the forward passes ``position_ids`` and
        ``logits_to_keep`` through to it)."""
        out = self.model(**full, output_hidden_states=True, use_cache=False, logits_to_keep=1)
        return out.language_model_outputs.hidden_states

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
