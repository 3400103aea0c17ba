"""``python -m core demo build|ensure``: build the embedded simulated demo world."""

from __future__ import annotations

import argparse


def _print_summary(info: dict) -> None:
    print(f"demo world ({info['size']}, seed {info['seed']}) [SIMULATED]")
    print(f"images: {info['n_images']} ({info['n_train']} train, {info['n_test']} shared test)")
    for name, s in info.get("subjects_summary", {}).items():
        print(
            f"{name}: {s['n_targets']} targets ({s['n_general']} in the general mask), "
            f"median noise ceiling {s['median_nc']:.1f}%"
        )


def _build(args: argparse.Namespace) -> int:
    from core.data.demo.build import build_demo

    summary = build_demo(root=args.root, size=args.size, seed=args.seed, progress=not args.quiet)
    print("\n".join(summary.lines()))
    return 0


def _ensure(args: argparse.Namespace) -> int:
    from core.data.dataset import DatasetError
    from core.data.demo.store import demo_info
    from core.storage import ArtifactError

    try:
        info = demo_info(args.root)
    except (DatasetError, ArtifactError) as exc:
        print(f"{exc}; building it now")
        return _build(args)
    _print_summary(info)
    return 0


def _add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", choices=["small", "default"], default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=None, help="target folder (default <home>/datasets/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register_demo(demo_sub) -> None:
    p = demo_sub.add_parser("build", help="build the simulated demo world (stimuli and subjects)")
    _add_build_options(p)
    p.set_defaults(func=_build)
    p = demo_sub.add_parser("ensure", help="build the demo world only if it is not built yet")
    _add_build_options(p)
    p.set_defaults(func=_ensure)
