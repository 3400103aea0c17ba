"""Tiny random-weight models of every supported family, built offline from configs.

Used by the tests and the benchmark (no downloads): each builder writes a complete Hugging Face
folder (config, safetensors weights, processor with a word-level tokenizer) that loads through the
same registry and adapter path as a hub checkpoint. The weights are random (seeded), so outputs are
meaningless but deterministic.

The word-level tokenizer splits on whitespace and punctuation and lower-cases; every word of the
paper's instructions is in the vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")

#: Vocabulary of the tiny tokenizers: the words of the paper's instructions plus scene words.
WORDS = (
    "describe the most dominant color in image list any food items visible . how many animals are "
    "there ? what is this people if yes , them foreground of background generate some text to "
    "highlight area that shows a natural outdoor scene type environment shown kind interaction "
    "happening between animate and inanimate objects here user assistant : red green blue yellow "
    "cat dog bird apple bread no one two three street indoor outdoor sky grass tree car person "
    "picture photo with on at near left right top bottom big small system you answer"
).split()


def word_tokenizer(extra_special: Sequence[str] = (), add_bos: bool = True, words=WORDS):
    """Return a word-level ``PreTrainedTokenizerFast`` (left padding) that saves and reloads.

    Parameters
    ----------
    extra_special : sequence of str
        Family-specific special tokens (``"<image>"``, ``"<end_of_utterance>"``, ...), matched
        verbatim inside text.
    add_bos : bool
        Prepend ``<s>`` when encoding with special tokens.
    words : sequence of str
        Ordinary vocabulary.
    """
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for token in (*SPECIAL, *extra_special, *words):
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (*SPECIAL, *extra_special)]
    )
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )
    if extra_special:
        fast.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return fast


def _llama(vocab_size: int, hidden: int = 32, layers: int = 2, heads: int = 2, **kw):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=2048,
        initializer_range=0.2,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **kw,
    )


def _save(model, processor, folder: Path, seed: int) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    model.generation_config.bos_token_id = 1
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)


LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% else %}ASSISTANT: "
    "{% for c in message['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_llava(
    folder: Path,
    seed: int = 0,
    image_size: int = 32,
    patch: int = 8,
    hidden: int = 32,
    layers: int = 2,
    vision_hidden: int = 32,
    vision_layers: int = 2,
    heads: int = 2,
    chat_template: bool = True,
) -> Path:
    """Write a tiny LLaVA-1.5-format model (CLIP vision tower + Llama decoder) to ``folder``."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = word_tokenizer(["<image>"])
    vision = CLIPVisionConfig(
        hidden_size=vision_hidden,
        intermediate_size=2 * vision_hidden,
        num_hidden_layers=vision_layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch,
        projection_dim=vision_hidden,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_llama(len(tok), hidden, layers, heads),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    _seeded(seed)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE if chat_template else None,
    )
    return _save(model, processor, folder, seed)


IDEFICS3_SPECIAL = (
    "<image>",
    "<fake_token_around_image>",
    "<global-img>",
    "<end_of_utterance>",
    *[f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)],
)


def build_idefics3(folder: Path, seed: int = 0, image_splitting: bool = False) -> Path:
    """Write a tiny Idefics3 (SmolVLM-style) model, 4 image tokens per tile.

    Parameters
    ----------
    folder : path
    seed : int
    image_splitting : bool
        Off (default): one 32x32 tile per image. On: the image is resized to a longest edge of
        64 and split into 32x32 tiles plus a global tile, so images of different shapes have
        different tile counts (the processor pads with empty tiles).
    """
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3 import Idefics3ImageProcessor

    tok = word_tokenizer(IDEFICS3_SPECIAL)
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        text_config=_llama(len(tok)),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    _seeded(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=image_splitting,
        size={"longest_edge": 64 if image_splitting else 32},
        max_image_size={"longest_edge": 32},
    )
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, image_seq_len=4)
    return _save(model, processor, folder, seed)


