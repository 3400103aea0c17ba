"""Benchmark: load NSD func1pt8mm sessions at full size, in both formats, against the old reader.

Writes an NSD folder with subj01 on its real grid (81 x 104 x 83, 699,192 voxels) and a realistic
15,724-voxel ``nsdgeneral`` (``tests/data/fixtures_nsd.py``), then one full session
(750 x 81 x 104 x 83 int16, 1.05 GB uncompressed; zero outside the brain, random inside) as

- ``betas_session01.hdf5``: ``/betas`` (750, Z, Y, X) chunked (750, 1, 1, 1), i.e. MATLAB's
  ``[1 1 1 750]`` like NSD's, written one Z plane at a time (699,192 chunks);
- ``betas_session01.nii.gz``: (X, Y, Z, 750), streamed volume by volume through gzip level 1.

More sessions (``--sessions N``) are hard links of the first (distinct files, the same bytes).
Each measure runs in a fresh process, after the beta files are dropped from the page cache
(``posix_fadvise(DONTNEED)`` on those files only), and reports wall time and peak RSS
(``VmHWM``, the whole process, interpreter and libraries included):

- session read, new reader (:func:`core.data.nsd_volume.read_volume_session`) and old reader
  (blocks of 50 trials over the whole volume; for HDF5 one block is read and the session
  extrapolated x15, since a block touches every chunk);
- first load through ``open_nsd`` (read, z-score, average repetitions, write the cache);
- cached load, and the cache's size on disk.

Usage::

    .venv/bin/python benchmarks/load_nsd.py [--sessions 1] [--formats nifti hdf5] [--no-old]
"""

from __future__ import annotations

import argparse
import gzip
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

TRIALS = 750
OLD_BLOCK = 50  # trials per read of the old reader
BETAS = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"


# --------------------------------------------------------------------------------------------
# writing a full-size folder
# --------------------------------------------------------------------------------------------
def write_folder(root: Path, sessions: int, formats: list[str]) -> dict:
    """Write subj01 at full size; return write times (s) and file sizes (bytes)."""
    import nibabel as nib
    import scipy.io
    from fixtures_nsd import SUBJ01_SHAPE, realistic_general, write_nsd

    write_nsd(root, subjects=("subj01",), sessions=(), fsaverage_subjects=(), shape=SUBJ01_SHAPE)
    general = realistic_general()
    affine = np.diag([1.8, 1.8, 1.8, 1.0])
    roi = root / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz"
    nib.save(nib.Nifti1Image(general, affine), roi)
    rng = np.random.default_rng(1)  # every image x3 over the 30,000 trials, like NSD
    design = root / "nsddata/experiments/nsd/nsd_expdesign.mat"
    mat = scipy.io.loadmat(design)
    mat["masterordering"] = rng.permutation(np.repeat(np.arange(1, 10001), 3))[None, :] * 1.0
    scipy.io.savemat(design, {k: v for k, v in mat.items() if not k.startswith("__")})
    t0 = time.perf_counter()
    data = session_data(general, rng)  # (750, Z, Y, X) int16
    info = {"generate_s": time.perf_counter() - t0}
    folder = root / BETAS
    for fmt in formats:
        path = folder / f"betas_session01.{'hdf5' if fmt == 'hdf5' else 'nii.gz'}"
        t0 = time.perf_counter()
        (write_hdf5 if fmt == "hdf5" else write_nifti)(path, data, affine)
        info[f"{fmt}_write_s"] = time.perf_counter() - t0
        info[f"{fmt}_bytes"] = path.stat().st_size
        for s in range(2, sessions + 1):
            os.link(path, path.with_name(path.name.replace("01", f"{s:02d}", 1)))
    return info


