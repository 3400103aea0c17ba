"""``python -m core extract``: responses and response embeddings over a dataset, resumable.

Example::

    python -m core extract --dataset demo --models demo-vlm random:demo-vlm \\
        --instructions IU1 IC --layers all --batch-size 8
"""

from __future__ import annotations

import argparse


def _layers(text: str) -> tuple[int, ...] | None:
    if text in ("all", ""):
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--layers must be 'all' or e.g. '0,4,-1': {text}"
        ) from exc


def register(subparsers) -> None:
    """Add the ``extract`` sub-command."""
    p = subparsers.add_parser(
        "extract",
        help="generate responses and response embeddings over a dataset (resumable)",
        description="Generate greedy responses for every image x instruction x model and store "
        "the per-layer response embeddings in shards under <home>/features. A killed run resumes.",
    )
    p.add_argument("--dataset", default="demo", help="dataset name (default: demo)")
    p.add_argument(
        "--models",
        nargs="+",
        default=["demo-vlm"],
        help="registry names, hub ids or folders; "
        "'random:NAME' for a random-init twin (default: demo-vlm)",
    )
    p.add_argument(
        "--instructions",
        nargs="+",
        default=["paper"],
        help="paper ids (IU1 ... VR), 'paper' (all 10), 'pool', pool ids or quoted free text",
    )
    p.add_argument("--layers", type=_layers, default=None, help="'all' or e.g. '0,8,16,-1'")
    p.add_argument("--pooling", default="mean", help="mean | last (ViT: cls | mean_patch)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chunk-size", type=int, default=64, help="rows per committed chunk")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--dtype", default=None, help="auto | bfloat16 | float16 | float32")
    p.add_argument("--no-prefix-reuse", action="store_true", help="disable prefix KV reuse")
    p.add_argument(
        "--method",
        choices=["one-pass", "two-phase"],
        default="one-pass",
        help="one-pass: hidden states during generation (default); two-phase: greedy ids, then "
        "one teacher-forced pass (same pooled positions; not faster on CPU, unmeasured on GPU)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--unit-size", type=int, default=256, help="images per unit (--engine ray)")
    from core.pipeline.commands.grid import add_engine_options

    add_engine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the extraction; prints one line per shard."""
    from core.data.registry import open_dataset
    from core.features.extract import extract_dataset
    from core.features.store import open_shard
    from core.models.adapters import GenerationOptions
    from core.models.instructions import resolve_instructions

    dataset = open_dataset(args.dataset)
    ids = dataset.stimuli.ids if args.limit is None else dataset.stimuli.ids[: args.limit]
    options = GenerationOptions(
        max_new_tokens=args.max_new_tokens, layers=args.layers, pooling=args.pooling
    )
    if args.engine == "ray":
        from core.features.identity import ExtractionSettings
        from core.pipeline.engine import plan_extraction, ray_extract, ray_extraction, ray_init

        ray_init(args.address)
        extraction = ray_extraction(ExtractionSettings(args.device, args.dtype or "auto",
                                                       args.method, not args.no_prefix_reuse))
        units = plan_extraction(dataset, args.models, resolve_instructions(args.instructions),
                                options, ids, args.unit_size, extraction)  # fmt: skip
        stats = ray_extract(dataset, units, options, batch_size=args.batch_size,
                            extraction=extraction, progress=not args.quiet)  # fmt: skip
        print(f"{stats['units']} units, {stats['failures']} retried, {stats['seconds']} s")
        return 0
    paths = extract_dataset(
        dataset,
        args.models,
        resolve_instructions(args.instructions),
        options,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        prefix_reuse=not args.no_prefix_reuse,
        method=args.method,
        image_ids=ids,
        progress=not args.quiet,
    )
    for path in paths:
        info = open_shard(path)
        ins = info.manifest["instruction"]
        label = ins["id"] if ins else "image"
        print(f"{info.manifest['model']['display_name']}\t{label}\t{info.n_rows} rows\t{path}")
    return 0