QWEN2VL_SPECIAL = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def build_qwen2vl(folder: Path, seed: int = 0, initializer_range: float | None = None) -> Path:
    """Write a tiny Qwen2-VL model (M-RoPE decoder, 2x2 patch merge).

    Parameters
    ----------
    folder : path
    seed : int
    initializer_range : float or None
        Std of the decoder's random weights. None keeps transformers' default (0.02: greedy
        responses barely depend on the input); e.g. 0.2 gives input-dependent responses.
    """
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor

    tok = word_tokenizer(QWEN2VL_SPECIAL, add_bos=False)
    tok.eos_token = "<|im_end|>"
    text_extra = {} if initializer_range is None else {"initializer_range": initializer_range}
    config = Qwen2VLConfig(
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 2,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]},
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": tok.eos_token_id,
            **text_extra,
        },
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    _seeded(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessor(
        min_pixels=32 * 32, max_pixels=32 * 32, patch_size=8, merge_size=2, temporal_patch_size=2
    )
    # Qwen2VLProcessor insists on a video processor, which needs torchvision: save the image
    # processor and tokenizer separately (the adapter assembles the inputs itself).
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_instructblip(
    folder: Path, seed: int = 0, vision_initializer_range: float | None = None
) -> Path:
    """Write a tiny InstructBLIP (Vicuna-style decoder-only LLM, 4 query tokens).

    Parameters
    ----------
    folder : path
    seed : int
    vision_initializer_range : float or None
        Std of the vision tower's random weights. None keeps transformers' default (1e-10: the
        tower's states are all about 0); give e.g. 0.2 for a tower whose tokens differ.
    """
    from transformers import (
        BlipImageProcessor,
        InstructBlipConfig,
        InstructBlipForConditionalGeneration,
        InstructBlipProcessor,
    )

    tok = word_tokenizer(["<image>"])
    qtok = word_tokenizer(["[CLS]", "[SEP]"])
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    if vision_initializer_range is not None:
        vision["initializer_range"] = vision_initializer_range
    config = InstructBlipConfig(
        vision_config=vision,
        qformer_config={
            "vocab_size": len(qtok),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "encoder_hidden_size": 32,
            "pad_token_id": 0,
        },
        text_config=_llama(len(tok)).to_dict(),
        num_query_tokens=4,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
    )
    _seeded(seed)
    model = InstructBlipForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    processor = InstructBlipProcessor(
        image_processor=image_processor, tokenizer=tok, qformer_tokenizer=qtok, num_query_tokens=4
    )
    return _save(model, processor, folder, seed)


def build_idefics(folder: Path, seed: int = 0, open_gates: bool = False) -> Path:
    """Write a tiny IDEFICS (v1) model: gated cross-attention to a small CLIP-style encoder.

    Parameters
    ----------
    folder : path
    seed : int
    open_gates : bool
        False (default): the cross-attention gates start at 0, as in transformers, so the image
        has no effect on the text. True: gates at 1, so responses depend on the image.
    """
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsProcessor
    from transformers.models.idefics import IdeficsImageProcessor

    tok = word_tokenizer(["<image>", "<fake_token_around_image>", "<end_of_utterance>"])
    config = IdeficsConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        cross_layer_interval=1,
        vision_config={
            "embed_dim": 32,
            "image_size": 32,
            "patch_size": 8,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        },
        perceiver_config={"use_resampler": False},
        **({"alpha_initializer": "ones"} if open_gates else {}),
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    _seeded(seed)
    model = IdeficsForVisionText2Text(config).eval()
    image_processor = IdeficsImageProcessor(image_size=32)
    processor = IdeficsProcessor(image_processor=image_processor, tokenizer=tok)
    return _save(model, processor, folder, seed)


def build_vit(folder: Path, seed: int = 0) -> Path:
    """Write a tiny ViT encoder (CLS token + 16 patches) with its image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    config = ViTConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    _seeded(seed)
    model = ViTModel(config).eval()
    folder = Path(folder)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def build_clip(folder: Path, seed: int = 0) -> Path:
    """Write a tiny CLIP (image and text towers, 16-d projection) with its processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = word_tokenizer((), add_bos=True)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    _seeded(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    folder = Path(folder)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)
    return folder


def _save_tower_only(model, image_processor, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    return folder


_SIGLIP_TOWER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


def build_idefics2_tower(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Idefics2 checkpoint for the ``vision:<model>`` baseline only (weights and
    image processor, no tokenizer). Images keep their aspect ratio (longest edge 32) and are
    split into 4 crops plus the whole image, the crops padded to the whole image's size, so
    ``pixel_attention_mask`` marks padded patches within one image."""
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration
    from transformers.models.idefics2 import Idefics2ImageProcessor

    config = Idefics2Config(
        vision_config=_SIGLIP_TOWER,
        perceiver_config={
            "hidden_size": 32,
            "resampler_n_latents": 4,
            "resampler_depth": 1,
            "resampler_n_heads": 2,
            "resampler_head_dim": 16,
            "num_key_value_heads": 1,
        },
        text_config=_llama(64).to_dict() | {"model_type": "mistral"},
        image_token_id=63,
    )
    _seeded(seed)
    model = Idefics2ForConditionalGeneration(config).eval()
    image_processor = Idefics2ImageProcessor(
        do_image_splitting=True, size={"longest_edge": 32, "shortest_edge": 8}
    )
    return _save_tower_only(model, image_processor, folder)


def build_smolvlm_tower(folder: Path, seed: int = 0) -> Path:
    """Write a tiny SmolVLM checkpoint for the ``vision:<model>`` baseline only (weights and
    image processor; its full processor needs torchvision). Images are split into 32x32 tiles
    plus a global tile (longest edge 64)."""
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration
    from transformers.models.smolvlm import SmolVLMImageProcessor

    config = SmolVLMConfig(
        vision_config=_SIGLIP_TOWER, text_config=_llama(64).to_dict(), image_token_id=63
    )
    _seeded(seed)
    model = SmolVLMForConditionalGeneration(config).eval()
    image_processor = SmolVLMImageProcessor(
        do_image_splitting=True,
        size={"longest_edge": 64},
        max_image_size={"longest_edge": 32},
    )
    return _save_tower_only(model, image_processor, folder)


def build_qwen2_5_vl_tower(folder: Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2.5-VL checkpoint for the ``vision:<model>`` baseline only (weights and
    image processor). Up to 8x8 patches per image and 2x2-unit attention windows, so the tower
    reorders its tokens into windows."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor

    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 32,
            "patch_size": 8,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 32,
            "fullatt_block_indexes": [1],
        },
        text_config={
            "vocab_size": 64,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]},
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        image_token_id=60,
        video_token_id=61,
        vision_start_token_id=62,
        vision_end_token_id=63,
    )
    _seeded(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessor(
        min_pixels=32 * 32, max_pixels=64 * 64, patch_size=8, merge_size=2, temporal_patch_size=2
    )
    return _save_tower_only(model, image_processor, folder)


#: model type -> builder(folder, seed) of a tiny checkpoint usable only as ``vision:<folder>``
#: (its VLM family is covered by :data:`BUILDERS`; these add the other vision towers).
TOWER_BUILDERS: dict[str, Callable[..., Path]] = {
    "idefics2": build_idefics2_tower,
    "smolvlm": build_smolvlm_tower,
    "qwen2_5_vl": build_qwen2_5_vl_tower,
}

#: family -> builder(folder, seed) of the tiny model used in tests and the benchmark.
BUILDERS: dict[str, Callable[..., Path]] = {
    "llava": build_llava,
    "idefics3": build_idefics3,
    "qwen2_vl": build_qwen2vl,
    "instructblip": build_instructblip,
    "idefics": build_idefics,
    "vit": build_vit,
    "clip": build_clip,
}
