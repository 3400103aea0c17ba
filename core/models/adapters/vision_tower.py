"""A VLM's own vision tower as the vision-only baseline (the ViT role): ``"vision:<model>"``.

The full checkpoint is loaded (``"random:vision:<model>"`` gives its random-init twin) and only
its vision encoder runs: per-layer pooled states, no instruction, no generation. For the demo
model this is the vision-only baseline that saw the same training as the MLLM.

Towers differ in what they take and whether they have a CLS token, so each known tower class has
an explicit :class:`TowerType` in :data:`TOWER_TYPES` (an unknown class is an error, never a
guess):

* ``"pixels"`` (CLIP-style: LLaVA's CLIP, InstructBLIP's BLIP, IDEFICS v1's encoder): images
  ``(n_images, C, H, W)``, a CLS token first; pooled by the CLS state.
* ``"tiles"`` (SigLIP-style: Idefics2, Idefics3, SmolVLM): no CLS token; ``pixel_values`` of
  ``(n_images, n_tiles, C, H, W)`` (or 4-D) with a ``pixel_attention_mask``; pooled by the mean
  over every valid patch token of every real tile of an image (padded tiles and padded patches
  are left out, as the VLM itself leaves them out).
* ``"patches"`` (Qwen2-VL, Qwen2.5-VL): flattened patches of all images in one sequence plus
  ``image_grid_thw``; pooled by the mean over each image's patch tokens.

Hidden states are read with forward hooks on the tower's transformer layers (the input of the
first layer, then every layer's output, as transformers defines ``hidden_states``), so every
tower reports ``n_layers + 1`` states whether or not it supports ``output_hidden_states``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.data.images import sanitize_image
from core.models.adapters.base import DEFAULT_METHOD, GenerationOptions, Response
from core.models.adapters.vit import VIT_POOLINGS, VitAdapter
from core.models.registry import ModelError, ModelSpec

#: Attribute paths, from the loaded VLM, where its vision tower may live (first match wins).
TOWER_PATHS = (
    "vision_tower",
    "model.vision_tower",
    "vision_model",
    "model.vision_model",
    "visual",
    "model.visual",
)


@dataclass(frozen=True)
class TowerType:
    """How one kind of vision tower is fed and pooled.

    Parameters
    ----------
    inputs : {"pixels", "tiles", "patches"}
        ``"pixels"``: ``pixel_values`` (n_images, C, H, W), CLS token first. ``"tiles"``:
        ``pixel_values`` (n_images, C, H, W) or (n_images, n_tiles, C, H, W), optional
        ``pixel_attention_mask`` (n_images[, n_tiles], H, W), no CLS token. ``"patches"``:
        ``pixel_values`` (n_patches_total, C * T * P * P) and ``image_grid_thw`` (n_images, 3).
    pooling : {"cls", "mean_patch"}
        The tower's pooling rule (``"cls"`` only where the tower has a CLS token).
    layers : tuple of str
        Dotted paths, from the tower, to its list of transformer layers (the first present is
        used: wrappers such as ``CLIPVisionModel`` nest it under ``vision_model`` in older
        transformers versions).
    """

    inputs: str
    pooling: str
    layers: tuple[str, ...] = ("encoder.layers", "vision_model.encoder.layers")


_CLIP = TowerType("pixels", "cls")
_SIGLIP = TowerType("tiles", "mean_patch")
_QWEN = TowerType("patches", "mean_patch", ("blocks",))

#: Tower class name -> how it is fed and pooled. Extend here for a new tower.
TOWER_TYPES: dict[str, TowerType] = {
    "CLIPVisionModel": _CLIP,
    "CLIPVisionTransformer": _CLIP,
    "InstructBlipVisionModel": _CLIP,
    "Blip2VisionModel": _CLIP,
    "IdeficsVisionTransformer": _CLIP,
    "SiglipVisionModel": _SIGLIP,
    "SiglipVisionTransformer": _SIGLIP,
    "Idefics2VisionTransformer": _SIGLIP,
    "Idefics3VisionTransformer": _SIGLIP,
    "SmolVLMVisionTransformer": _SIGLIP,
    "Qwen2VisionTransformerPretrainedModel": _QWEN,
    "Qwen2_5_VisionTransformerPretrainedModel": _QWEN,
}


def _attribute(obj, path: str):
    """``obj.a.b.c`` for ``path`` ``"a.b.c"`` (AttributeError if any part is missing)."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _first_attribute(obj, paths: Sequence[str], what: str, name: str):
    """The first of ``paths`` present on ``obj``; ModelError naming ``what`` if none is."""
    for path in paths:
        try:
            return _attribute(obj, path)
        except AttributeError:
            continue
    raise ModelError(
        f"{name}: no {what} found on {type(obj).__name__} (looked for {', '.join(paths)})"
    )


