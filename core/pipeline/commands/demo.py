"""``python -m core demo build``: build the embedded simulated demo world."""

from __future__ import annotations

import argparse


def _build(args: argparse.Namespace) -> int:
    from core.data.demo.build import build_demo

    summary = build_demo(root=args.root, size=args.size, seed=args.seed, progress=not args.quiet)
    print("\n".join(summary.lines()))
    return 0


def register_demo(demo_sub) -> None:
    p = demo_sub.add_parser("build", help="build the simulated demo world (stimuli and subjects)")
    p.add_argument("--size", choices=["small", "default"], default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=None, help="target folder (default <home>/datasets/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_build)
