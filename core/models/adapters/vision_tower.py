"""A VLM's own vision tower as the vision-only baseline (the ViT role): ``"vision:<model>"``.

The full checkpoint is loaded (``"random:vision:<model>"`` gives its random-init twin) and only
its vision encoder runs: per-layer CLS state or mean patch state, no instruction, no generation.
For the demo model this is the vision-only baseline that saw the same training as the MLLM.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.models.adapters.vit import VitAdapter


class VisionTowerAdapter(VitAdapter):
    family = "vision_tower"
    generative = False

    @classmethod
    def model_class(cls):
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    @classmethod
    def load_processor(cls, spec):
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(spec.source, revision=spec.revision)

    @property
    def tower(self):
        model = self.model
        for path in ("vision_tower", "model.vision_tower", "vision_model", "model.vision_model"):
            obj = model
            try:
                for part in path.split("."):
                    obj = getattr(obj, part)
                return obj
            except AttributeError:
                continue
        raise AttributeError(f"{self.spec.name}: no vision tower found on {type(model).__name__}")

    @property
    def n_hidden_states(self) -> int:
        return int(self.model.config.vision_config.num_hidden_layers) + 1

    def _hidden_states(self, images: Sequence[Image.Image]):
        image_processor = getattr(self.processor, "image_processor", self.processor)
        pix = image_processor(images=list(images), return_tensors="pt")
        pixel_values = pix["pixel_values"].to(self.device, self.dtype)
        return self.tower(pixel_values=pixel_values, output_hidden_states=True).hidden_states