def find_tower(model, name: str = "model"):
    """The vision tower module of a loaded VLM (the first of :data:`TOWER_PATHS` present).

    Raises
    ------
    ModelError
        No attribute of :data:`TOWER_PATHS` exists on the model.
    """
    return _first_attribute(model, TOWER_PATHS, "vision tower", name)


def tower_type(tower, name: str = "model") -> TowerType:
    """The :class:`TowerType` of a tower module, by its class name.

    Raises
    ------
    ModelError
        The tower's class has no entry in :data:`TOWER_TYPES`.
    """
    cls = type(tower).__name__
    if cls not in TOWER_TYPES:
        raise ModelError(
            f"{name}: no pooling rule for vision tower {cls}; known towers: "
            f"{', '.join(sorted(TOWER_TYPES))}. Add it to TOWER_TYPES with its inputs "
            "('pixels', 'tiles' or 'patches') and pooling ('cls' only if it has a CLS token)."
        )
    return TOWER_TYPES[cls]


def capture_hidden_states(layers, run: Callable[[], object]) -> list:
    """Run ``run()`` and return the hidden states around the tower's transformer layers.

    Parameters
    ----------
    layers : sequence of torch modules
        The tower's transformer layers, in order.
    run : callable
        Runs the tower once.

    Returns
    -------
    states : list of tensors, length ``len(layers) + 1``
        The input of the first layer, then each layer's output; each (n, n_tokens, d) or
        (n_tokens, d), as the tower lays out its sequence.
    """
    states: list = []

    def first_input(module, args, kwargs):
        states.append(args[0] if args else kwargs["hidden_states"])

    def output(module, args, out):
        states.append(out[0] if isinstance(out, tuple) else out)

    handles = [layers[0].register_forward_pre_hook(first_input, with_kwargs=True)]
    handles += [layer.register_forward_hook(output) for layer in layers]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    if len(states) != len(layers) + 1:
        raise RuntimeError(f"captured {len(states)} hidden states, expected {len(layers) + 1}")
    return states


def segment_mean(values, owner, n_groups: int):
    """Mean of the rows of ``values`` per group.

    Parameters
    ----------
    values : tensor of shape (n_rows, d)
    owner : long tensor of shape (n_rows,)
        Group index of each row, in ``[0, n_groups)``; every group must own a row.
    n_groups : int

    Returns
    -------
    means : float32 tensor of shape (n_groups, d)
    """
    import torch

    values = values.float()
    sums = torch.zeros(n_groups, values.shape[1], device=values.device)
    sums.index_add_(0, owner, values)
    counts = torch.bincount(owner, minlength=n_groups).to(values.device)
    if (counts == 0).any():
        raise ValueError(f"groups {torch.nonzero(counts == 0).flatten().tolist()} own no rows")
    return sums / counts[:, None]


def tile_inputs(pixel_values, pixel_attention_mask, patch_size: int):
    """Flatten SigLIP-style inputs into real tiles, their valid patches and their images.

    Padded tiles are those whose ``pixel_attention_mask`` is all zero (without a mask: whose
    pixels are all exactly 0, the rule of Idefics2/3); a patch is valid if any of its pixels is.

    Parameters
    ----------
    pixel_values : tensor of shape (n_images, C, H, W) or (n_images, n_tiles, C, H, W)
    pixel_attention_mask : tensor of shape (n_images[, n_tiles], H, W), or None
    patch_size : int

    Returns
    -------
    tiles : tensor of shape (n_real_tiles, C, H, W)
    patch_mask : bool tensor of shape (n_real_tiles, H // patch_size, W // patch_size)
    owner : long tensor of shape (n_real_tiles,)
        The image index of each real tile.
    """
    import torch

    if pixel_values.ndim == 4:
        pixel_values = pixel_values[:, None]
        if pixel_attention_mask is not None:
            pixel_attention_mask = pixel_attention_mask[:, None]
    if pixel_values.ndim != 5:
        raise ValueError(f"tiled pixel_values must be 4-D or 5-D, got {tuple(pixel_values.shape)}")
    n_images, n_tiles, _, height, width = pixel_values.shape
    flat = pixel_values.flatten(0, 1)
    if pixel_attention_mask is None:
        pixel_mask = torch.ones(flat.shape[0], height, width, dtype=torch.bool, device=flat.device)
        real = (flat != 0).flatten(1).any(1)  # an all-zero tile is padding ...
        if n_tiles == 1:
            real = torch.ones_like(real)  # ... but a lone tile cannot be
    else:
        pixel_mask = pixel_attention_mask.reshape(flat.shape[0], height, width).bool()
        real = pixel_mask.flatten(1).any(1)
    owner = torch.arange(n_images, device=flat.device).repeat_interleave(n_tiles)
    patches = pixel_mask.unfold(1, patch_size, patch_size).unfold(2, patch_size, patch_size)
    patch_mask = patches.flatten(3).any(-1)
    missing = sorted(set(range(n_images)) - set(owner[real].tolist()))
    if missing:
        raise ValueError(f"images {missing} have no real tile (all padding)")
    return flat[real], patch_mask[real], owner[real]


