"""``python -m core demo train-model`` and ``python -m core demo evaluate-model``."""

from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.config import setup_environment
    from core.models.demo_vlm import DEMO_FOLDER, train_demo_model
    from core.models.demo_vlm.architecture import Recipe

    setup_environment()
    recipe = Recipe(seed=args.seed, world_seed=args.world_seed)
    if args.steps is not None:
        recipe = replace(recipe, steps=args.steps)
    out = args.out or DEMO_FOLDER
    info = train_demo_model(out=out, seed=args.seed, recipe=recipe, progress=not args.quiet)
    print(
        f"saved the demo model to {out} ({info['folder_bytes'] / 1e6:.1f} MB, "
        f"{info['n_parameters']:,} parameters); data {info['data_seconds']:.0f} s, "
        f"training {info['train_seconds']:.0f} s, total {info['total_seconds']:.0f} s"
    )
    print("evaluate it with `python -m core demo evaluate-model`")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from core.config import setup_environment
    from core.models.demo_vlm import DEMO_FOLDER, load_demo_model
    from core.models.demo_vlm.evaluate import evaluate, heldout_scenes
    from core.storage import write_json

    setup_environment()
    torch.set_num_threads(args.threads)
    folder = args.model or DEMO_FOLDER
    model, processor = load_demo_model(folder)
    scenes = heldout_scenes(args.n, world_seed=args.world_seed, start=args.start)
    result = evaluate(model, processor, scenes, seed=args.seed)
    print(f"model: {folder}")
    print(result.table())
    print(f"({result.seconds:.0f} s)")
    if args.json:
        from pathlib import Path

        from core.models.registry import file_digests

        # the record names the weights it scored: a retrained model cannot keep an old record
        weights = file_digests([Path(folder) / "model.safetensors"])[0]
        write_json(args.json, {**result.to_dict(), "weights_sha256": weights})
    return 0


def register_demo(demo_sub) -> None:
    p = demo_sub.add_parser(
        "train-model", help="train the demo vision-language model (deterministic from --seed)"
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (data order, init)")
    p.add_argument("--world-seed", type=int, default=0, help="seed of the demo world")
    p.add_argument(
        "--out", default=None, help="output folder (default core/models/assets/demo-vlm)"
    )
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_train)

    e = demo_sub.add_parser(
        "evaluate-model", help="score the demo model on held-out scenes (with a shuffled control)"
    )
    e.add_argument("--model", default=None, help="model folder (default: the committed demo-vlm)")
    e.add_argument("--n", type=int, default=500, help="number of held-out scenes")
    e.add_argument("--start", type=int, default=0, help="first held-out scene index")
    e.add_argument("--world-seed", type=int, default=0)
    e.add_argument("--seed", type=int, default=0, help="seed of the shuffled control")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json", default=None, help="also write the scores to this JSON file")
    e.set_defaults(func=_evaluate)
