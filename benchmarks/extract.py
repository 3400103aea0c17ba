"""Extraction throughput: responses/s and peak memory per batch size, prefix KV reuse off and on,
and one-pass vs two-phase extraction (``Adapter.generate(..., method=...)``).

CPU (default): a demo-sized random LLaVA (64 image tokens, 4+4 layers, width 128) on random images,
the paper's 10 instructions per image; then the tiny random model of every two-phase family
(core.models.tiny), one-pass vs two-phase images/s. ``--device cuda``: a LLaVA-1.5-7B-shaped random
model (CLIP ViT-L/14-336 tower, 576 image tokens; Llama-7B decoder) in bf16, for comparison with the
HF-generate reference in docs/platform.md (H200, batch 64: 23.7 responses/s).

Every table's reference row (speed-up 1.00x) is one-pass without prefix reuse at the same batch
size, measured in the same run; ``max|d|`` is the largest absolute difference between a two-phase
embedding and the reference's (same token ids are checked).

    .venv/bin/python benchmarks/extract.py                 # CPU
    .venv/bin/python benchmarks/extract.py --device cuda --batch-sizes 32 64 --images 64

Phase 1 of two-phase runs on transformers' ``generate``; a vLLM phase 1 is not implemented.
"""

from __future__ import annotations

import argparse
import json
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


