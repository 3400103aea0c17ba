"""Benchmark: load one NSD subject from fixtures scaled up (40 sessions, a reduced voxel count).

Writes an NSD folder in the exact formats (``tests/data/fixtures_nsd.py``) with one subject, 40
sessions of (X, Y, Z, 750) int16 betas and a realistic design (10,000 images x 3 repetitions over
30,000 trials), then measures, each in a fresh process:

- the first load (stream 40 sessions, z-score, average repetitions, write the compact cache);
- a cached load;

reporting wall time, peak RSS above the interpreter's baseline and tracemalloc's peak, and a
projection for a full subject (81 x 104 x 83 volume, 15,724 nsdgeneral voxels) from the measured
decompression throughput and the memory model
``output (10,000 x targets x 4 B) + one session (750 x targets x 4 B) + one chunk of full volumes``.

Usage::

    .venv/bin/python benchmarks/load_nsd.py [--shape 16 16 16] [--sessions 40] [--format nifti]
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "data"))

FULL = {"shape": (81, 104, 83), "targets": 15724, "sessions": 40, "images": 10000}
CHUNK = 50


def write_folder(root: Path, shape: tuple[int, int, int], sessions: int, fmt: str) -> dict:
    import scipy.io
    from fixtures_nsd import write_nsd

    t0 = time.perf_counter()
    write_nsd(
        root,
        subjects=("subj01",),
        sessions=tuple(range(1, sessions + 1)),
        volume_formats=(fmt,),
        fsaverage_subjects=(),
        shape=shape,
    )
    # a realistic design: each of the 10,000 images 3 times, shuffled over 30,000 trials
    rng = np.random.default_rng(1)
    design = root / "nsddata/experiments/nsd/nsd_expdesign.mat"
    mat = scipy.io.loadmat(design)
    mat["masterordering"] = rng.permutation(np.repeat(np.arange(1, 10001), 3))[None, :].astype(
        float
    )
    scipy.io.savemat(design, {k: v for k, v in mat.items() if not k.startswith("__")})
    return {"write_s": time.perf_counter() - t0}


def measure(root: Path, home: Path, fmt: str) -> dict:
    """Run in a child process: load subj01 through the cache and report time and memory."""
    import tracemalloc

    os.environ["BRAINPROMPT_HOME"] = str(home)
    from core.data.nsd import open_nsd

    base = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    tracemalloc.start()
    t0 = time.perf_counter()
    data = open_nsd("bench", root, fmt=fmt).subject("subj01")
    seconds = time.perf_counter() - t0
    _, traced = tracemalloc.get_traced_memory()
    peak = _status_kib("VmHWM")
    return {
        "seconds": seconds,
        "rss_mib": (peak - base) / 1024,
        "traced_mib": traced / 2**20,
        "images": int(data.responses.shape[0]),
        "targets": int(data.n_targets),
        "output_mib": data.responses.nbytes / 2**20,
    }


def _status_kib(field: str) -> int:
    """A memory figure (KiB) of this process from /proc/self/status (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(root: Path, home: Path, fmt: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(root), str(home), fmt],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(16, 16, 16))
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--format", choices=("nifti", "hdf5"), default="nifti")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]), args.child[2])))
        return
    shape = tuple(args.shape)
    with tempfile.TemporaryDirectory(prefix="bench-nsd-") as tmp:
        root, home = Path(tmp) / "nsd", Path(tmp) / "home"
        info = write_folder(root, shape, args.sessions, args.format)
        first = _child(root, home, args.format)
        cached = _child(root, home, args.format)
    vox = int(np.prod(shape))
    n_t = first["targets"]
    # projection: time scales with the volume bytes streamed (+ per-target work), memory with
    # the output array, one session of targets and one chunk of full volumes
    bytes_read = vox * 750 * 2 * args.sessions
    full_bytes = int(np.prod(FULL["shape"])) * 750 * 2 * FULL["sessions"]
    rate = bytes_read / first["seconds"]
    per_target = first["seconds"] / max(n_t, 1)
    proj_time = max(
        full_bytes / rate, per_target * FULL["targets"] * (FULL["sessions"] / args.sessions)
    )
    out_full = FULL["images"] * FULL["targets"] * 4
    mem_full = (
        out_full + 750 * FULL["targets"] * 4 * 2 + CHUNK * int(np.prod(FULL["shape"])) * 2 * 2
    )
    rows = [
        (
            "fixture",
            f"{shape} vol, {vox} voxels, {n_t} nsdgeneral targets, {args.sessions} sessions ({args.format})",
        ),
        ("write fixture", f"{info['write_s']:.1f} s"),
        (
            "first load (stream + cache)",
            f"{first['seconds']:.2f} s, peak RSS +{first['rss_mib']:.0f} MiB, traced peak {first['traced_mib']:.0f} MiB",
        ),
        (
            "output array",
            f"{first['images']} x {first['targets']} float32 = {first['output_mib']:.1f} MiB",
        ),
        ("cached load", f"{cached['seconds']:.3f} s, peak RSS +{cached['rss_mib']:.0f} MiB"),
        ("stream throughput", f"{rate / 2**20:.0f} MiB/s of uncompressed int16 volume"),
        (
            "projection: full subject",
            f"{FULL['shape']} vol, {FULL['targets']} targets, 40 sessions, {full_bytes / 2**30:.1f} GiB streamed",
        ),
        ("  first load", f"~{proj_time / 60:.0f} min (decompression-bound)"),
        (
            "  peak memory",
            f"~{mem_full / 2**20:.0f} MiB (output {out_full / 2**20:.0f} MiB + one session + one chunk)",
        ),
        (
            "  cached load",
            f"~{cached['seconds'] * (out_full / max(first['output_mib'] * 2**20, 1)):.1f} s (reads {out_full / 2**20:.0f} MiB)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 60}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
