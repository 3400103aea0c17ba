"""``python -m core reproduce paper``: the paper's analysis and report in one command."""

from __future__ import annotations

import argparse


def _paper(args: argparse.Namespace) -> int:
    from core.pipeline.reproduce import reproduce_paper

    if args.dataset == "demo":  # a fresh home: build the demo first (the plan counts its images)
        from core.data.demo.build import ensure_demo

        ensure_demo(progress=not args.quiet)
    print(reproduce_paper(args.dataset, args.engine, args.address, args.dry_run,
                          progress=not args.quiet, mplug_owl=args.mplug_owl,
                          max_new_tokens=args.max_new_tokens))  # fmt: skip
    return 0


def register(sub) -> None:
    from core.pipeline.commands.grid import add_engine_options

    p = sub.add_parser("reproduce", help="reproduce a published analysis (`reproduce paper`)")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    paper = what.add_parser(
        "paper",
        help="Oota et al., ICLR 2025: the paper's grid and a report with its numbers beside ours",
        description="Runs the paper's configuration (subjects 1, 2, 5, 7 where present; the "
        "MLLMs, ViT-H, CLIP, random-init controls; 10 instructions; every layer; paper alphas "
        "and folds; IC vs IU2 partitioning; on the demo its simulated analog) and writes "
        "<home>/reports/<dataset>/paper/ (Markdown, PNG/SVG figures, CSV).",
    )
    paper.add_argument("--dataset", default="demo")
    add_engine_options(paper)
    paper.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    paper.add_argument("--mplug-owl", action="store_true",
                       help="include mPLUG-Owl (needs its opt-in at a pinned revision)")  # fmt: skip
    paper.add_argument("--max-new-tokens", type=int, default=48,
                       help="generation budget of the responses (the paper's code: 48)")  # fmt: skip
    paper.add_argument("--quiet", action="store_true")
    paper.set_defaults(func=_paper)
