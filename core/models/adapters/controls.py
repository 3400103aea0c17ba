"""Controls computed from a VLM's answers: ``text:<vlm>`` and ``length:<vlm>``.

Both are feature spaces per (image, instruction), like the VLM's response embeddings, so the grid
fits them per instruction. They never generate during extraction: they read the answers the
source model ``<vlm>`` generated for each (image, instruction), stored in its shard
(:func:`core.features.extract.extract_model` hands them over as :class:`Response` objects:
:meth:`ControlAdapter.derive`). Live inference (:meth:`ControlAdapter.generate`, used by the app
for an uploaded image) lets the source model answer first and derives from that answer.

``text:<vlm>`` (:class:`TextControlAdapter`)
    The VLM's own language model (its decoder, ``model.get_decoder()``: no vision tower, no
    image tokens, no prompt and no instruction) runs over the answer alone:
    ``[special prefix] + answer tokens``, where the special prefix is what the tokenizer puts
    before any text (``<s>`` for Llama tokenizers; nothing for Qwen2). The answer tokens are
    the source's generated ids when its shard stores them (shards written since token ids are
    stored), else the stored answer text re-tokenised without special tokens. As in the
    response embedding, the answer's *content* tokens are pooled (its end-of-sequence token
    dropped), per hidden state, with the same pooling (mean by default); an empty answer pools
    the last prefix position (the state that would produce the first token), or, without a
    prefix, the state of the end-of-sequence token fed alone. Same device and dtype rules as
    the source model (it is loaded through :func:`core.models.adapters.load_adapter`).
``length:<vlm>`` (:class:`LengthControlAdapter`)
    Two features, the answer's length in tokens ``n`` (the stored ``n_generated_tokens``, its
    end-of-sequence token included) and ``n ** 2``, as one "layer" (hidden-state index 0). No
    weights are loaded for extraction.

Each control's shard key holds the source model's identity (through the spec), the instruction,
the options, the extraction settings and the key of the source shard it read (see
:func:`core.features.store.source_shard`), so new answers make new control shards.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np

from core.models.adapters.base import DEFAULT_METHOD, Adapter, GenerationOptions, Response
from core.models.pooling import POOLINGS, pool_sequence_states
from core.models.registry import ModelError, ModelSpec, control_source


class ControlAdapter(Adapter):
    """A feature space derived from a source VLM's answers (see the module docstring).

    ``generative`` is True (one shard per instruction); ``method`` and ``prefix_reuse`` of the
    extraction settings name how the *source* answers were extracted (they select the source
    shard), so both flags are accepted.
    """

    family = "control"
    generative = True
    derived = True
    supports_prefix_cache = True
    supports_two_phase = True

    def __init__(
        self, spec: ModelSpec, model, processor, device, dtype, source: Adapter | None = None
    ) -> None:
        super().__init__(spec, model, processor, device, dtype)
        self._source = source

    @classmethod
    def open(cls, spec: ModelSpec, device: str = "auto", dtype: str | None = None):
        """Build the adapter of a control spec (what :func:`load_adapter` calls)."""
        raise NotImplementedError

    @property
    def source_spec(self) -> ModelSpec:
        """The spec of the model whose answers this control reads."""
        source = control_source(self.spec)
        if source is None:
            raise ModelError(f"{self.spec.display_name()} is not a control spec")
        return source

    def source_adapter(self) -> Adapter:
        """The source model, loaded on first use with this adapter's device and dtype."""
        if self._source is None:
            from core.models.adapters import load_adapter

            dtype = str(self.dtype).replace("torch.", "")
            device = str(self.device)
            self._source = load_adapter(self.source_spec, device=device, dtype=dtype)
        return self._source

    def effective_generation(self, options: GenerationOptions) -> dict | None:
        """None: a control generates nothing (its source shard's manifest records how the
        answers were generated)."""
        return None

    def prompt_length(self, instruction: str) -> int:
        return 0

    def derive(self, sources: Sequence[Response], options: GenerationOptions) -> list[Response]:
        """The control's features for the source's answers.

        Parameters
        ----------
        sources : sequence of Response, length batch
            The source model's answers: ``text``, ``n_generated_tokens`` and, when known,
            ``token_ids`` (the generated ids, end-of-sequence included); embeddings unused.
        options : GenerationOptions
            ``layers`` and ``pooling`` apply to the control's own states.

        Returns
        -------
        responses : list of Response, length batch
            The source's text, token count and ids, with the control's embeddings of shape
            (len(layers), d).
        """
        raise NotImplementedError

    def generate(
        self,
        images,
        instructions: Sequence[str],
        options: GenerationOptions = GenerationOptions(),
        method: str = DEFAULT_METHOD,
    ) -> list[Response]:
        """Live inference: the source model answers, then :meth:`derive` (for images with no
        stored answer, e.g. an upload in the app)."""
        self.check_method(method)
        answers = self.source_adapter().generate(images, instructions, options, method=method)
        return self.derive(answers, options)


