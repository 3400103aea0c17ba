"""Benchmark: our eigh RidgeCV solver against himalaya's RidgeCV, same data, same run.

Usage::

    python benchmarks/ridge.py --quick          # n 1000, p 256, 5000 targets (about a minute)
    python benchmarks/ridge.py                  # n 2000, p 768, 20000 targets (2-core size)
    python benchmarks/ridge.py --device cuda    # NSD scale: n 9000, p 4096 and 768, 39548 targets

Prints one row per (problem, alpha count): both solvers' wall times, the speedup, the share of
targets whose selected alpha is identical, and the largest difference in test-set Pearson r.
On CUDA a TF32 row is added. Data are synthetic (z-scored Gaussian features, targets with
signal-to-noise ratios from 0 to 1.5), float32, 5 contiguous folds, fit_intercept=False.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.encoding.alphas import alpha_grid  # noqa: E402
from core.encoding.estimator import fit_himalaya_ridge_cv  # noqa: E402
from core.encoding.ridge import solve_ridge_cv_eigh  # noqa: E402


def make_data(n: int, p: int, t: int, n_test: int, seed: int = 0):
    """Synthetic z-scored features and targets, float32: (X, Y, X_test, Y_test)."""
    rng = np.random.default_rng(seed)
    m = n + n_test
    X = rng.standard_normal((m, p), dtype=np.float32)
    W = rng.standard_normal((p, t), dtype=np.float32) / np.float32(np.sqrt(p))
    Y = X @ W
    Y /= Y.std(0)
    Y *= np.linspace(0, 1.5, t, dtype=np.float32)
    Y += rng.standard_normal((m, t), dtype=np.float32)
    return X[:n], Y[:n], X[n:], Y[n:]


def test_r(Xt: np.ndarray, Yt: np.ndarray, coef: np.ndarray, device: str) -> np.ndarray:
    """Per-target Pearson r of Xt @ coef with Yt (on the GPU when there is one)."""
    if device == "cuda":
        import torch

        x, y, w = (torch.as_tensor(a, device="cuda") for a in (Xt, Yt, coef))
        pred = x @ w
        pred, y = pred - pred.mean(0), y - y.mean(0)
        r = (pred * y).sum(0) / torch.sqrt((pred**2).sum(0) * (y**2).sum(0))
        return r.double().cpu().numpy()
    pred = (Xt @ coef).astype(np.float64)
    pred -= pred.mean(0)
    y = Yt - Yt.mean(0)
    return (pred * y).sum(0) / np.sqrt((pred**2).sum(0) * (y**2).sum(0))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(n: int, p: int, t: int, n_alphas_list: list[int], device: str, n_targets_batch: int |
        None) -> list[dict]:
    backend = "torch_cuda" if device == "cuda" else "numpy"
    X, Y, Xt, Yt = make_data(n, p, t, max(100, n // 4))
    # warm-up (imports, CUDA context, BLAS threads) on a tiny problem
    solve_ridge_cv_eigh(X[:200, :16], Y[:200, :8], [1.0, 10.0], backend=backend)
    fit_himalaya_ridge_cv(X[:200, :16], Y[:200, :8], np.array([1.0, 10.0]), backend=backend)
    rows = []
    for n_alphas in n_alphas_list:
        alphas = np.logspace(1, 4, n_alphas) if n_alphas not in (20, 60) else alpha_grid(
            "fast" if n_alphas == 20 else "paper")
        ref, t_ref = timed(lambda a=alphas: fit_himalaya_ridge_cv(
            X, Y, a, backend=backend, n_targets_batch=n_targets_batch))
        r_ref = test_r(Xt, Yt, ref[1], device)
        variants = [("fp32", False)] + ([("tf32", True)] if device == "cuda" else [])
        for label, tf32 in variants:
            ours, t_ours = timed(lambda a=alphas, tf=tf32: solve_ridge_cv_eigh(
                X, Y, a, backend=backend, tf32=tf, n_targets_batch=n_targets_batch))
            r_ours = test_r(Xt, Yt, ours.coef, device)
            rows.append({
                "n": n, "p": p, "targets": t, "alphas": n_alphas, "ours": label,
                "himalaya_s": t_ref, "ours_s": t_ours, "speedup": t_ref / t_ours,
                "same_alpha_%": 100 * float(np.mean(ours.best_alphas == ref[0])),
                "max_dr": float(np.abs(r_ours - r_ref).max()),
            })
            print_rows(rows[-1:], header=len(rows) == 1 and n_alphas == n_alphas_list[0])
        del ref
    return rows


def print_rows(rows: list[dict], header: bool) -> None:
    cols = ["n", "p", "targets", "alphas", "ours", "himalaya_s", "ours_s", "speedup",
            "same_alpha_%", "max_dr"]
    if header:
        print(" | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c in ("himalaya_s", "ours_s"):
                cells.append(f"{v:12.2f}")
            elif c == "speedup":
                cells.append(f"{v:11.1f}x")
            elif c == "same_alpha_%":
                cells.append(f"{v:12.3f}")
            elif c == "max_dr":
                cells.append(f"{v:12.1e}")
            else:
                cells.append(f"{v!s:>12}")
        print(" | ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n 1000, p 256, 5000 targets")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int)
    parser.add_argument("--p", type=int, nargs="+")
    parser.add_argument("--targets", type=int)
    parser.add_argument("--alphas", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--n-targets-batch", type=int, default=None)
    args = parser.parse_args(argv)
    if args.device == "cuda":
        n, ps, t = 9000, [4096, 768], 39548
    elif args.quick:
        n, ps, t = 1000, [256], 5000
    else:
        n, ps, t = 2000, [768], 20000
    n = args.n or n
    ps = args.p or ps
    t = args.targets or t
    import os

    print(f"# device={args.device} cpu_count={os.cpu_count()} float32, 5 folds, "
          "himalaya RidgeCV vs core.encoding eigh solver, same data, same process")
    for p in ps:
        run(n, p, t, args.alphas, args.device, args.n_targets_batch)


if __name__ == "__main__":
    main()
