"""``python -m core run|fit|report``: the encoding grid from the command line."""

from __future__ import annotations

import argparse


def _settings(args: argparse.Namespace):
    from core.results.fit import FitSettings

    return FitSettings(
        alphas=args.alphas,
        cv=args.folds,
        solver=args.solver,
        backend=args.backend,
        n_permutations=args.permutations,
        p_values=_p_method(args),
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        method=args.method,
        prefix_reuse=not args.no_prefix_reuse,
    )


def settings_args(s) -> list[str]:
    """The command-line options that give back the :class:`FitSettings` ``s`` (the inverse of
    :func:`_settings`; background jobs the app starts use it). Spelled in
    :func:`core.results.commands.settings_args`, where messages that print a command find it."""
    from core.results.commands import settings_args as spelled

    return spelled(s)


def _p_method(args: argparse.Namespace) -> str:
    """``--p-values``; ``--permutations 0`` with the permutation method means none."""
    if args.p_values == "permutation" and args.permutations <= 0:
        return "none"
    return args.p_values


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and ``--address`` (shared by extract, fit and run)."""
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: processes on this machine (default); ray: a Ray cluster (both write the "
        "same store, so a run can move between them)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="--engine ray: 'auto' or HOST:PORT of a running cluster (default: start a local one)",
    )


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    add_engine_options(p)
    p.add_argument("--dataset", default="demo")
    p.add_argument(
        "--alphas",
        choices=["wide", "paper", "fast"],
        default="wide",
        help="wide: logspace(-2, 6, 81), the default (contains every demo target's optimum); "
        "paper: logspace(1, 4, 60), the paper's (reproduce paper uses it); fast: 20 values over "
        "the paper's range",
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--solver", choices=["eigh", "himalaya"], default="eigh")
    p.add_argument("--backend", choices=["auto", "numpy", "torch", "torch_cuda"], default="auto")
    p.add_argument(
        "--max-new-tokens", type=int, default=48, help="generation budget of the responses"
    )
    p.add_argument("--device", default="auto", help="extraction device: auto | cpu | cuda | mps "
                   "(auto follows --backend: torch_cuda -> cuda; part of the embeddings' key)")
    p.add_argument("--dtype", default="auto", help="extraction dtype: auto (bfloat16 on CUDA, "
                   "float32 elsewhere) | bfloat16 | float16 | float32")
    p.add_argument("--method", choices=["one-pass", "two-phase"], default="one-pass",
                   help="extraction method (part of the embeddings' key)")
    p.add_argument("--no-prefix-reuse", action="store_true",
                   help="extract without the shared-prefix KV cache (part of the key)")
    p.add_argument(
        "--p-values",
        choices=["analytic", "permutation", "none"],
        default="analytic",
        help="per-target p-values of the test correlation: analytic (exact t null of Pearson r; "
        "fine enough for FDR over 40,000 targets; the default), permutation (smallest p is "
        "1/(permutations+1)), or none (fraction significant shown as not computed)",
    )
    p.add_argument(
        "--permutations",
        type=int,
        default=200,
        help="permutations for --p-values permutation (0 = no p-values)",
    )


def _run(args: argparse.Namespace) -> int:
    from core.pipeline.grid import GridConfig, run_grid
    from core.results.report import format_report

    if args.dataset == "demo":
        from core.data.demo.build import ensure_demo

        ensure_demo(progress=not args.quiet)  # a fresh clone: build the demo first

    config = GridConfig(
        dataset=args.dataset, settings=_settings(args), keep_encoders=args.keep_encoders
    )
    if args.models:
        config.models = args.models
    if args.instructions:
        config.instructions = args.instructions
    if args.layers:
        config.layers = args.layers
    if args.subjects:
        config.subjects = args.subjects
    if args.control_pairs is not None:
        config.control_pairs = _control_pairs(args.control_pairs)
    config.extract_batch_size = args.batch_size
    if args.jobs:
        config.jobs = args.jobs
    config.engine, config.address = args.engine, args.address
    config.unit_size, config.gpus_per_fit = args.unit_size, args.gpus_per_fit
    if args.dry_run:
        from core.pipeline.plan import plan_grid

        print(plan_grid(config).format())
        return 0
    table = run_grid(config, progress=not args.quiet, extract=not args.no_extract)
    print(format_report(table, dataset=args.dataset))
    return 0


def _control_pairs(values: list[str]) -> list[str] | None:
    """``--control-pairs all|none|ID...`` -> :attr:`GridConfig.control_pairs`."""
    if values == ["all"]:
        return None
    return [] if values == ["none"] else values


def _fit(args: argparse.Namespace) -> int:
    from core.data.registry import open_dataset
    from core.results.fit import ALPHA_EDGE_WARN, IMAGE, FitSpec, run_fit

    ds = open_dataset(args.dataset)
    spec = FitSpec(args.dataset, args.subject, args.model, args.instruction or IMAGE, args.layer)
    if args.engine == "ray" and not args.force:
        from core.pipeline.engine import ray_fits, ray_init

        ray_init(args.address)
        rows, _ = ray_fits(ds, [spec], [args.keep_encoder], _settings(args), progress=False)
    else:
        rows = run_fit(ds, spec, _settings(args), keep_encoder=args.keep_encoder, force=args.force)
    for row in rows:
        frac = row["frac_significant"]
        sig = "not computed" if frac != frac else f"{100 * frac:.0f}%"
        edge = row.get("alpha_low_frac", 0.0) + row.get("alpha_high_frac", 0.0)
        warn = f"  alpha at grid edge {100 * edge:.0f}%" if edge > ALPHA_EDGE_WARN else ""
        print(
            f"{row['roi']:>8}  r {row['r_mean']:.3f}  normalized {row['nalign_mean']:.3f}  "
            f"significant {sig}{warn}"
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    from core.data.registry import open_dataset
    from core.pipeline.cli import UserError
    from core.results.report import format_report
    from core.results.tables import load_roi_table

    table = load_roi_table(args.dataset, open_dataset(args.dataset))
    if table.empty:
        raise UserError(
            f"no results for dataset {args.dataset!r}; run `python -m core run --dataset {args.dataset}`"
        )
    print(format_report(table, layer=args.layer, dataset=args.dataset))
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="the whole grid: extract, fit, score, report (resumable)")
    _add_fit_options(p)
    p.add_argument(
        "--models", nargs="+", help="default: demo-vlm, random:demo-vlm, vision:demo-vlm"
    )
    p.add_argument("--instructions", nargs="+", help="instruction ids (default: the paper's 10)")
    p.add_argument("--layers", nargs="+", type=int, help="hidden-state indices (default: all)")
    p.add_argument("--subjects", nargs="+")
    p.add_argument(
        "--control-pairs", nargs="+", metavar="ID", default=None,
        help="instructions partitioned against their own text-only control (what the image "
        "adds) when --models holds text:<model>: 'all' (the default), 'none' or instruction ids",
    )  # fmt: skip
    p.add_argument("--keep-encoders", choices=["best", "none", "last", "all"], default="best",
                   help="which encoders to keep for the app's predictions: best = each model's "
                   "cross-validated best layer (the layer every page reports; the default)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes for the fits (default: $BRAINPROMPT_JOBS, else the cores)",
    )
    p.add_argument("--no-extract", action="store_true", help="use the stored embeddings only")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--unit-size", type=int, default=256, help="images per extraction unit (--engine ray)"
    )
    p.add_argument(
        "--gpus-per-fit",
        type=float,
        default=0.0,
        help="--engine ray: GPU share of one fit (0.25 = four fits per GPU); 0 = one CPU each",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (images, responses and fits to compute, weights present or "
        "missing, estimated GPU time) and run nothing",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser("fit", help="fit one encoder (model x instruction x layer x subject)")
    _add_fit_options(p)
    p.add_argument("--subject", required=True)
    p.add_argument("--model", required=True)
    p.add_argument(
        "--instruction", default=None, help="instruction id (omit for image-only baselines)"
    )
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--keep-encoder", action="store_true", help="store the encoder for predictions")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_fit)

    p = sub.add_parser("report", help="print the results table summary")
    p.add_argument("--dataset", default="demo")
    p.add_argument("--layer", default="best", help="'best' (per model) or a layer index")
    p.set_defaults(func=_report)
