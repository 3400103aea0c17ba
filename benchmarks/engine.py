"""Engine overhead: the same grid on ``--engine local`` and ``--engine ray``, each from a cold
store in its own scratch home, plus the scaling model ``run --dry-run`` uses.

Usage::

    python benchmarks/engine.py                       # small demo, demo-vlm + twin + tower
    python benchmarks/engine.py --size default        # the full demo grid (~10 min per engine)
    python benchmarks/engine.py --models tiny         # a tiny random LLaVA (fast smoke run)

Prints one table: per engine, extraction / fits+partitions / total seconds and throughput
(responses/s, fits/s), and Ray's overhead as a ratio to local measured in the same run
(target: <= 1.5x on 2 cores). Results are also written beside the scratch homes (bp-engine.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run_engine(engine: str, size: str, models: list[str], layers: list[str]) -> dict:
    """One cold run in a scratch home (demo build not timed); returns timings."""
    home = Path(tempfile.mkdtemp(prefix=f"bp-engine-{engine}-"))
    env = {**os.environ, "BRAINPROMPT_HOME": str(home)}
    py = [sys.executable, "-m", "core"]
    subprocess.run([*py, "demo", "build", "--size", size, "--quiet"], cwd=REPO, env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    if models == ["tiny"]:
        code = ("from core.models.tiny import build_llava; from core.models.registry import "
                f"register_local; register_local('tiny-llava', build_llava({str(home)!r} + "
                "'/tiny', seed=0))")  # fmt: skip
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)
        models = ["tiny-llava", "random:tiny-llava", "vision:tiny-llava"]
    args = [*py, "run", "--dataset", "demo", "--engine", engine, "--quiet", "--models", *models]
    if layers:
        args += ["--layers", *layers]
    t0 = time.perf_counter()
    out = subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    total = time.perf_counter() - t0
    grid = json.loads((home / "results" / "demo" / "grid.json").read_text())
    del out
    return {
        "engine": engine,
        "total_s": round(total, 1),
        "extract_s": grid["seconds_extract"],
        "fit_s": round(grid["seconds_total"] - grid["seconds_extract"], 1),
        "n_fits": grid["n_fits"],
        "home": str(home),
    }


def _responses(home: str) -> int:
    n = 0
    for manifest in Path(home, "features").rglob("manifest.json"):
        n += sum(c["n"] for c in json.loads(manifest.read_text())["chunks"])
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "default"], default="small")
    parser.add_argument("--models", nargs="+",
                        default=["demo-vlm", "random:demo-vlm", "vision:demo-vlm"])  # fmt: skip
    parser.add_argument("--layers", nargs="*", default=[], help="default: all layers")
    args = parser.parse_args()
    rows = [_run_engine(e, args.size, args.models, args.layers) for e in ("local", "ray")]
    for row in rows:
        row["responses"] = _responses(row["home"])
        row["responses_per_s"] = round(row["responses"] / max(row["extract_s"], 1e-9), 1)
        row["fits_per_s"] = round(row["n_fits"] / max(row["fit_s"], 1e-9), 2)
    local = rows[0]
    print(f"demo ({args.size}) grid, models {' '.join(args.models)}, {os.cpu_count()} cores")
    print(f"{'engine':<7} {'extract s':>10} {'fits+parts s':>13} {'total s':>9} "
          f"{'resp/s':>8} {'fits/s':>7} {'vs local':>9}")  # fmt: skip
    for row in rows:
        ratio = row["total_s"] / local["total_s"]
        print(f"{row['engine']:<7} {row['extract_s']:>10} {row['fit_s']:>13} {row['total_s']:>9} "
              f"{row['responses_per_s']:>8} {row['fits_per_s']:>7} {ratio:>8.2f}x")  # fmt: skip
    print("target: ray <= 1.5x local on 2 cores (includes Ray's start-up and worker imports)")
    out = Path(rows[0]["home"]).parent / "bp-engine.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
