"""The adapter contract and the shared batched greedy generation with response pooling.

Two ways to compute the response embeddings (:data:`GENERATION_METHODS`), chosen per call with
``Adapter.generate(..., method=...)``:

``"one-pass"`` (default)
    One ``model.generate(..., output_hidden_states=True)``: the states are collected while
    decoding (:func:`~core.models.pooling.pool_hidden_states`).
``"two-phase"``
    Phase 1: the same greedy ``generate`` (same generation config) returning token ids only.
    Phase 2: one teacher-forced forward pass over prompt + generated ids (the ids reused exactly,
    never re-tokenised), pixel inputs included, with the positions ``generate`` gave them;
    the same positions are pooled (:func:`~core.models.pooling.pool_sequence_states`). Only
    families with ``supports_two_phase`` (:data:`core.models.adapters.TWO_PHASE_FAMILIES`).
    Phase 1 always runs on transformers' ``generate``: a vLLM phase 1 is not implemented.

The two agree to float tolerance (float32: within 1e-4, see tests/models/test_two_phase.py);
"one-pass" stays the default until "two-phase" is measured faster on the GPU.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from core.data.images import sanitize_image
from core.models.pooling import (
    POOLINGS,
    generated_lengths,
    pool_hidden_states,
    pool_sequence_states,
    pooled_counts,
)
from core.models.registry import ModelSpec

#: Values of ``method`` in :meth:`Adapter.generate` (see the module docstring).
GENERATION_METHODS = ("one-pass", "two-phase")
#: The method used when none is given.
DEFAULT_METHOD = "one-pass"
#: Generative families whose adapter supports ``generate(..., method="two-phase")`` (their
#: ``supports_two_phase``): tested on tiny random models in tests/models/test_two_phase.py.
#: Not: mplug_owl (authors' own forward, untestable offline) and generic (unverified model
#: classes). Encoders (vit, clip, vision_tower) generate nothing and accept either method.
TWO_PHASE_FAMILIES: tuple[str, ...] = ("llava", "instructblip", "idefics", "idefics3", "qwen2_vl")


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding and pooling settings (greedy decoding only: sampling is not reproducible).

    Parameters
    ----------
    max_new_tokens : int
        Generation budget per response.
    layers : tuple of int or None
        Hidden-state indices to keep (0 = embedding output ... n_layers = last); None = all.
    pooling : {"mean", "last"}
        Mean over the generated tokens' states, or the last one's. Encoders (ViT) use
        ``"cls"`` or ``"mean_patch"`` instead.
    """

    max_new_tokens: int = 48
    layers: tuple[int, ...] | None = None
    pooling: str = "mean"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers) if self.layers is not None else None
        d["decoding"] = "greedy"
        return d


@dataclass
class Response:
    """One (image, instruction) result.

    Parameters
    ----------
    text : str
        The decoded response (special tokens removed).
    n_generated_tokens : int
        Tokens of the answer, end-of-sequence included (at most the token budget); the
        embedding averages the states of its content tokens: ``n - 1`` when it ended with the
        end-of-sequence token, ``n`` when it was cut at the budget.
    embeddings : array of shape (n_selected_layers, d), float32
        Pooled response states per selected layer.
    layers : tuple of int
        The hidden-state indices of the rows of ``embeddings``.
    token_ids : tuple of int, length n_generated_tokens
        The generated token ids, end-of-sequence included (empty for encoders).
    """

    text: str
    n_generated_tokens: int
    embeddings: np.ndarray
    layers: tuple[int, ...]
    token_ids: tuple[int, ...] = ()


