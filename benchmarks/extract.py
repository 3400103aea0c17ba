"""Extraction throughput: responses/s and peak memory per batch size, prefix KV reuse off and on.

CPU (default): a demo-sized random LLaVA (64 image tokens, 4+4 layers, width 128) on random images,
the paper's 10 instructions per image. ``--device cuda``: a LLaVA-1.5-7B-shaped random model (CLIP
ViT-L/14-336 tower, 576 image tokens; Llama-7B decoder) in bf16, for comparison with the HF-generate
reference in docs/platform.md (H200, batch 64: 23.7 responses/s).

    .venv/bin/python benchmarks/extract.py                 # CPU
    .venv/bin/python benchmarks/extract.py --device cuda --batch-sizes 8 32 64 --images 64
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.models.adapters import GenerationOptions  # noqa: E402
from core.models.instructions import PAPER_INSTRUCTIONS  # noqa: E402


def make_adapter(size: str, device: str):
    """A random LLaVA adapter: ``"demo"`` (CPU-sized) or ``"7b"`` (LLaVA-1.5-7B shapes)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from core.models.adapters.llava import LlavaAdapter
    from core.models.registry import ModelSpec
    from core.models.tiny import word_tokenizer

    tok = word_tokenizer(["<image>"])
    if size == "7b":
        vision = CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        )
        text = LlamaConfig(
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        image_size, patch, dtype = 336, 14, torch.bfloat16
    else:
        vision = CLIPVisionConfig(
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            image_size=64,
            patch_size=8,
            projection_dim=128,
        )
        text = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=4,
            initializer_range=0.2,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
        image_size, patch, dtype = 64, 8, torch.float32
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    dev = torch.device(device)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with dev:
        model = LlavaForConditionalGeneration._from_config(config, attn_implementation="sdpa")
    torch.set_default_dtype(previous)
    model = model.to(dev, dtype).eval()
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
        ),
        tokenizer=tok,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    spec = ModelSpec(name=f"bench-llava-{size}", source=tempfile.gettempdir())
    return LlavaAdapter(spec, model, processor, dev, dtype)


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(adapter, images, instructions, batch_size: int, prefix: bool, options) -> tuple[float, int]:
    """Responses/s for all images x instructions."""
    import torch

    if adapter.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    n = 0
    if prefix:
        per = max(1, batch_size // len(instructions))
        for k in range(0, len(images), per):
            grid = adapter.generate_grid(images[k : k + per], instructions, options)
            n += sum(len(row) for row in grid)
    else:
        pairs = [(im, q) for q in instructions for im in images]
        for k in range(0, len(pairs), batch_size):
            chunk = pairs[k : k + batch_size]
            n += len(adapter.generate([p[0] for p in chunk], [p[1] for p in chunk], options))
    if adapter.device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start), n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    gpu = args.device.startswith("cuda")
    size = "7b" if gpu else "demo"
    batch_sizes = args.batch_sizes or ([8, 32, 64] if gpu else [10, 40])
    n_images = args.images or (64 if gpu else 8)
    max_new = args.max_new_tokens or (48 if gpu else 16)
    adapter = make_adapter(size, args.device)
    rng = np.random.default_rng(0)
    side = 336 if gpu else 64
    images = [
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
        for _ in range(n_images)
    ]
    instructions = [i.text for i in PAPER_INSTRUCTIONS]
    options = GenerationOptions(max_new_tokens=max_new)
    run(adapter, images[:1], instructions[:2], 2, False, options)  # warm-up
    print(
        f"model: random LLaVA ({size}), device {args.device}, {n_images} images x "
        f"{len(instructions)} instructions, max_new_tokens {max_new}"
    )
    print(f"{'batch':>6} {'prefix':>7} {'resp/s':>9} {'peak MB':>9} {'speed-up':>9}")
    for bs in batch_sizes:
        base = None
        for prefix in (False, True):
            rate, _ = run(adapter, images, instructions, bs, prefix, options)
            base = base or rate
            print(
                f"{bs:>6} {('on' if prefix else 'off'):>7} {rate:>9.2f} "
                f"{peak_memory_mb(args.device):>9.0f} {rate / base:>8.2f}x",
                flush=True,
            )
    if not gpu:
        print("CPU peak MB is the process's max RSS so far (monotonic), not per configuration.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