#: Timer of :func:`run`: wall clock (default), or this process's CPU time (``--clock cpu``: on a
#: shared CPU machine, less sensitive to other processes; use with ``--threads 1``).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def run(
    adapter, images, instructions, batch_size: int, prefix: bool, options, method="one-pass"
) -> tuple[float, list]:
    """Responses/s for all images x instructions, and the responses (pairs in a fixed order)."""
    import torch

    if adapter.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = clock()
    out = []
    if prefix:
        per = max(1, batch_size // len(instructions))
        for k in range(0, len(images), per):
            grid = adapter.generate_grid(images[k : k + per], instructions, options)
            out.extend(r for row in grid for r in row)
    else:
        pairs = [(im, q) for im in images for q in instructions]
        for k in range(0, len(pairs), batch_size):
            chunk = pairs[k : k + batch_size]
            out.extend(
                adapter.generate([p[0] for p in chunk], [p[1] for p in chunk], options, method)
            )
    if adapter.device.type == "cuda":
        torch.cuda.synchronize()
    return len(out) / (clock() - start), out


def max_difference(reference: list, other: list) -> float:
    """Largest |embedding difference| between matching responses; inf if any token ids differ."""
    worst = 0.0
    for r, o in zip(reference, other, strict=True):
        if r.token_ids != o.token_ids:
            return float("inf")
        worst = max(worst, float(np.abs(r.embeddings - o.embeddings).max()))
    return worst


def interleaved(repeats: int, adapter, configs, *args) -> list[tuple[float, list]]:
    """Best rate of each configuration ``(prefix, method)`` over ``repeats`` rounds, the
    configurations taking turns within each round (CPU timings drift with the machine's load).

    Returns
    -------
    results : list of (responses/s, responses, peak MB), one per configuration (the peak is
        the run's own on CUDA, the process's so far on the CPU)
    """
    images, instructions, batch_size, options = args
    best: list = [None] * len(configs)
    for _ in range(repeats):
        for i, (prefix, method) in enumerate(configs):
            rate, out = run(
                adapter, images, instructions, batch_size, prefix == "on", options, method
            )
            if best[i] is None or rate > best[i][0]:
                best[i] = (rate, out, peak_memory_mb(adapter.device.type))
    return best


CONFIGS = (("off", "one-pass"), ("on", "one-pass"), ("off", "two-phase"))


def table(adapter, images, instructions, batch_sizes, options, repeats: int) -> list[dict]:
    """Print one row per batch size and configuration (prefix reuse, method); the reference
    (speed-up 1.00x) is the first row of each batch size, one-pass without prefix reuse.
    Returns the rows (batch, prefix, method, responses/s)."""
    rows = []
    k = len(instructions)
    configs = [c for c in CONFIGS if c[0] == "off" or adapter.supports_prefix_cache]
    print(
        f"{'batch':>6} {'prefix':>7} {'method':>10} {'resp/s':>9} {'images/s':>9} "
        f"{'peak MB':>9} {'speed-up':>9} {'max|d|':>9}"
    )
    for bs in batch_sizes:
        results = interleaved(repeats, adapter, configs, images, instructions, bs, options)
        ref_rate, ref, _ = results[0]
        for (prefix, method), (rate, out, peak) in zip(configs, results, strict=True):
            diff = max_difference(ref, out) if method == "two-phase" else float("nan")
            print(
                f"{bs:>6} {prefix:>7} {method:>10} {rate:>9.2f} {rate / k:>9.2f} "
                f"{peak:>9.0f} {rate / ref_rate:>8.2f}x {diff:>9.1e}",
                flush=True,
            )
            rows.append({"batch": bs, "prefix": prefix, "method": method, "rate": rate})
    return rows


def save_throughput(rows: list[dict], source: str) -> Path:
    """Write the fastest one-pass rate to ``<home>/benchmarks/extract.json``, where
    ``python -m core run --dry-run`` reads it to estimate GPU time."""
    from core.config import subdir

    best = max((r for r in rows if r["method"] == "one-pass"), key=lambda r: r["rate"])
    path = subdir("benchmarks") / "extract.json"
    path.write_text(json.dumps({"responses_per_s": best["rate"], "batch": best["batch"],
                                "prefix": best["prefix"], "source": source}, indent=2))
    return path


def tiny_family_table(
    images, instructions, batch_size: int, options, device: str, repeats: int
) -> None:
    """One-pass vs two-phase on the tiny random model of every two-phase family."""
    from core.models.adapters import TWO_PHASE_FAMILIES, load_adapter
    from core.models.tiny import BUILDERS

    k = len(instructions)
    print(
        f"\ntiny random models (core.models.tiny), {len(images)} images x {k} instructions, "
        f"batch {batch_size}, max_new_tokens {options.max_new_tokens}; reference = one-pass"
    )
    print(
        f"{'family':>13} {'one-pass img/s':>15} {'two-phase img/s':>16} {'speed-up':>9} "
        f"{'max|d|':>9}"
    )
    with tempfile.TemporaryDirectory() as root:
        for family in TWO_PHASE_FAMILIES:
            adapter = load_adapter(str(BUILDERS[family](Path(root) / family, seed=0)), device)
            run(adapter, images[:1], instructions[:2], 2, False, options, "one-pass")  # warm-up
            run(adapter, images[:1], instructions[:2], 2, False, options, "two-phase")
            configs = (("off", "one-pass"), ("off", "two-phase"))
            (one, ref, _), (two, out, _) = interleaved(
                repeats, adapter, configs, images, instructions, batch_size, options
            )
            print(
                f"{family:>13} {one / k:>15.2f} {two / k:>16.2f} {two / one:>8.2f}x "
                f"{max_difference(ref, out):>9.1e}",
                flush=True,
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time each configuration this often (taking turns), keep the best",
    )
    parser.add_argument(
        "--tiny",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also compare the methods on every family's tiny model (default: on the CPU only)",
    )
    parser.add_argument("--tiny-batch", type=int, default=40)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the fastest one-pass rate to <home>/benchmarks/extract.json (read by "
        "`run --dry-run` for its GPU-time estimate)",
    )
    args = parser.parse_args(argv)
    import torch

    global clock
    clock = CLOCKS[args.clock]
    if args.clock == "cpu" and args.device.startswith("cuda"):
        parser.error("--clock cpu does not count GPU time: use the wall clock on CUDA")

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
    for method in ("one-pass", "two-phase"):  # warm-up
        run(adapter, images[:1], instructions[:2], 2, False, options, method)
    print(
        f"model: random LLaVA ({size}), device {args.device}, {n_images} images x "
        f"{len(instructions)} instructions, max_new_tokens {max_new}, {args.threads} threads, "
        f"{args.clock} clock, best of {args.repeats}"
    )
    rows = table(adapter, images, instructions, batch_sizes, options, args.repeats)
    if args.save:
        where = save_throughput(
            rows, f"benchmarks/extract.py, random LLaVA ({size}) on {args.device}, "
            f"{max_new} new tokens, {time.strftime('%Y-%m-%d')}"
        )  # fmt: skip
        print(f"throughput saved to {where}")
    if not gpu:
        print("CPU peak MB is the process's max RSS so far (monotonic), not per configuration.")
    del adapter
    if args.tiny if args.tiny is not None else not gpu:
        tiny_images = [
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
            for _ in range(n_images)
        ]
        tiny_family_table(
            tiny_images, instructions, args.tiny_batch, options, args.device, args.repeats
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
