"""Instruction search: successive-halving screening vs exhaustive extraction of the same candidates.

Both strategies start from an empty store (each in its own fresh BrainPrompt home holding only a
copy of the dataset, so nothing is reused between them) and use the same layer, fit settings and
selection rule (:mod:`core.pipeline.discover`):

- **screening**: ``python -m core discover`` (cheap CV fits on seeded training subsets, the
  survivors and the paper's 10 fully extracted and fitted);
- **exhaustive**: every candidate fully extracted and fitted (``run_fit``), ranked by the same
  full-fit CV score.

Reported: responses generated, wall time, the winner of each, and the rank agreement of the top 5
(the share of exhaustive's top 5 that screening also ranks in its top 5, and whether screening's
winner is in exhaustive's top 5). Each strategy runs in a subprocess (one BrainPrompt home each).

    .venv/bin/python benchmarks/discover.py                               # LOC, 20 candidates
    .venv/bin/python benchmarks/discover.py --roi FFA --generated 20 --first-round 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _config(args):
    from core.pipeline.discover import DiscoverConfig, Objective

    return DiscoverConfig(dataset=args.dataset, model=args.model,
                          objective=Objective(roi=args.roi, contrast=args.contrast),
                          candidates=args.candidates, n_generated=args.generated,
                          first_round=args.first_round, finalists=args.finalists, eta=args.eta,
                          layer=args.layer, text_similarity=False)  # fmt: skip


def run_strategy(args) -> dict:
    """Inside a subprocess whose BRAINPROMPT_HOME is a fresh copy: one strategy, as JSON."""
    from threadpoolctl import threadpool_limits

    from core.pipeline.discover import _Search, run_discover

    config = _config(args)
    t0 = time.perf_counter()
    if args.strategy == "screening":
        res = run_discover(config, progress=False, log=lambda _: None)
        ranking = [e["id"] for e in res["leaderboard"]]
        cv = {e["id"]: e["cv"] for e in res["leaderboard"] if e["full_fit"]}
        return {"responses": res["spent"]["responses"], "seconds": time.perf_counter() - t0,
                "ranking": ranking, "cv": cv, "layer": res["layer"],
                "n_candidates": res["n_candidates"],
                "texts": {e["id"]: e["text"] for e in res["leaderboard"]}}  # fmt: skip
    with threadpool_limits(config.fit_threads):
        search = _Search(config, progress=False, log=lambda _: None)
        instructions = [c.instruction for c in search.candidates]
        ids = {i.id for i in instructions}
        instructions += [p for p in search.paper if p.id not in ids]  # the same comparison set
        spent = search.extract(instructions, search.full_ids, "exhaustive")
        cv = {i.id: float(search.full_fit(i)["cv"].mean()) for i in instructions}
    ranking = sorted(cv, key=lambda k: -cv[k])
    return {"responses": spent, "seconds": time.perf_counter() - t0, "ranking": ranking, "cv": cv,
            "layer": search.layer, "n_candidates": len(instructions),
            "texts": {i.id: i.text for i in instructions}}  # fmt: skip


def fresh_home(dataset: str) -> Path:
    """A new BrainPrompt home holding a copy of the dataset folder (demo worlds) only."""
    from core.config import home

    src = home() / "datasets" / dataset
    if not src.exists():
        raise SystemExit(f"{src} does not exist: build the demo first (python -m core demo ensure)")
    dst = Path(tempfile.mkdtemp(prefix="bp-discover-bench-"))
    shutil.copytree(src, dst / "datasets" / dataset)
    return dst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="demo")
    p.add_argument("--model", default="demo-vlm")
    p.add_argument("--roi", default="LOC")
    p.add_argument("--contrast", default=None)
    p.add_argument("--candidates", default="paper+generated")
    p.add_argument("--generated", type=int, default=10)
    p.add_argument("--first-round", type=int, default=100)
    p.add_argument("--finalists", type=int, default=4)
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--layer", type=int, default=None)
    p.add_argument("--strategy", choices=["screening", "exhaustive"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.strategy:  # the child
        print("RESULT " + json.dumps(run_strategy(args)))
        return 0
    out = {}
    for strategy in ("screening", "exhaustive"):
        h = fresh_home(args.dataset)
        try:
            argv = [sys.executable, __file__, *sys.argv[1:], "--strategy", strategy]
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                                  env={**os.environ, "BRAINPROMPT_HOME": str(h)})  # fmt: skip
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                return 1
            out[strategy] = json.loads(line[0][7:])
        finally:
            shutil.rmtree(h, ignore_errors=True)
    s, e = out["screening"], out["exhaustive"]
    top_e, top_s = e["ranking"][:5], s["ranking"][:5]
    overlap = len(set(top_e) & set(top_s))
    print(f"dataset {args.dataset}, model {args.model}, objective {args.roi}"
          f"{' - ' + args.contrast if args.contrast else ''}, layer {s['layer']}, "
          f"{s['n_candidates']} candidates, first round {args.first_round} images, "
          f"eta {args.eta}, {args.finalists} finalists")  # fmt: skip
    print("| strategy | responses | wall time (s) | winner |")
    print("|---|---|---|---|")
    for name, r in (("exhaustive (reference)", e), ("screening", s)):
        print(f"| {name} | {r['responses']} | {r['seconds']:.0f} | {r['texts'][r['ranking'][0]]} |")
    print(f"responses saved: {1 - s['responses'] / max(e['responses'], 1):.0%}; wall time "
          f"{e['seconds'] / max(s['seconds'], 1e-9):.1f}x faster")  # fmt: skip
    print(f"top-5 agreement: {overlap}/5 of exhaustive's top 5 in screening's top 5; screening's "
          f"winner is exhaustive's #{e['ranking'].index(s['ranking'][0]) + 1}")  # fmt: skip
    print("exhaustive top 5 (full-fit CV): " + "; ".join(
        f"{e['texts'][k]} ({e['cv'][k]:+.3f})" for k in top_e))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