class Adapter:
    """Base of every model family.

    Subclasses set ``family`` and implement :meth:`load` and, for generative models,
    :meth:`prompt` and :meth:`encode`. ``generate`` is shared.
    """

    family = "base"
    generative = True
    #: Whether :meth:`generate_grid` reuses one image prefix KV cache across instructions.
    supports_prefix_cache = False
    #: Whether ``generate(..., method="two-phase")`` is implemented and tested for the family.
    supports_two_phase = False
    #: Whether the adapter derives its features from another model's stored answers (the
    #: ``text:`` and ``length:`` controls, :mod:`core.models.adapters.controls`): extraction
    #: then calls ``derive`` with those answers instead of ``generate``.
    derived = False

    def __init__(self, spec: ModelSpec, model, processor, device, dtype) -> None:
        self.spec = spec
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype

    # ----- family hooks -------------------------------------------------------------------
    @classmethod
    def model_class(cls):
        """The transformers class to load (default: ``AutoModelForImageTextToText``)."""
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    @classmethod
    def load_processor(cls, spec: ModelSpec):
        """Load the processor, with left padding."""
        from transformers import AutoProcessor

        proc = AutoProcessor.from_pretrained(
            spec.source, revision=spec.revision, trust_remote_code=spec.trust_remote_code
        )
        tok = getattr(proc, "tokenizer", proc)
        tok.padding_side = "left"
        return proc

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def prompt(self, instruction: str):
        """The family's prompt for one instruction (the image placeholder included)."""
        raise NotImplementedError

    def chat_prompt(self, instruction: str) -> str | None:
        """The processor's chat template applied to one user turn (image then text), or None."""
        if getattr(self.processor, "chat_template", None) is None:
            return None
        messages = [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": instruction}],
            }
        ]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True)

    def encode(self, images: Sequence[Image.Image], prompts: Sequence) -> dict:
        """Processor inputs for a batch (left padded), as tensors on the CPU."""
        return dict(
            self.processor(
                images=list(images), text=list(prompts), padding=True, return_tensors="pt"
            )
        )

    # ----- shared machinery ---------------------------------------------------------------
    @property
    def n_hidden_states(self) -> int:
        """Number of hidden states per token (``n_layers + 1``)."""
        cfg = self.model.config
        text = getattr(cfg, "text_config", None) or cfg
        return int(text.num_hidden_layers) + 1

    def resolve_layers(self, layers: Sequence[int] | None) -> tuple[int, ...]:
        """Normalise layer indices (negatives count from the end); None = all."""
        n = self.n_hidden_states
        if layers is None:
            return tuple(range(n))
        out = []
        for layer in layers:
            idx = layer + n if layer < 0 else layer
            if not 0 <= idx < n:
                raise ValueError(f"layer {layer} out of range for a model with {n} hidden states")
            out.append(int(idx))
        return tuple(out)

    def eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            return []
        return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]

    def generation_kwargs(self, options: GenerationOptions, hidden_states: bool = True) -> dict:
        """Keyword arguments of ``model.generate``: greedy decoding with the model's own config.

        Parameters
        ----------
        options : GenerationOptions
        hidden_states : bool
            True (one-pass): return a dict output with the per-step hidden states, and generate
            one token beyond the budget (``generate`` computes no state for its last token, so
            this is how an answer cut at the budget keeps its last token's state; the extra
            token is not part of the answer). False (two-phase, phase 1): the token ids of the
            budget only, everything else identical.
        """
        gc = copy.deepcopy(self.model.generation_config)
        for name in ("temperature", "top_p", "top_k"):
            setattr(gc, name, None)
        gc.do_sample = False
        gc.num_beams = 1
        gc.max_new_tokens = options.max_new_tokens + (1 if hidden_states else 0)
        gc.min_new_tokens = None
        gc.max_length = None
        gc.output_hidden_states = hidden_states
        gc.return_dict_in_generate = hidden_states
        gc.eos_token_id = self.eos_ids() or None
        if gc.pad_token_id is None:
            pad = self.tokenizer.pad_token_id
            gc.pad_token_id = pad if pad is not None else (self.eos_ids() or [0])[0]
        return {"generation_config": gc}

    def effective_generation(self, options: GenerationOptions) -> dict | None:
        """The generation settings this adapter really runs with for ``options``: the model's
        own generation config (repetition penalty, bad words, ...) with the greedy overrides,
        as a JSON-able dict (recorded in each shard's manifest); None for encoders."""
        if not self.generative:
            return None
        gc = self.generation_kwargs(options)["generation_config"]
        out = gc.to_diff_dict() if hasattr(gc, "to_diff_dict") else {}
        return {
            k: v for k, v in out.items() if isinstance(v, (int, float, str, bool, list, type(None)))
        }

    def to_device(self, inputs: dict) -> dict:
        import torch

        out = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            out[key] = value
        return out

    def check_method(self, method: str) -> None:
        """Raise ``ValueError`` for an unknown ``method``, ``NotImplementedError`` for
        ``"two-phase"`` on a generative family without it (encoders accept both: they generate
        nothing, so the method has no effect)."""
        if method not in GENERATION_METHODS:
            raise ValueError(f"method {method!r} is not one of {GENERATION_METHODS}")
        if method == "two-phase" and self.generative and not self.supports_two_phase:
            raise NotImplementedError(
                f"the {self.family!r} adapter does not support method='two-phase' (families "
                f"that do: {', '.join(TWO_PHASE_FAMILIES)}); use method='one-pass'"
            )

    def generate(
        self,
        images: Sequence[Image.Image],
        instructions: Sequence[str],
        options: GenerationOptions = GenerationOptions(),
        method: str = DEFAULT_METHOD,
    ) -> list[Response]:
        """Greedy responses and pooled response embeddings for paired images and instructions.

        Parameters
        ----------
        images : sequence of PIL images, length batch
        instructions : sequence of str, length batch
        options : GenerationOptions
        method : {"one-pass", "two-phase"}
            How the response states are obtained (module docstring); the responses and the
            pooled positions are the same.

        Returns
        -------
        responses : list of Response, length batch

        Raises
        ------
        ValueError
            Mismatched lengths, unknown pooling or method.
        NotImplementedError
            ``method="two-phase"`` on a family without ``supports_two_phase``.
        """
        import torch

        self.check_method(method)
        if len(images) != len(instructions):
            raise ValueError("images and instructions must have the same length")
        if options.pooling not in POOLINGS:
            raise ValueError(f"pooling {options.pooling!r} is not one of {POOLINGS}")
        images = [sanitize_image(im) for im in images]
        layers = self.resolve_layers(options.layers)
        inputs = self.to_device(self.encode(images, [self.prompt(q) for q in instructions]))
        if method == "two-phase":
            return self.generate_two_phase(inputs, layers, options)
        n_prompt = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            out = self.model.generate(**inputs, **self.generation_kwargs(options))
        return self.finish(out, n_prompt, layers, options)

    def finish(
        self, out, n_prompt: int, layers: tuple[int, ...], options: GenerationOptions
    ) -> list[Response]:
        """Turn one-pass ``generate`` output (run with one token beyond the budget, see
        :meth:`generation_kwargs`) into :class:`Response` objects."""
        new_tokens = out.sequences[:, n_prompt:]
        lengths = generated_lengths(new_tokens, self.eos_ids(), options.max_new_tokens)
        counts = pooled_counts(new_tokens, lengths, self.eos_ids())
        embeddings = pool_hidden_states(out.hidden_states, counts, layers, options.pooling)
        return self.responses(new_tokens, lengths, embeddings, layers)

    def responses(
        self, new_tokens, lengths: np.ndarray, embeddings: np.ndarray, layers: tuple[int, ...]
    ) -> list[Response]:
        """Decode and wrap each item.

        Parameters
        ----------
        new_tokens : tensor of shape (batch, n_steps), int
        lengths : array of shape (batch,), int
        embeddings : array of shape (batch, len(layers), d), float32
        layers : tuple of int
        """
        rows = new_tokens.detach().cpu().tolist()
        out = []
        for i, row in enumerate(rows):
            ids = row[: int(lengths[i])]
            text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            out.append(Response(text, len(ids), embeddings[i], layers, tuple(ids)))
        return out

    # ----- two-phase extraction -----------------------------------------------------------
    def generate_two_phase(
        self, inputs: dict, layers: tuple[int, ...], options: GenerationOptions
    ) -> list[Response]:
        """Phase 1 (greedy ids only) then phase 2 (one teacher-forced forward, pooled).

        Parameters
        ----------
        inputs : dict
            :meth:`encode` output on the device: ``input_ids`` and ``attention_mask`` of shape
            (batch, n_prompt), left padded, plus the family's pixel inputs.
        layers : tuple of int
            Resolved hidden-state indices.
        options : GenerationOptions

        Returns
        -------
        responses : list of Response, length batch
        """
        import torch

        self.check_method("two-phase")
        n_prompt = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            out = self.model.generate(**inputs, **self.generation_kwargs(options, False))
            sequences = getattr(out, "sequences", out)
            new_tokens = sequences[:, n_prompt:]
            lengths = generated_lengths(new_tokens, self.eos_ids(), options.max_new_tokens)
            counts = pooled_counts(new_tokens, lengths, self.eos_ids())
            hidden = self.teacher_forced_states(inputs, new_tokens, counts)
            embeddings = pool_sequence_states(hidden, n_prompt, counts, layers, options.pooling)
        return self.responses(new_tokens, lengths, embeddings, layers)

    def teacher_forced_inputs(self, inputs: dict, new_tokens, counts: np.ndarray) -> dict:
        """Forward-pass inputs for prompt + the content tokens of each answer.

        Item ``i`` has ``c_i = counts[i]`` content tokens (its answer without the end-of-sequence
        token, see :func:`~core.models.pooling.pooled_counts`); they are fed back. The sequence is
        the prompt followed by the first ``max(c)`` generated ids; the attention mask keeps the
        prompt's left padding and masks each item's positions from ``c_i`` on (its
        end-of-sequence token and the padding after it; causal attention means they could not
        change the pooled states anyway). Position ids are computed as ``generate`` computes them
        (``model._prepare_position_ids_for_generation``: the mask's cumulative sum, or 3D
        M-RoPE positions for Qwen2-VL when ``mm_token_type_ids`` is given).

        Parameters
        ----------
        inputs : dict
            Prompt inputs (``input_ids`` and ``attention_mask`` of shape (batch, n_prompt)).
        new_tokens : tensor of shape (batch, n_steps), int
        counts : array of shape (batch,), int, each in [0, n_steps]

        Returns
        -------
        full : dict
            ``input_ids`` and ``attention_mask`` of shape (batch, n_prompt + max(c)),
            ``position_ids``, and the other prompt inputs (pixels, grids) unchanged or extended
            by :meth:`extend_inputs`.
        """
        import torch

        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(ids)
        n_fed = int(np.max(counts))
        fed = new_tokens[:, :n_fed].to(ids.device, ids.dtype)
        counts = torch.as_tensor(np.asarray(counts), device=ids.device)
        steps = torch.arange(n_fed, device=ids.device)
        fed_mask = (steps[None, :] < counts[:, None]).to(mask.dtype)  # (batch, n_fed)
        full = dict(inputs)
        full["input_ids"] = torch.cat([ids, fed], 1)
        full["attention_mask"] = torch.cat([mask, fed_mask], 1)
        full = self.extend_inputs(full, n_fed)
        full["position_ids"] = self.position_ids(full)
        return full

    def extend_inputs(self, full: dict, n_fed: int) -> dict:
        """Extend per-token inputs other than ids and mask over ``n_fed`` response tokens, as
        ``generate`` does between steps: ``token_type_ids`` repeat their last value,
        ``mm_token_type_ids`` get 0 (text). Families add their own (IDEFICS v1)."""
        import torch

        if (tt := full.get("token_type_ids")) is not None:
            full["token_type_ids"] = torch.cat([tt, tt[:, -1:].expand(-1, n_fed)], 1)
        if (mm := full.get("mm_token_type_ids")) is not None:
            full["mm_token_type_ids"] = torch.cat([mm, mm.new_zeros((mm.shape[0], n_fed))], 1)
        return full

    def position_ids(self, full: dict):
        """Position ids of the teacher-forced sequence, computed as ``generate`` computes them.

        Returns
        -------
        position_ids : tensor of shape (batch, seq) (or (4, batch, seq) for Qwen2-VL)
        """
        prepare = getattr(self.model, "_prepare_position_ids_for_generation", None)
        kwargs = {k: v for k, v in full.items() if k not in ("input_ids", "position_ids")}
        if prepare is not None:
            return prepare(full["input_ids"], kwargs)
        mask = full["attention_mask"]
        return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)

    def teacher_forced_states(self, inputs: dict, new_tokens, counts: np.ndarray) -> tuple:
        """Phase 2: every hidden state of one forward pass over prompt + fed-back tokens.

        Parameters
        ----------
        inputs : dict
            Prompt inputs on the device.
        new_tokens : tensor of shape (batch, n_steps), int
        counts : array of shape (batch,), int
            Content tokens per item.

        Returns
        -------
        hidden_states : tuple over (n_layers + 1) of tensors of shape
            (batch, n_prompt + max(counts), d)
        """
        import torch

        full = self.teacher_forced_inputs(inputs, new_tokens, counts)
        ids = full["input_ids"]
        n_prompt = inputs["input_ids"].shape[1]
        placeholders = sorted(self.placeholder_token_ids())
        generated = torch.zeros_like(ids, dtype=torch.bool)
        if placeholders:
            generated[:, n_prompt:] = torch.isin(
                ids[:, n_prompt:], torch.tensor(placeholders, device=ids.device)
            )
        if not bool(generated.any()):
            return self.forward_hidden_states(full)
        # A response token that is an image placeholder is, for generate, an ordinary token (the
        # image features enter at step 0 only); a forward pass over the ids would try to fill it
        # with image features. Give the model another id there and restore the placeholder's own
        # embedding on the way out of the embedding layer.
        embed = self.model.get_input_embeddings()
        own = embed(ids[generated])  # (n_generated_placeholders, d)
        substitute = next(
            t
            for t in (self.tokenizer.pad_token_id, 0, 1, 2)
            if t is not None and t not in placeholders
        )
        full["input_ids"] = ids.masked_fill(generated, substitute)

        def restore(module, args, output):
            if output.shape[:2] != ids.shape:
                return None
            output = output.clone()
            output[generated] = own.to(output.dtype)
            return output

        handle = embed.register_forward_hook(restore)
        try:
            return self.forward_hidden_states(full)
        finally:
            handle.remove()

    def placeholder_token_ids(self) -> set[int]:
        """Ids that the model's forward pass fills with image or video features wherever they
        occur in ``input_ids`` (config ``image_token_id`` / ``image_token_index`` /
        ``video_token_id``)."""
        cfg = self.model.config
        ids = set()
        for name in ("image_token_id", "image_token_index", "video_token_id"):
            value = getattr(cfg, name, None)
            if isinstance(value, int):
                ids.add(value)
        return ids

    def forward_hidden_states(self, full: dict) -> tuple:
        """Run the model once on ``full`` (no cache, logits for the last position only) and
        return its decoder's hidden states (embedding output first)."""
        import inspect

        params = inspect.signature(self.model.forward).parameters
        extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        out = self.model(**full, output_hidden_states=True, use_cache=False, **extra)
        return out.hidden_states

    def generate_grid(
        self,
        images: Sequence[Image.Image],
        instructions: Sequence[str],
        options: GenerationOptions = GenerationOptions(),
    ) -> list[list[Response]]:
        """Every image with every instruction: ``out[i][j]`` is image ``i``, instruction ``j``.

        The base implementation batches all pairs; families with
        ``supports_prefix_cache`` compute each image's shared prefix once.
        """
        pairs = [(im, q) for im in images for q in instructions]
        flat = self.generate([p[0] for p in pairs], [p[1] for p in pairs], options)
        k = len(instructions)
        return [flat[i * k : (i + 1) * k] for i in range(len(images))]

    def prompt_length(self, instruction: str) -> int:
        """Approximate token length of an instruction's prompt (for sorting batches)."""
        return len(self.tokenizer(instruction, add_special_tokens=False)["input_ids"])