def special_prefix(tokenizer) -> list[int]:
    """The special token ids a tokenizer puts before any text (``[bos]`` for Llama; ``[]`` for
    tokenizers that add none).

    Found by encoding a probe word with and without special tokens; when the plain ids are not
    a contiguous part of the special encoding, ``[bos_token_id]`` if the tokenizer has one.
    """
    plain = list(tokenizer("the", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("the", add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if plain and full[start : start + len(plain)] == plain:
            return full[:start]
    bos = getattr(tokenizer, "bos_token_id", None)
    return [int(bos)] if bos is not None else []


class TextControlAdapter(ControlAdapter):
    """``text:<vlm>``: the VLM's language model over its own answer, without the image."""

    family = "text_control"

    @classmethod
    def open(cls, spec: ModelSpec, device: str = "auto", dtype: str | None = None):
        from core.models.adapters import load_adapter

        source = load_adapter(control_source(spec), device=device, dtype=dtype)
        if not source.generative:
            raise ModelError(f"{spec.display_name()}: {source.spec.name!r} generates no answers")
        return cls(spec, source.model, source.processor, source.device, source.dtype, source)

    @property
    def decoder(self):
        """The language model's decoder (``model.get_decoder()``)."""
        get = getattr(self.model, "get_decoder", None)
        decoder = get() if get is not None else None
        if decoder is None:
            raise ModelError(
                f"{self.spec.display_name()}: {type(self.model).__name__} exposes no language "
                "model (get_decoder); the text-only control is not available for it"
            )
        return decoder

    def content_ids(self, response: Response) -> list[int]:
        """The answer's content token ids: the generated ids without their end-of-sequence
        token when stored, else the text re-tokenised without special tokens."""
        ids = [int(t) for t in response.token_ids]
        if ids and len(ids) == response.n_generated_tokens:
            if ids[-1] in self.eos_ids():
                ids = ids[:-1]
            return ids
        return list(self.tokenizer(response.text, add_special_tokens=False)["input_ids"])

    def sequences(self, sources: Sequence[Response]) -> tuple[list[list[int]], int, np.ndarray]:
        """Token sequences fed to the decoder.

        Returns
        -------
        sequences : list of list of int, length batch
            ``prefix + content`` per answer (see the module docstring).
        n_prefix : int
            Length of the shared special prefix.
        counts : array of shape (batch,), int64
            Positions pooled per answer, from ``n_prefix`` on (0: the last prefix position).
        """
        prefix = special_prefix(self.tokenizer)
        seqs, counts = [], []
        for response in sources:
            content = self.content_ids(response)
            if not content and not prefix:
                eos = self.eos_ids() or [self.tokenizer.pad_token_id or 0]
                content = [int(eos[0])]
            seqs.append(prefix + content)
            counts.append(len(content))
        return seqs, len(prefix), np.asarray(counts, dtype=np.int64)

    def text_states(self, seqs: Sequence[Sequence[int]]) -> tuple:
        """Hidden states of the decoder over right-padded sequences (no image).

        Parameters
        ----------
        seqs : sequence of sequences of int, length batch

        Returns
        -------
        hidden_states : tuple over n_hidden_states of tensors of shape (batch, max_len, d)
        """
        import torch

        decoder = self.decoder
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), int(pad), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, seq in enumerate(seqs):
            ids[i, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[i, : len(seq)] = 1
        positions = torch.arange(width)[None, :].expand(len(seqs), width)
        kwargs = {
            "input_ids": ids.to(self.device),
            "attention_mask": mask.to(self.device),
            "position_ids": positions.to(self.device),
        }
        params = inspect.signature(decoder.forward).parameters
        if "image_encoder_embeddings" in params and "image_attention_mask" in params:
            # IDEFICS v1 requires an image input: one dummy image that no token attends to
            # (an all-zero image attention mask gates its cross-attention off)
            dim = int(self.model.config.vision_config.embed_dim)
            kwargs["image_encoder_embeddings"] = torch.zeros(
                len(seqs), 1, 1, dim, dtype=self.dtype, device=self.device
            )
            kwargs["image_attention_mask"] = torch.zeros(
                len(seqs), width, 1, dtype=torch.long, device=self.device
            )
        out = decoder(**kwargs, output_hidden_states=True, use_cache=False)
        states = out.hidden_states
        if len(states) != self.n_hidden_states:
            raise ModelError(
                f"{self.spec.display_name()}: the decoder returned {len(states)} hidden states, "
                f"the model has {self.n_hidden_states}"
            )
        return states

    def derive(self, sources: Sequence[Response], options: GenerationOptions) -> list[Response]:
        import torch

        if options.pooling not in POOLINGS:
            raise ValueError(f"pooling {options.pooling!r} is not one of {POOLINGS}")
        layers = self.resolve_layers(options.layers)
        if not sources:
            return []
        seqs, n_prefix, counts = self.sequences(sources)
        with torch.inference_mode():
            states = self.text_states(seqs)
            embeddings = pool_sequence_states(states, n_prefix, counts, layers, options.pooling)
        return [
            Response(r.text, r.n_generated_tokens, embeddings[i], layers, tuple(r.token_ids))
            for i, r in enumerate(sources)
        ]


class LengthControlAdapter(ControlAdapter):
    """``length:<vlm>``: the answer's length in tokens and its square (one "layer", index 0)."""

    family = "length_control"

    @classmethod
    def open(cls, spec: ModelSpec, device: str = "auto", dtype: str | None = None):
        from core.models.device import choose_device, choose_dtype

        control_source(spec)
        dev = choose_device(device)
        return cls(spec, None, None, dev, choose_dtype(dev, dtype))

    @property
    def n_hidden_states(self) -> int:
        return 1

    @property
    def tokenizer(self):
        return self.source_adapter().tokenizer

    def derive(self, sources: Sequence[Response], options: GenerationOptions) -> list[Response]:
        layers = self.resolve_layers(options.layers)
        out = []
        for r in sources:
            n = float(r.n_generated_tokens)
            features = np.asarray([[n, n * n]], dtype=np.float32)  # (1, 2)
            out.append(Response(r.text, r.n_generated_tokens, features, layers, tuple(r.token_ids)))
        return out
