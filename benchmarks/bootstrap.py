"""Benchmark: the vectorised bootstrap over test images against a per-resample loop, same run.

Usage::

    python benchmarks/bootstrap.py            # 10 instructions x 20,000 targets x 1,000 images
                                              # x 1,000 resamples (the issue-21 size)
    python benchmarks/bootstrap.py --quick    # 3 instructions x 4,000 targets (seconds)
    python benchmarks/bootstrap.py --bca      # add a row with the jackknife rows BCa needs
    python benchmarks/bootstrap.py --backend torch_cuda   # vectorised rows on a GPU (float64)

Prints one row per method: wall time, time per resample, peak memory and the largest
difference from the loop on the resamples the loop ran.

* ``vectorised``: :func:`core.encoding.bootstrap.bootstrap_roi_scores` (one count-matrix
  product per target block, float64, default block size), ROI means of r and r/sqrt(NC).
* ``loop``: the textbook way: for each resample, index the test rows of the responses and of
  each instruction's predictions, recompute every target's Pearson r (float64, centred), take
  the ROI means. It is timed on ``--loop-resamples`` resamples (default 3) and **extrapolated**
  linearly to all resamples (its cost is exactly linear in the resample count); the table says so.

Memory: ``work_MiB`` is the peak of the arrays the method allocated (tracemalloc: numpy
arrays, not BLAS-internal buffers; with ``--backend torch_cuda`` plus torch's peak GPU
allocation; torch CPU tensors are not counted), the inputs excluded; ``rss_MiB`` is the process's peak
RSS after the method ran (inputs included, listed apart in the header). Data are synthetic:
float32 responses, predictions ``a * y + noise`` with a different ``a`` per instruction,
20 ROIs of contiguous targets, noise ceilings uniform in [0.1, 1].
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.encoding.bootstrap import bootstrap_roi_scores, resample_indices  # noqa: E402


def make_data(n_instructions: int, n_test: int, n_targets: int, n_rois: int, seed: int = 0):
    """Responses (n_test, n_targets), predictions (n_instr, n_test, n_targets), masks, nc."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n_test, n_targets), dtype=np.float32)
    pred = np.empty((n_instructions, n_test, n_targets), dtype=np.float32)
    for i in range(n_instructions):
        pred[i] = rng.standard_normal((n_test, n_targets), dtype=np.float32)
        pred[i] += np.float32(0.1 + 0.05 * i) * y
    edges = np.linspace(0, n_targets, n_rois + 1).astype(int)
    idx = np.arange(n_targets)
    masks = {f"roi{k:02d}": (idx >= edges[k]) & (idx < edges[k + 1]) for k in range(n_rois)}
    nc = rng.uniform(0.1, 1.0, n_targets)
    return y, pred, masks, nc


def loop_roi_means(y, pred, masks, nc, indices):
    """Per-resample loop: (n_instr, len(indices), n_rois) ROI means of r, and of r/sqrt(nc)."""
    w = np.stack(list(masks.values())).T.astype(np.float64)
    w /= w.sum(0)
    w_norm = w / np.sqrt(nc)[:, None]
    out_r = np.empty((pred.shape[0], len(indices), w.shape[1]))
    out_n = np.empty_like(out_r)
    for b, rows in enumerate(indices):
        yb = y[rows].astype(np.float64)
        yb -= yb.mean(0)
        ss_y = np.einsum("ij,ij->j", yb, yb)
        for i in range(pred.shape[0]):
            pb = pred[i][rows].astype(np.float64)
            pb -= pb.mean(0)
            r = np.einsum("ij,ij->j", yb, pb) / np.sqrt(ss_y * np.einsum("ij,ij->j", pb, pb))
            out_r[i, b] = r @ w
            out_n[i, b] = r @ w_norm
    return out_r, out_n


def measured(fn, cuda: bool = False):
    """Run ``fn``; return (result, seconds, peak MiB of its arrays, peak RSS MiB after).

    The array peak is tracemalloc's (numpy) plus, with ``cuda``, torch's peak GPU allocation.
    """
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    if cuda:
        peak += torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out, seconds, peak, rss


