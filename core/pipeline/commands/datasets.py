"""``python -m core datasets add|check|list``: register and inspect real datasets.

``datasets add nsd PATH`` / ``datasets add algonauts PATH [--nsd-root NSD]`` validate the folder,
print what was found and what is missing file by file, and register it (refusing a folder whose
required files fail). ``datasets check`` validates without registering; ``datasets list`` shows the
configured datasets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ("nsd", "algonauts")


def register(subparsers) -> None:
    """Add the ``datasets`` command to ``python -m core``."""
    p = subparsers.add_parser("datasets", help="add, check and list real datasets (NSD, Algonauts)")
    sub = p.add_subparsers(dest="datasets_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    for action, help_text in (
        ("add", "validate a folder and register it"),
        ("check", "validate a folder, file by file, without registering it"),
    ):
        a = sub.add_parser(action, help=help_text)
        a.add_argument("kind", choices=KINDS)
        a.add_argument("path", type=Path)
        a.add_argument("--name", default=None, help="registry name (default: the kind)")
        a.add_argument(
            "--space",
            choices=("func1pt8mm", "fsaverage"),
            default="func1pt8mm",
            help="NSD betas space",
        )
        a.add_argument(
            "--format",
            dest="fmt",
            choices=("auto", "nifti", "hdf5"),
            default="auto",
            help="NSD func1pt8mm beta files",
        )
        a.add_argument(
            "--nsd-root",
            type=Path,
            default=None,
            help="Algonauts: an NSD root for split and noise ceiling",
        )
        a.add_argument(
            "--all", action="store_true", help="print every check, not only the problems"
        )
        a.set_defaults(func=_add if action == "add" else _check)
    ls = sub.add_parser("list", help="list configured datasets")
    ls.set_defaults(func=_list)


def validate(args: argparse.Namespace):
    """The :class:`~core.data.nsd_validate.ValidationReport` for the parsed arguments."""
    if args.kind == "nsd":
        from core.data.nsd_validate import validate_nsd

        return validate_nsd(args.path, space=args.space, fmt=args.fmt)
    from core.data.algonauts import validate_algonauts

    return validate_algonauts(args.path, nsd_root=args.nsd_root)


def _check(args: argparse.Namespace) -> int:
    report = validate(args)
    print(report.format_text(only_problems=not args.all))
    return 0 if report.ok else 1


def _add(args: argparse.Namespace) -> int:
    from core.data.nsd_cache import save_dataset_options
    from core.data.registry import register as register_dataset
    from core.pipeline.cli import UserError

    report = validate(args)
    print(report.format_text(only_problems=not args.all))
    if not report.ok:
        raise UserError(
            f"{args.kind} folder {args.path} not registered: "
            + "; ".join(f"{c.path} ({c.found})" for c in report.failures())
        )
    name = args.name or args.kind
    register_dataset(name, args.kind, args.path)
    if args.kind == "nsd":
        save_dataset_options(name, {"space": args.space, "fmt": args.fmt})
    else:
        nsd = str(args.nsd_root.resolve()) if args.nsd_root is not None else None
        save_dataset_options(name, {"nsd_root": nsd})
    print(f"registered {args.kind} dataset {name!r} at {Path(args.path).resolve()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from core.data.registry import configured

    for name, entry in configured().items():
        path = entry.get("path")
        state = "embedded" if path is None else ("ok" if Path(path).exists() else "folder missing")
        print(f"{name:<16} {entry['kind']:<10} {path or '-'}  [{state}]")
    return 0
