"""ViT baseline: per-layer CLS state or mean patch state (no instruction, no generation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from core.data.images import sanitize_image
from core.models.adapters.base import DEFAULT_METHOD, Adapter, GenerationOptions, Response
from core.models.registry import ModelSpec

VIT_POOLINGS = ("cls", "mean_patch")


class VitAdapter(Adapter):
    family = "vit"
    generative = False

    @classmethod
    def model_class(cls):
        from transformers import AutoModel

        return AutoModel

    @classmethod
    def load_processor(cls, spec: ModelSpec):
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(spec.source, revision=spec.revision)

    @property
    def n_hidden_states(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def encode_images(
        self, images: Sequence[Image.Image], layers=None, pooling: str = "cls"
    ) -> np.ndarray:
        """Per-layer image features.

        Returns
        -------
        features : array of shape (n_images, len(layers), d), float32
        """
        import torch

        if pooling not in VIT_POOLINGS:
            raise ValueError(f"ViT pooling must be one of {VIT_POOLINGS}, got {pooling!r}")
        layers = self.resolve_layers(layers)
        with torch.inference_mode():
            hidden = self._hidden_states([sanitize_image(im) for im in images])
        feats = []
        for layer in layers:
            h = hidden[layer].float()
            feats.append(h[:, 0] if pooling == "cls" else h[:, 1:].mean(1))
        return torch.stack(feats, 1).cpu().numpy().astype(np.float32)

    def _hidden_states(self, images: Sequence[Image.Image]):
        """All hidden states of the image encoder, each (n_images, n_tokens, d), CLS first."""
        pix = self.to_device(dict(self.processor(images=list(images), return_tensors="pt")))
        return self.model(pixel_values=pix["pixel_values"], output_hidden_states=True).hidden_states

    def generate(
        self,
        images,
        instructions,
        options: GenerationOptions = GenerationOptions(),
        method: str = DEFAULT_METHOD,
    ):
        """Encoder features wrapped as responses (text empty, 0 tokens); instructions ignored.
        ``options.pooling`` "mean" is read as "cls".
        ``method`` is checked but has no effect (an encoder generates nothing)."""
        self.check_method(method)
        pooling = "cls" if options.pooling in ("mean", "last") else options.pooling
        layers = self.resolve_layers(options.layers)
        feats = self.encode_images(images, layers, pooling)
        return [Response("", 0, f, layers) for f in feats]
