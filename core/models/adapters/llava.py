"""LLaVA-1.5 (and any LLaVA-format checkpoint, e.g. the demo model): chat prompt, prefix KV reuse.

Prompt: the processor's chat template when it has one, else LLaVA-1.5's documented format
``"USER: <image>\\n{instruction} ASSISTANT:"`` (:func:`llava_prompt`; a model trained for this
project should be trained with exactly that string).

Prefix reuse: the image comes first, so every instruction for an image shares the tokens up to the
instruction (system text, image tokens). :meth:`LlavaAdapter.generate_grid` runs that prefix once per
image (vision tower and decoder), repeats its KV cache for the image's instructions, and generates
from the per-instruction suffixes (padded between prefix and suffix; position ids follow the mask).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.data.images import sanitize_image
from core.models.adapters.base import Adapter, GenerationOptions, Response


def llava_prompt(instruction: str) -> str:
    """LLaVA-1.5's prompt for one image and one instruction."""
    return f"USER: <image>\n{instruction} ASSISTANT:"


class LlavaAdapter(Adapter):
    family = "llava"
    supports_prefix_cache = True
    supports_two_phase = True

    def prompt(self, instruction: str) -> str:
        return self.chat_prompt(instruction) or llava_prompt(instruction)

    def _token_rows(self, image: Image.Image, prompts: Sequence[str]) -> list[list[int]]:
        enc = self.encode([image] * len(prompts), prompts)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        return [ids[i][mask[i].bool()].tolist() for i in range(len(prompts))]

    def generate_grid(
        self,
        images: Sequence[Image.Image],
        instructions: Sequence[str],
        options: GenerationOptions = GenerationOptions(),
    ) -> list[list[Response]]:
        """Every image with every instruction, computing each image's prefix once.

        Always one-pass (``generate(..., method="two-phase")`` is per pair, without prefix reuse).

        Returns
        -------
        responses : list (n_images) of list (n_instructions) of Response
        """
        import torch

        if len(instructions) < 2:
            return super().generate_grid(images, instructions, options)
        images = [sanitize_image(im) for im in images]
        layers = self.resolve_layers(options.layers)
        prompts = [self.prompt(q) for q in instructions]
        rows = self._token_rows(images[0], prompts)
        n_prefix = 0
        while all(len(r) > n_prefix + 1 for r in rows) and len({r[n_prefix] for r in rows}) == 1:
            n_prefix += 1
        image_token = self.model.config.image_token_id
        if n_prefix == 0 or any(image_token in r[n_prefix:] for r in rows):
            return super().generate_grid(images, instructions, options)
        prefix_inputs = self.to_device(self.encode(images, [prompts[0]] * len(images)))
        prefix_ids = prefix_inputs["input_ids"][:, :n_prefix]
        suffixes = [r[n_prefix:] for r in rows]
        width = max(len(s) for s in suffixes)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        k = len(instructions)
        with torch.inference_mode():
            prefix = self.model(
                input_ids=prefix_ids,
                pixel_values=prefix_inputs["pixel_values"],
                attention_mask=torch.ones_like(prefix_ids),
                use_cache=True,
            )
            cache = prefix.past_key_values
            cache.batch_repeat_interleave(k)
            suffix_ids = torch.full((k, width), pad, dtype=prefix_ids.dtype)
            suffix_mask = torch.zeros((k, width), dtype=torch.long)
            for j, s in enumerate(suffixes):
                suffix_ids[j, width - len(s) :] = torch.tensor(s)
                suffix_mask[j, width - len(s) :] = 1
            n = len(images)
            input_ids = torch.cat(
                [prefix_ids.repeat_interleave(k, 0), suffix_ids.repeat(n, 1).to(self.device)], 1
            )
            mask = torch.cat(
                [torch.ones_like(prefix_ids).repeat_interleave(k, 0), suffix_mask.repeat(n, 1)],
                1,
            ).to(self.device)
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                cache=cache,
                **self.generation_kwargs(options),
            )
        flat = self.finish(out, input_ids.shape[1], layers, options)
        return [flat[i * k : (i + 1) * k] for i in range(n)]