def print_row(cols: list[str], row: dict, header: bool) -> None:
    if header:
        print(" | ".join(f"{c:>14}" for c in cols))
    cells = []
    for c in cols:
        v = row[c]
        if isinstance(v, float):
            cells.append(f"{v:14.3g}" if c in ("max_diff",) else f"{v:14.2f}")
        else:
            cells.append(f"{v!s:>14}")
    print(" | ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 instructions x 4,000 targets")
    parser.add_argument("--instructions", type=int)
    parser.add_argument("--targets", type=int)
    parser.add_argument("--test", type=int, default=1000, help="test images")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--rois", type=int, default=20)
    parser.add_argument("--loop-resamples", type=int, default=3,
                        help="resamples the loop is timed on (then extrapolated)")
    parser.add_argument("--bca", action="store_true", help="add the jackknife (BCa) row")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch", "torch_cuda"],
                        help="backend of the vectorised rows (the loop is numpy)")
    args = parser.parse_args(argv)
    n_instr = args.instructions or (3 if args.quick else 10)
    n_targets = args.targets or (4000 if args.quick else 20000)
    y, pred, masks, nc = make_data(n_instr, args.test, n_targets, args.rois)
    try:
        from threadpoolctl import threadpool_info

        blas = max((p.get("num_threads", 0) for p in threadpool_info()), default="?")
    except ImportError:  # pragma: no cover
        blas = "?"
    print(f"# {n_instr} instructions x {n_targets} targets x {args.test} test images x "
          f"{args.resamples} resamples, {args.rois} ROIs; cpu_count={os.cpu_count()}, "
          f"BLAS threads={blas}; backend={args.backend}; inputs {(y.nbytes + pred.nbytes) / 2**20:.0f} MiB (float32)")
    cols = ["method", "resamples_run", "seconds", "ms_per_resample", "work_MiB", "rss_MiB",
            "max_diff"]
    runs = [("vectorised", False)] + ([("vectorised+jack", True)] if args.bca else [])
    # warm-up (imports, BLAS threads) on a tiny problem
    bootstrap_roi_scores(y[:, :50], pred[:2, :, :50], {"w": np.ones(50, bool)}, n_boot=10,
                         backend=args.backend)
    results, seconds = {}, {}
    for label, jack in runs:
        scores, sec, peak, rss = measured(lambda j=jack: bootstrap_roi_scores(
            y, pred, masks, noise_ceiling=nc, n_boot=args.resamples, seed=0, jackknife=j,
            backend=args.backend), cuda=args.backend == "torch_cuda")
        results[label], seconds[label] = scores, sec
        print_row(cols, {"method": label, "resamples_run": args.resamples, "seconds": sec,
                         "ms_per_resample": 1e3 * sec / args.resamples, "work_MiB": peak,
                         "rss_MiB": rss, "max_diff": float("nan")}, header=label == "vectorised")
    k = args.loop_resamples
    indices = resample_indices(args.test, args.resamples, seed=0)[:k]
    (loop_r, loop_n), sec, peak, rss = measured(
        lambda: loop_roi_means(y, pred, masks, nc, indices))
    vec = results["vectorised"]
    diff = max(np.abs(vec.r[:, :k] - loop_r).max(), np.abs(vec.normalized[:, :k] - loop_n).max())
    per = sec / k
    print_row(cols, {"method": "loop (timed)", "resamples_run": k, "seconds": sec,
                     "ms_per_resample": 1e3 * per, "work_MiB": peak, "rss_MiB": rss,
                     "max_diff": float(diff)}, header=False)
    print_row(cols, {"method": "loop (extrap.)", "resamples_run": args.resamples,
                     "seconds": per * args.resamples, "ms_per_resample": 1e3 * per,
                     "work_MiB": peak, "rss_MiB": rss, "max_diff": float("nan")}, header=False)
    print(f"# loop extrapolated linearly from {k} timed resamples to {args.resamples}; "
          f"speedup of the vectorised bootstrap {per * args.resamples / seconds['vectorised']:.0f}x; "
          "max_diff = largest |vectorised - loop| over those resamples (r and r/sqrt(NC))")


if __name__ == "__main__":
    main()
