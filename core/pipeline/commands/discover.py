"""``python -m core discover``: search for the instruction that best predicts an ROI (or a
contrast, or a target set), within a budget of responses (see :mod:`core.pipeline.discover`).

Examples::

    python -m core discover --dataset demo --model demo-vlm --roi LOC --budget 30000
    python -m core discover --dataset demo --roi FFA --contrast PPA --candidates pool
    python -m core discover --dataset demo --roi FFA --candidates my_prompts.txt --out ffa.json
    python -m core discover --dataset demo --add KEY --rank 1     # a finalist onto Compare
"""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    """Add the ``discover`` sub-command."""
    p = sub.add_parser(
        "discover",
        help="search candidate instructions for the one that best predicts an ROI (budgeted, "
        "resumable; chosen by CV on training images, reported once on test)",
        description="Screen candidates (pool, a file, generated templates) on subsets of the "
        "training images by successive halving, fully extract and fit the finalists and the "
        "paper's 10, choose by the cross-validated training score and report the choice on "
        "the test images with bootstrap intervals. The result is stored under "
        "<home>/results/<dataset>/discover/<key>.json; a rerun reads it, a killed run resumes.",
    )
    p.add_argument("--dataset", default="demo")
    p.add_argument("--model", default="demo-vlm", help="a generative model (default: demo-vlm)")
    p.add_argument("--roi", help="the ROI whose normalized alignment is maximised")
    p.add_argument("--contrast", help="a second ROI: maximise ROI minus this one")
    p.add_argument("--targets", help="a custom target set: JSON {subject: [target indices]}")
    p.add_argument(
        "--candidates",
        default="pool+generated",
        help="parts joined by '+': pool, paper, generated, or a file (one instruction per "
        "line, optional 'task<TAB>text'); default pool+generated",
    )
    p.add_argument("--generated", type=int, default=32, help="template candidates (default 32)")
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help="most new responses to generate; picks the largest first round that fits "
        "(default: a first round of 100 images)",
    )
    p.add_argument("--first-round", type=int, default=None, help="images in round 0")
    p.add_argument("--eta", type=int, default=3, help="keep 1/eta per round (default 3)")
    p.add_argument("--finalists", type=int, default=4, help="fully fitted candidates (default 4)")
    p.add_argument("--layer", type=int, default=None,
                   help="hidden-state index (default: the grid's CV-best layer, else the last)")
    p.add_argument("--subjects", nargs="+", default=None)
    p.add_argument("--seed", type=int, default=0, help="seeds the training-image subsets")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-text-similarity", action="store_true",
                   help="skip the text-vs-map similarity analysis")
    p.add_argument("--out", help="also write the result JSON here")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost only")
    p.add_argument("--force", action="store_true",
                   help="recompute the result (stored rounds, embeddings and fits are reused)")
    p.add_argument("--add", metavar="KEY",
                   help="put a stored search's finalist (--rank) into the results table, so the "
                   "Compare instructions page shows it")
    p.add_argument("--rank", type=int, default=1, help="with --add: the leaderboard rank")
    p.add_argument("--quiet", action="store_true")
    from core.pipeline.commands.grid import add_engine_options

    add_engine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run, read or resume a search; prints the leaderboard's top and the gain."""
    from core.pipeline.cli import UserError
    from core.pipeline.discover import (
        DiscoverConfig,
        Objective,
        add_to_compare,
        read_targets,
        run_discover,
    )

    if args.add:
        rows = add_to_compare(args.dataset, args.add, args.rank)
        print(f"added {rows['instruction'].iloc[0]!r} ({len(rows)} ROI rows) to the results "
              f"table of {args.dataset}")  # fmt: skip
        return 0
    if args.dataset == "demo":
        from core.data.demo.build import ensure_demo

        ensure_demo(progress=not args.quiet)
    if args.targets:
        objective = Objective(targets=read_targets(args.targets))
    elif args.roi:
        objective = Objective(roi=args.roi, contrast=args.contrast)
    else:
        raise UserError("give --roi ROI (optionally --contrast ROI2) or --targets FILE.json")
    config = DiscoverConfig(
        dataset=args.dataset, model=args.model, objective=objective, candidates=args.candidates,
        n_generated=args.generated, budget=args.budget, eta=args.eta, finalists=args.finalists,
        first_round=args.first_round, seed=args.seed, layer=args.layer, subjects=args.subjects,
        engine=args.engine, address=args.address, batch_size=args.batch_size,
        text_similarity=not args.no_text_similarity,
    )  # fmt: skip
    result = run_discover(config, progress=not args.quiet, dry_run=args.dry_run, force=args.force)
    if args.dry_run:
        print(f"search {result['key']}\n{result['plan_text']}")
        return 0
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    print(format_summary(result))
    return 0


def _ci(ci) -> str:
    return "[n/a]" if ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def format_summary(result: dict, top: int = 8) -> str:
    """The leaderboard's top rows, the best paper instruction and the gain, as text."""
    lines = [
        f"search {result['key']}{' (stored)' if result.get('reused') else ''}: "
        f"{result['model']} layer {result['layer']}, objective {result['objective']['label']}, "
        f"{result['n_candidates']} candidates (the winner is the best of "
        f"{result['n_candidates']} by CV on training images)",
        f"responses: planned at most {result['plan']['responses']}, spent "
        f"{result['spent']['responses']} in {result['spent']['seconds']} s",
        "rank  cv      test    [95% CI]            task                      text",
    ]
    for e in result["leaderboard"][:top]:
        test = "   -  " if e["test"] is None else f"{e['test']:.3f}"
        lines.append(f"{e['rank']:>4}  {e['cv']:+.3f}  {test}  {_ci(e['test_ci']):<18}  "
                     f"{e['task'][:24]:<24}  {e['text']}")  # fmt: skip
    pb = result["paper_best"]
    lines.append(f"best paper instruction (same rule): {pb['id']} cv {pb['cv']:+.3f} test "
                 f"{pb['test']:.3f} {_ci(pb['test_ci'])}")  # fmt: skip
    g = result["gain"]
    per = ", ".join(f"{s} {v['difference']:+.3f} {_ci(v['ci'])}" for s, v in g["per_subject"].items())
    lines.append(f"winner - best paper: {g['difference']:+.3f} {_ci(g['ci'])} "
                 f"({'gain claimed' if g['claimed'] else 'no gain claimed'}); per subject: {per}")  # fmt: skip
    new = result.get("best_new")
    if new and new["id"] != result["winner"]:
        lines.append(f"best non-paper finalist (rank {new['rank']}): {new['text']!r} ({new['task']}) "
                     f"- best paper {new['diff_vs_paper']:+.3f} {_ci(new['diff_ci'])}")  # fmt: skip
    sim = result.get("text_similarity") or {}
    if "pearson" in sim:
        lines.append(f"text vs map similarity over {sim['n_pairs']} pairs: r {sim['pearson']:+.3f}, "
                     f"Spearman {sim['spearman']:+.3f}, Mantel p {sim['p_mantel']:.3f}")  # fmt: skip
    return "\n".join(lines)