class VisionTowerAdapter(VitAdapter):
    """The vision tower of a VLM; ``tower_pooling`` is its pooling rule (see the module notes)."""

    family = "vision_tower"
    generative = False

    def __init__(self, spec: ModelSpec, model, processor, device, dtype) -> None:
        super().__init__(spec, model, processor, device, dtype)
        self.tower = find_tower(model, spec.name)
        self.tower_type = tower_type(self.tower, spec.name)
        self.tower_layers = _first_attribute(
            self.tower, self.tower_type.layers, "transformer layers", spec.name
        )

    @classmethod
    def model_class(cls):
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    @classmethod
    def load_processor(cls, spec: ModelSpec):
        """The image processor only (a VLM's full processor may need extra dependencies)."""
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(spec.source, revision=spec.revision)

    @property
    def tower_pooling(self) -> str:
        """The tower's pooling rule: ``"cls"`` (it has a CLS token) or ``"mean_patch"``."""
        return self.tower_type.pooling

    @property
    def n_hidden_states(self) -> int:
        return len(self.tower_layers) + 1

    def encode_images(
        self, images: Sequence[Image.Image], layers=None, pooling: str | None = None
    ) -> np.ndarray:
        """Per-layer pooled image features.

        Parameters
        ----------
        images : sequence of PIL images, length n_images
        layers : sequence of int or None
            Hidden-state indices (0 = the first layer's input); None = all.
        pooling : {"cls", "mean_patch"} or None
            None = :attr:`tower_pooling`. ``"cls"`` needs a tower with a CLS token;
            ``"mean_patch"`` on a CLS tower averages the tokens after the CLS.

        Returns
        -------
        features : array of shape (n_images, len(layers), d), float32
        """
        import torch

        pooling = self.tower_pooling if pooling is None else pooling
        if pooling not in VIT_POOLINGS:
            raise ValueError(f"tower pooling must be one of {VIT_POOLINGS}, got {pooling!r}")
        if pooling == "cls" and self.tower_type.inputs != "pixels":
            raise ValueError(
                f"{type(self.tower).__name__} has no CLS token: use pooling 'mean_patch' or None"
            )
        layers = self.resolve_layers(layers)
        images = [sanitize_image(im) for im in images]
        with torch.inference_mode():
            pooled = self._pooled(images, layers, pooling)
        return pooled.cpu().numpy().astype(np.float32)

    def generate(
        self,
        images,
        instructions,
        options: GenerationOptions = GenerationOptions(),
        method: str = DEFAULT_METHOD,
    ):
        """Tower features wrapped as responses (text empty, 0 tokens); instructions ignored.
        ``options.pooling`` "mean" or "last" is read as :attr:`tower_pooling`.
        ``method`` is checked but has no effect (an encoder generates nothing)."""
        self.check_method(method)
        pooling = None if options.pooling in ("mean", "last") else options.pooling
        layers = self.resolve_layers(options.layers)
        feats = self.encode_images(images, layers, pooling)
        return [Response("", 0, f, layers) for f in feats]

    # ----- per tower type -----------------------------------------------------------------
    def _processed(self, images: list[Image.Image]) -> dict:
        """Image-processor tensors on the device (floating ones in the model's dtype).

        Processors that tile images (Idefics2/3, SmolVLM: they have ``do_image_splitting``)
        take one list of images per item; the others a flat list.
        """
        import torch

        tiles = hasattr(self.processor, "do_image_splitting")
        out = self.processor(
            images=[[im] for im in images] if tiles else images, return_tensors="pt"
        )
        if isinstance(out, torch.Tensor):  # IDEFICS v1's image processor returns the tensor
            out = {"pixel_values": out}
        return self.to_device(dict(out))

    def _pooled(self, images: list[Image.Image], layers: tuple[int, ...], pooling: str):
        """Pooled states, a float32 tensor of shape (n_images, len(layers), d)."""
        import torch

        run = {
            "pixels": self._pool_pixels,
            "tiles": self._pool_tiles,
            "patches": self._pool_patches,
        }
        feats = run[self.tower_type.inputs](images, pooling)
        return torch.stack([feats[layer] for layer in layers], 1)

    def _pool_pixels(self, images: list[Image.Image], pooling: str) -> list:
        """CLS state (or mean of the tokens after it) per hidden state, each (n_images, d)."""
        pixel_values = self._processed(images)["pixel_values"]
        if pixel_values.ndim != 4:
            raise ValueError(
                f"{type(self.tower).__name__} takes (n, C, H, W) pixel_values, got "
                f"{tuple(pixel_values.shape)}"
            )
        states = capture_hidden_states(
            self.tower_layers, lambda: self.tower(pixel_values=pixel_values)
        )
        if pooling == "cls":
            return [h[:, 0].float() for h in states]
        return [h[:, 1:].float().mean(1) for h in states]

    def _pool_tiles(self, images: list[Image.Image], pooling: str) -> list:
        """Mean over the valid patches of the real tiles per hidden state, each (n_images, d).

        Tiles of equal size share one tower call; each tile's valid patch states are pooled
        into its image's mean (``pooling`` is necessarily "mean_patch").
        """
        import torch

        tiles, masks, owners = self._image_tiles(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for k, tile in enumerate(tiles):
            groups.setdefault(tuple(tile.shape), []).append(k)
        per_state: list[list] = [[] for _ in range(self.n_hidden_states)]
        token_owner = []
        for members in groups.values():
            mask = torch.stack([masks[k] for k in members])
            states = self._tile_states(torch.stack([tiles[k] for k in members]), mask)
            valid = mask.flatten(1)
            for acc, h in zip(per_state, states, strict=True):
                acc.append(h[valid])
            owner = torch.tensor([owners[k] for k in members], device=valid.device)
            token_owner.append(owner[:, None].expand_as(valid)[valid])
        owner = torch.cat(token_owner)
        return [segment_mean(torch.cat(acc), owner, len(images)) for acc in per_state]

    def _image_tiles(self, images: list[Image.Image]) -> tuple[list, list, list[int]]:
        """The real tiles (each (C, H, W)), their patch masks (each (h, w)) and image indices.

        Each image is processed on its own: padding to a batch's largest image would change an
        image's patch grid (Idefics2 keeps aspect ratios), so features would depend on the batch.
        """
        patch_size = int(self.tower.config.patch_size)
        tiles, masks, owners = [], [], []
        for i, image in enumerate(images):
            pix = self._processed([image])
            t, m, _ = tile_inputs(pix["pixel_values"], pix.get("pixel_attention_mask"), patch_size)
            tiles += list(t)
            masks += list(m)
            owners += [i] * len(t)
        return tiles, masks, owners

    def _tile_states(self, tiles, patch_mask) -> list:
        """The tower's hidden states over tiles (n, C, H, W) with a patch mask (n, h, w)."""
        kwargs = {"pixel_values": tiles}
        if "patch_attention_mask" in inspect.signature(self.tower.forward).parameters:
            kwargs["patch_attention_mask"] = patch_mask
        elif not bool(patch_mask.all()):
            raise ValueError(f"{type(self.tower).__name__} cannot mask padded patches")
        return capture_hidden_states(self.tower_layers, lambda: self.tower(**kwargs))

    def _pool_patches(self, images: list[Image.Image], pooling: str) -> list:
        """Mean over each image's patch tokens per hidden state, each (n_images, d)."""
        import torch

        pix = self._processed(images)
        grid = pix["image_grid_thw"]
        states = capture_hidden_states(
            self.tower_layers, lambda: self.tower(pix["pixel_values"], grid_thw=grid)
        )
        owner = torch.arange(len(images), device=grid.device).repeat_interleave(grid.prod(-1))
        return [segment_mean(h.reshape(-1, h.shape[-1]), owner, len(images)) for h in states]
