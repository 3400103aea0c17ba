"""The ``python -m core`` argument parser, assembled from :mod:`core.pipeline.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import core.pipeline.commands as commands_pkg
from core.storage import ArtifactError


class UserError(RuntimeError):
    """A problem with what the user asked for; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Return the full parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="BrainPrompt: instruction-prompted MLLM embeddings vs the visual brain.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="build, train and evaluate the embedded simulated demo")
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="ACTION")
    demo.set_defaults(func=lambda args: _missing_action(demo))
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
        if hasattr(module, "register_demo"):
            module.register_demo(demo_sub)
    return parser


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ArtifactError, FileNotFoundError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; completed work is kept and a rerun resumes", file=sys.stderr)
        return 130
