"""Benchmark: our eigh RidgeCV solver against himalaya's RidgeCV, same data, same run.

Usage::

    python benchmarks/ridge.py --quick          # n 1000, p 256, 5000 targets (about a minute)
    python benchmarks/ridge.py                  # n 2000, p 768, 20000 targets (2-core size)
    python benchmarks/ridge.py --device cuda    # NSD scale: n 9000, p 4096 and 768, 39548 targets
    python benchmarks/ridge.py --memory         # ours alone at NSD scale on CPU: time, peak RSS

Prints one row per (problem, alpha count, score path): both solvers' wall times, the speedup,
the share of targets whose selected alpha is identical, the largest difference in test-set
Pearson r where the alphas agree (``max_dr``) and over all targets (``max_dr_all``), and, for the
targets where the alphas differ, how many of ours and of himalaya's float32 choices match
himalaya run in float64 on those targets (``ties_ours/ref``: a mismatch that float64 settles in
our favour is himalaya's float32 round-off). Then how each solver's time grows from the first
to the last alpha count. On CUDA a TF32 row is added. Data are synthetic (z-scored Gaussian
features, targets with signal-to-noise ratios from 0 to 1.5), float32, 5 contiguous folds,
fit_intercept=False.
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


def settle_mismatches(X, Y, alphas, ours_alphas, ref_alphas) -> str:
    """``"k_ours/k_ref of m"``: of the m targets whose alphas differ, how many of each solver's
    choices equal himalaya's float64 choice (computed on those targets only)."""
    diff = np.flatnonzero(ours_alphas != ref_alphas)
    if diff.size == 0:
        return "-"
    truth = fit_himalaya_ridge_cv(X.astype(np.float64), Y[:, diff].astype(np.float64), alphas,
                                  backend="numpy")[0]

    def grid_index(a):
        return np.abs(np.log(np.asarray(a, float))[:, None] - np.log(alphas)[None]).argmin(1)

    k_ours = int(np.sum(grid_index(ours_alphas[diff]) == grid_index(truth)))
    k_ref = int(np.sum(grid_index(ref_alphas[diff]) == grid_index(truth)))
    return f"{k_ours}/{k_ref} of {diff.size}"


def run(n: int, p: int, t: int, n_alphas_list: list[int], device: str, n_targets_batch: int |
        None, paths: list[str]) -> list[dict]:
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
            for path in paths:
                ours, t_ours = timed(lambda a=alphas, tf=tf32, sp=path: solve_ridge_cv_eigh(
                    X, Y, a, backend=backend, tf32=tf, n_targets_batch=n_targets_batch,
                    score_path=sp))
                r_ours = test_r(Xt, Yt, ours.coef, device)
                same = ours.best_alphas == ref[0]
                dr = np.abs(r_ours - r_ref)
                rows.append({
                    "n": n, "p": p, "targets": t, "alphas": n_alphas, "ours": f"{label} {path}",
                    "himalaya_s": t_ref, "ours_s": t_ours, "speedup": t_ref / t_ours,
                    "same_alpha_%": 100 * float(np.mean(same)),
                    "max_dr": float(dr[same].max()) if same.any() else float("nan"),
                    "max_dr_all": float(dr.max()),
                    "ties_ours/ref": settle_mismatches(X, Y, alphas, ours.best_alphas, ref[0]),
                })
                print_rows(rows[-1:], header=len(rows) == 1)
        del ref
    return rows


def print_rows(rows: list[dict], header: bool) -> None:
    cols = ["n", "p", "targets", "alphas", "ours", "himalaya_s", "ours_s", "speedup",
            "same_alpha_%", "max_dr", "max_dr_all", "ties_ours/ref"]
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
            elif c in ("max_dr", "max_dr_all"):
                cells.append(f"{v:12.1e}")
            else:
                cells.append(f"{v!s:>12}")
        print(" | ".join(cells), flush=True)


def memory_run(n: int, p: int, t: int, n_alphas: int) -> None:
    """Ours alone on one NSD-sized subject, in a child process: wall time and peak RSS.

    ``peak`` is the process's maximum RSS, ``before`` the maximum before the solve started
    (data generation has its own temporaries): when ``peak > before`` the solve set the peak.
    ``solve`` is the peak of the arrays the solve itself allocated (tracemalloc: numpy and
    scipy arrays, the returned coefficients included; not BLAS-internal buffers). The inputs
    (X and Y, float32) are listed apart.
    """
    import json
    import subprocess

    code = f"""
import json, resource, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import numpy as np
from ridge import make_data
from core.encoding.alphas import alpha_grid
from core.encoding.ridge import solve_ridge_cv_eigh
X, Y, _, _ = make_data({n}, {p}, {t}, 1)
import tracemalloc
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
res = solve_ridge_cv_eigh(X, Y, alpha_grid("fast") if {n_alphas} == 20 else alpha_grid("paper"),
                          backend="numpy")
print(json.dumps({{"s": time.perf_counter() - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_mib": base / 1024,
                  "solve_mib": tracemalloc.get_traced_memory()[1] / 2**20,
                  "inputs_mib": (X.nbytes + Y.nbytes) / 2**20,
                  "coef_mib": res.coef.nbytes / 2**20}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{n:>6} | {p:>5} | {t:>7} | {n_alphas:>6} | {m['s']:8.1f} | {m['before_mib']:10.0f} | "
          f"{m['peak_mib']:9.0f} | {m['solve_mib']:9.0f} | {m['inputs_mib']:10.0f} | "
          f"{m['coef_mib']:8.0f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n 1000, p 256, 5000 targets")
    parser.add_argument("--memory", action="store_true",
                        help="ours alone at NSD scale on CPU (n 9000, 39548 targets): time and "
                             "peak RSS against the 24 GB host budget")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int)
    parser.add_argument("--p", type=int, nargs="+")
    parser.add_argument("--targets", type=int)
    parser.add_argument("--alphas", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--n-targets-batch", type=int, default=None)
    parser.add_argument("--paths", nargs="+", default=["auto"],
                        choices=["auto", "rational", "direct"], help="our score path(s)")
    args = parser.parse_args(argv)
    if args.memory:
        print("# ours alone, numpy backend, default target batching; peak = process max RSS")
        print("     n |     p | targets | alphas |   time_s | before_MiB |  peak_MiB | solve_MiB "
              "| inputs_MiB | coef_MiB")
        for p in args.p or [768, 4096]:
            memory_run(args.n or 9000, p, args.targets or 39548, args.alphas[0])
        return
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
        rows = run(n, p, t, args.alphas, args.device, args.n_targets_batch, args.paths)
        print_growth(rows)


def print_growth(rows: list[dict]) -> None:
    """How each solver's time grows from the smallest to the largest alpha count."""
    counts = sorted({r["alphas"] for r in rows})
    if len(counts) < 2:
        return
    lo, hi = counts[0], counts[-1]
    print(f"# growth from {lo} to {hi} alphas (time ratio):")
    for label in dict.fromkeys(r["ours"] for r in rows):
        a = next(r for r in rows if r["alphas"] == lo and r["ours"] == label)
        b = next(r for r in rows if r["alphas"] == hi and r["ours"] == label)
        print(f"#   himalaya x{b['himalaya_s'] / a['himalaya_s']:.2f}   "
              f"ours ({label}) x{b['ours_s'] / a['ours_s']:.2f}")


if __name__ == "__main__":
    main()
