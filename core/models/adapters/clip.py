"""CLIP baselines: the projected image embedding, and the projected text embedding of any text
(e.g. another model's response, or a caption)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from core.data.images import sanitize_image
from core.models.adapters.base import DEFAULT_METHOD, Adapter, GenerationOptions, Response


class ClipAdapter(Adapter):
    family = "clip"
    generative = False

    @classmethod
    def model_class(cls):
        from transformers import CLIPModel

        return CLIPModel

    @property
    def n_hidden_states(self) -> int:
        return 1

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Projected image embeddings.

        Returns
        -------
        embeddings : array of shape (n_images, projection_dim), float32
        """
        import torch

        pix = self.processor(images=[sanitize_image(im) for im in images], return_tensors="pt")
        pix = self.to_device(dict(pix))
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pix["pixel_values"])
        out = getattr(out, "pooler_output", out)
        return out.float().cpu().numpy().astype(np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Projected text embeddings (texts truncated to CLIP's context).

        Returns
        -------
        embeddings : array of shape (n_texts, projection_dim), float32
        """
        import torch

        max_len = self.model.config.text_config.max_position_embeddings
        enc = self.processor.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        enc = self.to_device(dict(enc))
        with torch.inference_mode():
            out = self.model.get_text_features(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            )
        out = getattr(out, "pooler_output", out)
        return out.float().cpu().numpy().astype(np.float32)

    def generate(
        self,
        images,
        instructions,
        options: GenerationOptions = GenerationOptions(),
        method: str = DEFAULT_METHOD,
    ):
        """Image embeddings wrapped as responses (one "layer", index 0); instructions ignored.
        ``method`` is checked but has no effect (an encoder generates nothing)."""
        self.check_method(method)
        feats = self.encode_images(images)
        return [Response("", 0, f[None, :], (0,)) for f in feats]
