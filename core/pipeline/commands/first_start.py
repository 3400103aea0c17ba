"""``python -m core first-start``: the app's first view, then the whole grid.

What the dashboard starts by itself on a home with a dataset and no results: the encoders of the
view Explore opens on (see :mod:`core.pipeline.first_view`), so the first screen shows a brain
within a minute, then ``python -m core run`` with the same settings (resumable; it reuses those
fits). Each step prints a ``[first start k/2]`` line that the app shows as progress.
"""

from __future__ import annotations

import argparse

#: The prefix of the step lines (read back by :mod:`core.dashboard.first_start`).
STEP = "[first start"


def _first_start(args: argparse.Namespace) -> int:
    from core.data.registry import open_dataset
    from core.pipeline.cli import main
    from core.pipeline.commands.grid import _settings, settings_args
    from core.pipeline.first_view import first_view, run_first_view

    if args.dataset == "demo":
        from core.data.demo.build import ensure_demo

        ensure_demo(progress=not args.quiet)
    settings = _settings(args)
    view = first_view(open_dataset(args.dataset))
    layer = run_first_view(
        view, settings, progress=not args.quiet,
        say=lambda text: print(f"{STEP} 1/2] {text}", flush=True),
    )  # fmt: skip
    print(f"{STEP} 1/2] done: {view.label()} at every layer (cross-validated best: {layer})",
          flush=True)  # fmt: skip
    print(f"{STEP} 2/2] the default grid (every model, instruction, layer and subject)",
          flush=True)  # fmt: skip
    return main(["run", "--dataset", args.dataset, *settings_args(settings),
                 *(["--quiet"] if args.quiet else [])])  # fmt: skip


def register(sub) -> None:
    from core.pipeline.commands.grid import _add_fit_options

    p = sub.add_parser(
        "first-start",
        help="the first view's encoders (what Explore opens on), then the whole grid",
    )
    _add_fit_options(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_first_start)
