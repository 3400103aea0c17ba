"""``python -m core datasets add|check|list|remove``: register and inspect real datasets.

``datasets add nsd PATH [--subjects subj01 subj02] [--sessions 1-5 7]`` /
``datasets add algonauts PATH [--nsd-root NSD]`` validate the folder, print what was found and
what is missing file by file, and register it (refusing a folder whose required files fail). The
chosen space, format, subjects and sessions are saved as the dataset's open options, so
``extract`` and ``run`` use only those. ``datasets check`` validates without registering;
``datasets list`` shows the configured datasets as a table; ``datasets remove NAME [--purge]``
forgets one (``--purge`` also deletes its compact cache; the data folder is never touched).
``datasets load NAME`` is a dataset's first load: every subject whose compact cache is missing is
read once and cached, one subject at a time (the app runs it as a background job).
"""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ("nsd", "algonauts")


def register(subparsers) -> None:
    """Add the ``datasets`` command to ``python -m core``."""
    p = subparsers.add_parser(
        "datasets", help="add, check, list and remove real datasets (NSD, Algonauts)"
    )
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
            "--subjects",
            nargs="+",
            default=None,
            metavar="SUBJ",
            help="only these subjects (subj01 or 1; default: every subject found)",
        )
        a.add_argument(
            "--sessions",
            nargs="+",
            default=None,
            metavar="N|A-B",
            help="NSD: only these 1-based sessions, e.g. 1-5 7 (default: every session on disk)",
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
    ls = sub.add_parser("list", help="list configured datasets (a table)")
    ls.set_defaults(func=_list)
    rm = sub.add_parser(
        "remove", help="forget a dataset (registry entry and saved options; never its folder)"
    )
    rm.add_argument("name")
    rm.add_argument(
        "--purge", action="store_true", help="also delete its compact cache (<home>/datasets/NAME)"
    )
    rm.set_defaults(func=_remove)
    ld = sub.add_parser(
        "load", help="first load: read the source files once and write every subject's compact "
        "cache (the app starts this in the background)",
    )  # fmt: skip
    ld.add_argument("name")
    ld.add_argument("--subjects", nargs="+", default=None, metavar="SUBJ",
                    help="only these subjects (default: every subject not cached yet)")  # fmt: skip
    ld.set_defaults(func=_load)


def selection(args: argparse.Namespace) -> tuple[list[str] | None, list[int] | None]:
    """The parsed ``--subjects`` and ``--sessions`` (None when not given)."""
    from core.data.nsd_layout import normalize_subject, parse_sessions
    from core.pipeline.cli import UserError

    subjects = None
    if args.subjects:
        subjects = sorted({normalize_subject(s) for s in args.subjects})
    sessions = None
    if args.sessions:
        if args.kind != "nsd":
            raise UserError("--sessions applies to NSD only (Algonauts releases averaged images)")
        sessions = parse_sessions(args.sessions)
    return subjects, sessions


def validate(args: argparse.Namespace):
    """The :class:`~core.data.nsd_validate.ValidationReport` for the parsed arguments."""
    subjects, sessions = selection(args)
    if args.kind == "nsd":
        from core.data.nsd_validate import validate_nsd

        return validate_nsd(
            args.path, space=args.space, fmt=args.fmt, subjects=subjects, sessions=sessions
        )
    from core.data.algonauts import validate_algonauts

    return validate_algonauts(args.path, nsd_root=args.nsd_root, subjects=subjects)


def _check(args: argparse.Namespace) -> int:
    report = validate(args)
    print(report.format_text(only_problems=not args.all))
    return 0 if report.ok else 1


def _add(args: argparse.Namespace) -> int:
    from core.data.nsd_cache import save_dataset_options
    from core.data.registry import check_name
    from core.data.registry import register as register_dataset
    from core.pipeline.cli import UserError

    name = check_name(args.name or args.kind)
    subjects, sessions = selection(args)
    report = validate(args)
    print(report.format_text(only_problems=not args.all))
    if not report.ok:
        raise UserError(
            f"{args.kind} folder {args.path} not registered: "
            + "; ".join(f"{c.path} ({c.found})" for c in report.failures())
        )
    register_dataset(name, args.kind, args.path)
    if args.kind == "nsd":
        options = {"space": args.space, "fmt": args.fmt, "subjects": subjects, "sessions": sessions}
    else:
        nsd = str(args.nsd_root.resolve()) if args.nsd_root is not None else None
        options = {"nsd_root": nsd, "subjects": subjects}
    save_dataset_options(name, options)
    print(f"registered {args.kind} dataset {name!r} at {Path(args.path).resolve()}")
    return 0


def dataset_rows() -> list[dict[str, str]]:
    """One row per configured dataset: name, kind, space, format, subjects, sessions, path, state."""
    from core.data.nsd_cache import dataset_options
    from core.data.nsd_layout import format_sessions
    from core.data.registry import configured

    rows = []
    for name, entry in configured().items():
        path = entry.get("path")
        kind = entry["kind"]
        opts = dataset_options(name) if kind != "demo" else {}
        subjects = opts.get("subjects")
        sessions = opts.get("sessions")
        if kind == "nsd":
            space = opts.get("space", "func1pt8mm")
            fmt = "mgh" if space == "fsaverage" else opts.get("fmt", "auto")
            sessions_text = format_sessions(sessions) if sessions else "all on disk"
        elif kind == "algonauts":
            space, fmt, sessions_text = "fsaverage (challenge)", "npy", "-"
        else:
            space, fmt, sessions_text = "simulated", "-", "-"
        state = "embedded" if path is None else ("ok" if Path(path).exists() else "folder missing")
        rows.append(
            {
                "name": name,
                "kind": kind,
                "space": space,
                "format": fmt,
                "subjects": " ".join(subjects) if subjects else "all",
                "sessions": sessions_text,
                "path": path or "-",
                "state": state,
            }
        )
    return rows


def _list(args: argparse.Namespace) -> int:
    rows = dataset_rows()
    columns = ["name", "kind", "space", "format", "subjects", "sessions", "path", "state"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())
    return 0


def _remove(args: argparse.Namespace) -> int:
    from core.data.registry import unregister

    out = unregister(args.name, purge=args.purge)
    print(f"removed dataset {args.name!r} ({out['entry']['kind']} at {out['entry']['path']})")
    for path in out["removed"]:
        print(f"  deleted {path}")
    print("  the dataset's own folder was not touched")
    return 0


def _load(args: argparse.Namespace) -> int:
    """Load every uncached subject (or ``--subjects``) once, printing progress per session; each
    subject is opened afresh and dropped once cached, so the peak is one subject's."""
    import gc
    import time

    from core.data.nsd_cache import pending_subjects
    from core.data.registry import configured, open_dataset

    def progress(subject: str, done: int, total: int) -> None:
        print(f"\r{subject}: session {done}/{total} read", end="", flush=True)

    def opened():
        kind = configured().get(args.name, {}).get("kind")
        return open_dataset(args.name, **({"progress": progress} if kind == "nsd" else {}))

    ds = opened()
    subjects = args.subjects or pending_subjects(ds)
    if not subjects:
        print(f"{args.name}: every subject is cached already")
        return 0
    print(f"{args.name}: first load of {len(subjects)} subject(s): {', '.join(subjects)}",
          flush=True)  # fmt: skip
    t_all = time.perf_counter()
    for k, subject in enumerate(subjects, start=1):
        t0 = time.perf_counter()
        data = (ds if k == 1 else opened()).subject(subject)
        print(f"\n{subject}: loaded and cached in {time.perf_counter() - t0:.1f} s "
              f"({data.responses.shape[0]} images x {data.n_targets} targets; {k}/{len(subjects)})",
              flush=True)  # fmt: skip
        del data
        ds = None
        gc.collect()
    print(f"{args.name}: done in {time.perf_counter() - t_all:.1f} s")
    return 0
