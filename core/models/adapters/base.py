"""The adapter contract and the shared batched greedy generation with response pooling."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from core.data.images import sanitize_image
from core.models.pooling import POOLINGS, generated_lengths, pool_hidden_states
from core.models.registry import ModelSpec


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
        Tokens generated, end-of-sequence included; the embedding averages ``n - 1`` states.
    embeddings : array of shape (n_selected_layers, d), float32
        Pooled response states per selected layer.
    layers : tuple of int
        The hidden-state indices of the rows of ``embeddings``.
    """

    text: str
    n_generated_tokens: int
    embeddings: np.ndarray
    layers: tuple[int, ...]


class Adapter:
    """Base of every model family.

    Subclasses set ``family`` and implement :meth:`load` and, for generative models,
    :meth:`prompt` and :meth:`encode`. ``generate`` is shared.
    """

    family = "base"
    generative = True
    #: Whether :meth:`generate_grid` reuses one image prefix KV cache across instructions.
    supports_prefix_cache = False

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

    def generation_kwargs(self, options: GenerationOptions) -> dict:
        gc = copy.deepcopy(self.model.generation_config)
        for name in ("temperature", "top_p", "top_k"):
            setattr(gc, name, None)
        gc.do_sample = False
        gc.num_beams = 1
        gc.max_new_tokens = options.max_new_tokens
        gc.min_new_tokens = None
        gc.max_length = None
        gc.output_hidden_states = True
        gc.return_dict_in_generate = True
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
        return {k: v for k, v in out.items() if isinstance(v, (int, float, str, bool, list, type(None)))}

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

    def generate(
        self,
        images: Sequence[Image.Image],
        instructions: Sequence[str],
        options: GenerationOptions = GenerationOptions(),
    ) -> list[Response]:
        """Greedy responses and pooled response embeddings for paired images and instructions.

        Parameters
        ----------
        images : sequence of PIL images, length batch
        instructions : sequence of str, length batch
        options : GenerationOptions

        Returns
        -------
        responses : list of Response, length batch
        """
        import torch

        if len(images) != len(instructions):
            raise ValueError("images and instructions must have the same length")
        if options.pooling not in POOLINGS:
            raise ValueError(f"pooling {options.pooling!r} is not one of {POOLINGS}")
        images = [sanitize_image(im) for im in images]
        layers = self.resolve_layers(options.layers)
        inputs = self.to_device(self.encode(images, [self.prompt(q) for q in instructions]))
        n_prompt = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            out = self.model.generate(**inputs, **self.generation_kwargs(options))
        return self.finish(out, n_prompt, layers, options.pooling)

    def finish(self, out, n_prompt: int, layers: tuple[int, ...], pooling: str) -> list[Response]:
        """Turn ``generate`` output into :class:`Response` objects."""
        new_tokens = out.sequences[:, n_prompt:]
        lengths = generated_lengths(new_tokens, self.eos_ids())
        embeddings = pool_hidden_states(out.hidden_states, lengths, layers, pooling)
        texts = [
            self.tokenizer.decode(new_tokens[i, : lengths[i]], skip_special_tokens=True).strip()
            for i in range(new_tokens.shape[0])
        ]
        return [
            Response(texts[i], int(lengths[i]), embeddings[i], layers) for i in range(len(texts))
        ]

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
