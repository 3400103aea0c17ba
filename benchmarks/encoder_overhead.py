"""Benchmark: the cost of our encoder wrapper over calling the solvers directly (issue 5 §9).

``RidgeEncoder`` adds train-only z-scoring, input checks and bookkeeping around a solver. This
times, on the same data in the same run:

- himalaya ``RidgeCV`` called directly on already z-scored data, against
  ``RidgeEncoder(solver="himalaya")`` fitted on the raw data (z-scoring included);
- our ``solve_ridge_cv_eigh`` called directly, against ``RidgeEncoder(solver="eigh")``.

Usage::

    python benchmarks/encoder_overhead.py            # n 1000, p 256, 5000 targets, 20 alphas
    python benchmarks/encoder_overhead.py --n 2000 --p 768 --targets 20000

Each timing is the best of ``--repeats`` runs. Target: overhead at most 5%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.encoding.alphas import alpha_grid  # noqa: E402
from core.encoding.estimator import RidgeEncoder  # noqa: E402
from core.encoding.ridge import solve_ridge_cv_eigh  # noqa: E402


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--p", type=int, default=256)
    ap.add_argument("--targets", type=int, default=5000)
    ap.add_argument("--alphas", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.p)).astype(np.float32) * 3 + 1
    Y = (
        X @ rng.standard_normal((args.p, args.targets)).astype(np.float32) * 0.05
        + rng.standard_normal((args.n, args.targets)).astype(np.float32)
    ) * 2 + 5
    alphas = alpha_grid("fast") if args.alphas == 20 else np.logspace(1, 4, args.alphas)
    Xz = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    Yz = ((Y - Y.mean(0)) / Y.std(0)).astype(np.float32)

    rows = []
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    set_backend("numpy")
    direct = best_of(
        lambda: RidgeCV(alphas=alphas, cv=5, fit_intercept=False).fit(Xz, Yz), args.repeats
    )
    wrapped = best_of(
        lambda: RidgeEncoder(alphas=alphas, solver="himalaya", backend="numpy").fit(X, Y),
        args.repeats,
    )
    rows.append(("himalaya RidgeCV", direct, wrapped))
    direct = best_of(
        lambda: solve_ridge_cv_eigh(Xz, Yz, alphas, cv=5, backend="numpy"), args.repeats
    )
    wrapped = best_of(
        lambda: RidgeEncoder(alphas=alphas, solver="eigh", backend="numpy").fit(X, Y), args.repeats
    )
    rows.append(("eigh solver", direct, wrapped))

    print(
        f"n {args.n}, p {args.p}, targets {args.targets}, alphas {len(alphas)}, "
        f"best of {args.repeats}"
    )
    print(f"{'solver':<18} {'direct (s)':>11} {'RidgeEncoder (s)':>17} {'overhead':>9}")
    for name, d, w in rows:
        print(f"{name:<18} {d:>11.3f} {w:>17.3f} {100 * (w - d) / d:>8.1f}%")


if __name__ == "__main__":
    main()
