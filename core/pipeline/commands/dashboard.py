"""``python -m core encoder|partition``: the app's background work on one encoder or one pair.

``encoder`` extracts one model x instruction over the dataset (resumable; skipped when done) and
fits one subject's encoder at one layer, keeping it for predictions. ``partition`` extracts an
instruction pair and partitions its variance for every subject, merging the rows into the
partitions table. Both are what the dashboard starts as background jobs.
"""

from __future__ import annotations

import argparse


def _encoder(args: argparse.Namespace) -> int:
    from core.pipeline.commands.grid import _settings
    from core.pipeline.on_demand import compute_encoder

    rows = compute_encoder(
        args.dataset, args.subject, args.model, args.instruction, args.layer, _settings(args),
        progress=not args.quiet,
    )  # fmt: skip
    for row in rows:
        print(f"{row['roi']:>8}  r {row['r_mean']:.3f}  normalized {row['nalign_mean']:.3f}")
    return 0


def _partition(args: argparse.Namespace) -> int:
    from core.pipeline.commands.grid import _settings
    from core.pipeline.on_demand import compute_partition

    table = compute_partition(
        args.dataset, args.model, args.a, args.b, _settings(args), progress=not args.quiet
    )
    print(f"partitions table: {len(table)} rows")
    return 0


def register(sub) -> None:
    from core.pipeline.commands.grid import _add_fit_options

    p = sub.add_parser("encoder", help="extract and fit one encoder (kept for predictions)")
    _add_fit_options(p)
    p.add_argument("--subject", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--instruction", default=None, help="omit for image-only baselines")
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_encoder)

    p = sub.add_parser("partition", help="variance partitioning of one instruction pair")
    _add_fit_options(p)
    p.add_argument("--model", required=True)
    p.add_argument("--a", required=True, help="instruction A (id)")
    p.add_argument("--b", required=True, help="instruction B (id)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_partition)
