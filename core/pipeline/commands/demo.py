"""``python -m core demo build|ensure``: build the embedded simulated demo world."""

from __future__ import annotations

import argparse


def _print_summary(info: dict) -> None:
    world = info.get("world", "planted")
    label = "" if world == "planted" else f", {world.upper()} WORLD (negative control)"
    print(f"demo world {info.get('name', 'demo')} ({info['size']}, seed {info['seed']}, "
          f"{world}) [SIMULATED{label}]")  # fmt: skip
    print(f"images: {info['n_images']} ({info['n_train']} train, {info['n_test']} shared test)")
    for name, s in info.get("subjects_summary", {}).items():
        print(
            f"{name}: {s['n_targets']} targets ({s['n_general']} in the general mask), "
            f"median noise ceiling {s['median_nc']:.1f}%"
        )


def _build(args: argparse.Namespace) -> int:
    from core.data.demo.build import build_demo

    summary = build_demo(
        root=args.root,
        size=args.size,
        seed=args.seed,
        progress=not args.quiet,
        world=args.world,
        name=args.name,
    )
    print("\n".join(summary.lines()))
    return 0


def _ensure(args: argparse.Namespace) -> int:
    from core.data.dataset import DatasetError
    from core.data.demo.build import default_world_name, world_root
    from core.data.demo.store import demo_info
    from core.storage import ArtifactError

    root = args.root or world_root(args.name or default_world_name(args.world))
    try:
        info = demo_info(root)
    except (DatasetError, ArtifactError) as exc:
        print(f"{exc}; building it now")
        return _build(args)
    _print_summary(info)
    return 0


def _add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--size",
        choices=["small", "default", "controls"],
        default="default",
        help="default (1,200 images, 3 subjects), small (300 images, 2 subjects) or controls "
        "(300 images, 4 subjects with fewer targets: the negative-control tests)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--world",
        choices=["planted", "null", "uniform"],
        default="planted",
        help="planted (the demo's ground-truth model, the default) or a negative control: null "
        "(responses follow other images: realistic noise ceilings, nothing image-linked) or "
        "uniform (the same tuning in every area); a control is its own dataset (default name "
        "demo-null / demo-uniform) and never replaces the demo",
    )
    p.add_argument(
        "--name",
        default=None,
        help="dataset name (default: demo for planted, demo-<world> for a control); a name other "
        "than demo is registered, so --dataset NAME opens it",
    )
    p.add_argument(
        "--root", default=None, help="target folder (default <home>/datasets/demo or /<name>)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register_demo(demo_sub) -> None:
    p = demo_sub.add_parser("build", help="build the simulated demo world (stimuli and subjects)")
    _add_build_options(p)
    p.set_defaults(func=_build)
    p = demo_sub.add_parser("ensure", help="build the demo world only if it is not built yet")
    _add_build_options(p)
    p.set_defaults(func=_ensure)