def session_data(general: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One session in h5py order (750, Z, Y, X) int16: 0 outside the brain, random inside."""
    brain = np.transpose(general >= 0, (2, 1, 0))
    data = np.zeros((TRIALS,) + brain.shape, dtype=np.int16)
    for z in range(brain.shape[0]):
        plane = rng.integers(-3000, 3000, size=(TRIALS,) + brain.shape[1:], dtype=np.int16)
        data[:, z] = np.where(brain[z], plane, 0)
    return data


def write_hdf5(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """``/betas`` chunked one voxel's 750 trials per chunk, written one Z plane at a time."""
    import h5py

    with h5py.File(path, "w") as fh:
        dset = fh.create_dataset(
            "betas", shape=data.shape, dtype=np.int16, chunks=(TRIALS, 1, 1, 1)
        )
        for z in range(data.shape[1]):
            dset[:, z] = data[:, z]
    _fsync(path)


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """(X, Y, Z, 750) int16 ``.nii.gz``, volume by volume (the header, then (Z, Y, X) C order)."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape(data.shape[::-1])
    header.set_data_dtype(np.int16)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header["vox_offset"] = 352
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(header.binaryblock + b"\x00" * 4)
        for t in range(data.shape[0]):
            fh.write(data[t].tobytes())
    _fsync(path)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def drop_page_cache(paths: list[Path]) -> None:
    """Evict these files (only) from the page cache, so a read comes from the disk."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# measures, each in a fresh process
# --------------------------------------------------------------------------------------------
def old_session(path: Path, fmt: str, shape, index, blocks: int | None) -> np.ndarray:
    """The reader before issue 24: blocks of 50 trials over the whole volume, then indexed."""
    parts = []
    if fmt == "hdf5":
        import h5py

        with h5py.File(path, "r") as fh:
            dset = fh["betas"]
            for t0 in range(0, TRIALS, OLD_BLOCK)[:blocks]:
                block = dset[t0 : t0 + OLD_BLOCK]
                parts.append(block.reshape(block.shape[0], -1)[:, index].astype(np.float32) / 300)
    else:
        vox = int(np.prod(shape))
        with gzip.open(path, "rb") as fh:
            fh.read(352)
            for _ in range(0, TRIALS, OLD_BLOCK)[:blocks]:
                raw = np.frombuffer(fh.read(OLD_BLOCK * vox * 2), np.int16).reshape(-1, vox)
                parts.append(raw[:, index].astype(np.float32) / np.float32(300))
    return np.concatenate(parts)


def child(task: dict) -> dict:
    """Run one measure in this (fresh) process."""
    os.environ["BRAINPROMPT_HOME"] = task["home"]
    from core.data.nsd import open_nsd, volume_targets
    from core.data.nsd_layout import NsdLayout
    from core.data.nsd_volume import read_volume_session

    root, fmt = Path(task["root"]), task["fmt"]
    layout = NsdLayout(root)
    shape, index, _, _ = volume_targets(layout, "subj01")
    path = layout.volume_betas("subj01", 1, fmt)
    base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    if task["what"] == "new":
        values = read_volume_session(path, fmt, shape, index)
    elif task["what"] == "old":
        values = old_session(path, fmt, shape, index, task.get("blocks"))
    else:
        data = open_nsd("bench", root, fmt=fmt).subject("subj01")
        values = data.responses
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    digest = float(np.asarray(values[:50], dtype=np.float64).sum())
    return {"seconds": seconds, "peak_mib": peak / 1024, "base_mib": base / 1024, "check": digest}


def _status_kib(field: str) -> int:
    """A memory figure (KiB) of this process from /proc/self/status (Linux). ``VmHWM`` is the
    peak RSS of this process image (``ru_maxrss`` would also count the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_child(task: dict, drop: list[Path] | None = None) -> dict:
    if drop:
        drop_page_cache(drop)
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(task)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _row(fmt: str, reader: str, what: str, result: dict, seconds: float, note: str = "") -> tuple:
    return (fmt, reader, what, seconds, result["peak_mib"], result["base_mib"], note)


def measure_format(root: Path, tmp: Path, fmt: str, sessions: int, old: bool) -> list[tuple]:
    """Rows (format, reader, measure, seconds, peak MiB, base MiB, note) for one format."""
    files = sorted((root / BETAS).glob(f"betas_session*.{'hdf5' if fmt == 'hdf5' else 'nii.gz'}"))
    task = {"root": str(root), "home": str(tmp / f"home-{fmt}"), "fmt": fmt}
    new = run_child({**task, "what": "new"}, drop=files[:1])
    rows = [_row(fmt, "new", "session read (cold)", new, new["seconds"])]
    if old:
        blocks = 1 if fmt == "hdf5" else None
        prev = run_child({**task, "what": "old", "blocks": blocks}, drop=files[:1])
        seconds = prev["seconds"] * (TRIALS // OLD_BLOCK if blocks else 1)
        note = "extrapolated: one 50-trial block x15" if blocks else "whole session"
        if not blocks and abs(prev["check"] - new["check"]) > 1e-3 * abs(new["check"]):
            note += "; VALUES DIFFER"
        rows.append(_row(fmt, "old", "session read (cold)", prev, seconds, note))
    first = run_child({**task, "what": "load"}, drop=files)
    what = "first load, per session"
    note = f"{sessions} session(s): read, z-score, average, write cache"
    rows.append(_row(fmt, "new", what, first, first["seconds"] / sessions, note))
    cached = run_child({**task, "what": "load"})
    size = folder_bytes(tmp / f"home-{fmt}" / "datasets")
    rows.append(
        _row(fmt, "new", "cached load", cached, cached["seconds"], f"cache {size / 2**20:.0f} MiB")
    )
    return rows


def print_table(info: dict, rows: list[tuple], sessions: int) -> None:
    """The measures as a plain-text table (seconds; peak RSS and the RSS before the work)."""
    print(f"subj01 grid 81 x 104 x 83, 15,724 nsdgeneral voxels, {sessions} session(s) of 750")
    for fmt in ("nifti", "hdf5"):
        if f"{fmt}_write_s" in info:
            size = info[f"{fmt}_bytes"] / 2**20
            print(f"  {fmt}: written in {info[f'{fmt}_write_s']:.1f} s, {size:.0f} MiB per session")
    print(f"  data generated in {info['generate_s']:.1f} s")
    head = ("format", "reader", "measure", "seconds", "peak MiB", "before MiB", "note")
    fmt_row = "{:<7} {:<6} {:<24} {:>8} {:>9} {:>11}  {}"
    print(fmt_row.format(*head))
    for fmt, reader, what, seconds, peak, base, note in rows:
        print(
            fmt_row.format(fmt, reader, what, f"{seconds:.2f}", f"{peak:.0f}", f"{base:.0f}", note)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1, help="sessions to load (default 1)")
    parser.add_argument(
        "--formats", nargs="+", choices=("nifti", "hdf5"), default=["nifti", "hdf5"]
    )
    parser.add_argument("--no-old", action="store_true", help="skip the old reader")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-nsd-") as tmp:
        root = Path(tmp) / "nsd"
        info = write_folder(root, args.sessions, args.formats)
        rows = []
        for fmt in args.formats:
            rows += measure_format(root, Path(tmp), fmt, args.sessions, not args.no_old)
    print_table(info, rows, args.sessions)


if __name__ == "__main__":
    main()
