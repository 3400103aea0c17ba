"""Architecture of the demo model: a small LLaVA (CLIP-style vision tower + Llama-style decoder).

:class:`Recipe` holds every hyper-parameter (architecture and training); :func:`build_model` and
:func:`build_processor` turn it into a ``LlavaForConditionalGeneration`` and a ``LlavaProcessor``
that save with ``save_pretrained`` and reload with ``from_pretrained`` / ``AutoProcessor`` offline.

Image tokens: the image (``image_size`` pixels) is cut into ``image_size / patch_size`` patches per
side. With the default 64 px and patch 16 each patch is exactly one cell of the demo world's 4 x 4
grid, so each of the 16 image tokens sees one cell (objects never straddle cells).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

#: The LLaVA-1.5 prompt; the registry's LLaVA adapter uses the same string when no chat template.
PROMPT_TEMPLATE = "USER: <image>\n{instruction} ASSISTANT:"


@dataclass(frozen=True)
class Recipe:
    """Every hyper-parameter of the demo model and its training (defaults = the committed model).

    Architecture
    ------------
    image_size, patch_size : int
        Model input side (pixels) and ViT patch side.
    vision_hidden, vision_layers, vision_heads, vision_intermediate : int
        CLIP-style vision tower.
    text_hidden, text_layers, text_heads, text_intermediate : int
        Llama-style decoder.

    Training
    --------
    n_train_scenes : int
        Scenes drawn from the ``"train"`` stream (never the stimuli).
    render_size : int
        Side at which training scenes are drawn before the processor resizes them.
    steps, batch_images : int
        Optimizer steps and images per step.
    turns_per_image, turn_weights, pool_weight, key_weight_overrides
        Each image in a step carries ``turns_per_image`` answer keys, drawn without replacement
        with probabilities proportional to ``turn_weights`` for the paper's 10 (IU1 ... VR) and
        ``pool_weight`` for each other key of the pool (or its weight in
        ``key_weight_overrides``); each key is asked by one of its prompts.
    vision_steps, vision_batch : int
        A first phase training only the vision tower on the auxiliary targets.
    lr, min_lr_ratio, warmup_steps, weight_decay, grad_clip : float
        AdamW with linear warm-up and cosine decay to ``lr * min_lr_ratio``.
    aux_weight : float
        Weight of the dense auxiliary loss on the vision tower (per-cell classes).
    largest_weight : float
        Weight, inside the auxiliary loss, of the cross-entropy of the largest thing's cell
        (where the largest thing stands: what the spatial pool tasks ask); 0 turns it off.
    polish_steps, polish_lr, polish_warmup : int, float, int
        A last phase on the answer loss alone (fresh AdamW, its own warm-up and cosine decay
        to ``polish_lr * min_lr_ratio``, its own data order), 0 steps turns it off.
    polish_scenes, polish_render_size : int
        Fresh scenes of the ``"train"`` stream (after the first ``n_train_scenes``) that join
        the polish phase's data, drawn at ``polish_render_size`` pixels (the stimuli's 256: a
        pizza drawn at 256 and shrunk to 64 px is not the one drawn at 128); the earlier phases
        never see them.
    polish_key_weights : tuple of (answer key, factor)
        Factors on :func:`~core.models.demo_vlm.train.key_weights` in the polish phase: more
        turns for the long exact lists (every kind with its count) that the main phase leaves
        short of 98%.
    seed : int
        Seed of everything (data order, initialisation).
    world_seed : int
        Seed of the demo world (as in ``python -m core demo build --seed``).
    """

    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 512
    text_hidden: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate: int = 384
    n_train_scenes: int = 12000
    render_size: int = 128
    steps: int = 2000
    batch_images: int = 24
    turns_per_image: int = 6
    #: Relative sampling weight of each instruction's turn (order of INSTRUCTION_IDS).
    turn_weights: tuple = (1.0, 1.5, 1.5, 2.0, 1.2, 2.0, 1.2, 0.3, 0.5, 2.0)
    #: Relative sampling weight of each answer key of the wider pool.
    pool_weight: float = 0.3
    #: Per-key overrides of ``pool_weight``: ``((answer key, weight), ...)``: more turns for
    #: the spatial keys (where the largest / closest thing is), which a 4 x 4 grid of patches
    #: makes the hardest to learn.
    key_weight_overrides: tuple = (
        ("largest", 3.0),
        ("largest_quarter", 3.0),
        ("largest_side", 3.0),
        ("largest_half", 2.0),
        ("closest", 2.0),
        ("left_right", 1.5),
        ("most_quarter", 1.0),
    )
    vision_steps: int = 1200
    vision_batch: int = 64
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    aux_weight: float = 1.0
    largest_weight: float = 1.0
    polish_steps: int = 2400
    polish_lr: float = 5e-4
    polish_warmup: int = 50
    polish_scenes: int = 12000
    polish_render_size: int = 256
    polish_key_weights: tuple = (("VQ1", 3.0), ("VQ3", 4.0), ("IC", 2.0), ("VR", 2.0))
    seed: int = 0
    world_seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        names = {f.name for f in fields(cls)}
        d = {k: (_tuples(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**d)

    @property
    def grid(self) -> int:
        """Image tokens per side."""
        return self.image_size // self.patch_size

    @property
    def n_image_tokens(self) -> int:
        return self.grid**2


def _tuples(v: list) -> tuple:
    """A JSON list (possibly of lists) back as the recipe's tuple (of tuples)."""
    return tuple(tuple(x) if isinstance(x, list) else x for x in v)


def build_config(recipe: Recipe, tokenizer):
    """The ``LlavaConfig`` of ``recipe`` for ``tokenizer``'s vocabulary."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=recipe.vision_hidden,
        intermediate_size=recipe.vision_intermediate,
        num_hidden_layers=recipe.vision_layers,
        num_attention_heads=recipe.vision_heads,
        image_size=recipe.image_size,
        patch_size=recipe.patch_size,
        projection_dim=recipe.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.text_hidden,
        intermediate_size=recipe.text_intermediate,
        num_hidden_layers=recipe.text_layers,
        num_attention_heads=recipe.text_heads,
        num_key_value_heads=recipe.text_heads,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids("<s>"),
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )
    config.pad_token_id = tokenizer.pad_token_id
    return config


def build_model(recipe: Recipe, tokenizer, seed: int | None = None):
    """A randomly initialised ``LlavaForConditionalGeneration`` (seeded: same seed, same weights)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(recipe.seed if seed is None else seed)
    config = build_config(recipe, tokenizer)
    model = LlavaForConditionalGeneration(config)
    model.config.use_cache = True
    gc = model.generation_config
    gc.eos_token_id = tokenizer.eos_token_id
    gc.pad_token_id = tokenizer.pad_token_id
    gc.bos_token_id = None
    gc.do_sample = False
    gc.max_new_tokens = 64
    return model.float()


def build_processor(recipe: Recipe, tokenizer):
    """The ``LlavaProcessor``: CLIP image processor at ``image_size`` plus the tokenizer."""
    from transformers import LlavaProcessor

    try:  # transformers >= 5: the PIL-backed processor (no torchvision needed)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import CLIPImageProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": recipe.image_size},
        crop_size={"height": recipe.image_size, "width": recipe.image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=recipe.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token="<image>",
    )


def prompt(instruction: str) -> str:
    """The prompt for one image and one instruction (LLaVA-1.5 format)."""
    return PROMPT_TEMPLATE.format(instruction=instruction)
