"""func1pt8mm beta sessions, read for the kept voxels only, with a peak that does not grow with
the volume.

HDF5 ``/betas`` is (750, Z, Y, X) int16. NSD's files (written by MATLAB with ``ChunkSize
[1 1 1 750]``) hold one voxel's 750 trials per chunk: 699,192 chunks for subj01's 81 x 104 x 83
grid. A read of a block of trials touches every one of them (the reader before this one took
~104 s and 4.5 GB per session that way). Reads here follow the file's chunks
(:func:`plan_hdf5_reads`):

- chunks holding every trial (NSD's layout): per row of chunks along x, the runs of chunks that
  hold kept voxels, all trials at once; chunks without a kept voxel are not read (beyond short
  gaps inside a run);
- any other layout (contiguous, or chunks of a few trials): blocks of whole trial chunks over
  the kept voxels' bounding box, each block within :data:`READ_BUDGET`.

NIfTI ``betas_sessionNN.nii.gz`` is (X, Y, Z, 750) int16, one volume after another in a gzip
stream. Gzip is sequential, so the stream is decompressed once, a few volumes at a time, keeping
only the kept voxels of each (:func:`read_nifti_session`). Decompression bounds it (~200 MB/s of
int16 with zlib); ISA-L's ``isal.igzip`` decompresses about twice as fast and is used when the
optional ``isal`` package is installed.

Both readers return the whole session of kept voxels, (750, n_voxels) float32 (int16 / 300),
with values identical to indexing the full volume.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.nsd_files import file_error, to_percent
from core.data.nsd_layout import TRIALS_PER_SESSION

#: Bytes of raw betas one read may bring into memory (besides the session's output array).
READ_BUDGET = 64 * 2**20
#: Unused chunks tolerated inside one run of a chunk row before the run is split in two reads.
MAX_GAP = 4
#: Volumes decompressed at once from a NIfTI stream (50 x 1.4 MB for subj01's grid).
VOLUMES_PER_READ = 50


@dataclass(frozen=True)
class BoxRead:
    """One read of an HDF5 beta session: a box of ``/betas`` and where its kept voxels go.

    Parameters
    ----------
    trials : slice
        Trials read (all 750 for NSD's chunking).
    box : tuple of 3 slices
        The (z, y, x) extent read.
    columns : array of shape (n,), int64
        Target columns (positions in the voxel index) this read fills.
    offsets : array of shape (n,), int64
        Flat positions of those voxels within the box, in (z, y, x) C order.
    """

    trials: slice
    box: tuple[slice, slice, slice]
    columns: np.ndarray
    offsets: np.ndarray

    @property
    def selection(self) -> tuple[slice, slice, slice, slice]:
        """The h5py selection of ``/betas``: (trials, z, y, x)."""
        return (self.trials, *self.box)

    @property
    def box_shape(self) -> tuple[int, int, int]:
        """(dz, dy, dx) of the box."""
        return tuple(int(s.stop - s.start) for s in self.box)


def _chunk_bounds(lo: int, hi: int, size: int, n: int) -> tuple[int, int]:
    """[lo, hi] (inclusive) widened to whole chunks of ``size`` along an axis of length ``n``."""
    return (lo // size) * size, min(n, (hi // size + 1) * size)


def plan_hdf5_reads(
    index: np.ndarray,
    shape: tuple[int, int, int],
    chunks: tuple[int, ...] | None,
    n_trials: int = TRIALS_PER_SESSION,
    budget: int = READ_BUDGET,
    itemsize: int = 2,
) -> list[BoxRead]:
    """The reads that bring the kept voxels of one session in, in the order the chunks favour.

    Parameters
    ----------
    index : array of shape (n_voxels,)
        Flat (Z, Y, X) indices of the kept voxels (:func:`core.data.nsd_files.volume_index`).
    shape : (X, Y, Z)
        Volume shape.
    chunks : tuple of 4 int or None
        ``/betas``'s chunk shape in (trials, z, y, x) order; None when contiguous.
    n_trials : int
    budget : int
        Bytes of raw betas one read may hold (a chunk-row band for NSD's layout is far below).
    itemsize : int
        Bytes per stored value.

    Returns
    -------
    reads : list of BoxRead
        Together they fill every column exactly once for every trial.
    """
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return []
    nx, ny, nz = (int(s) for s in shape)
    zyx = np.unravel_index(index, (nz, ny, nx))
    if chunks is not None and int(chunks[0]) >= n_trials:
        band = tuple(int(c) for c in chunks[1:])
        if n_trials * band[0] * band[1] * nx * itemsize > budget:
            band = (1, 1, band[2])  # big chunks: rows of partial chunks keep a read small
        return _voxel_major_reads(zyx, (nz, ny, nx), band, n_trials)
    return _trial_block_reads(zyx, (nz, ny, nx), chunks, n_trials, budget, itemsize)


def _voxel_major_reads(zyx, dims, band, n_trials) -> list[BoxRead]:
    """Per band of chunk rows (z, y), runs of chunks along x holding kept voxels, all trials."""
    z, y, x = zyx
    nz, ny, nx = dims
    cz, cy, cx = band
    row = (z // cz) * (-(-ny // cy)) + y // cy
    cxid = x // cx
    order = np.lexsort((cxid, row))
    row_s, cx_s = row[order], cxid[order]
    new_run = np.r_[True, (np.diff(row_s) != 0) | (np.diff(cx_s) > MAX_GAP + 1)]
    starts = np.flatnonzero(new_run)
    stops = np.r_[starts[1:], order.size]
    reads = []
    for a, b in zip(starts, stops, strict=True):
        cols = order[a:b]
        z0, z1 = _chunk_bounds(int(z[cols].min()), int(z[cols].max()), cz, nz)
        y0, y1 = _chunk_bounds(int(y[cols].min()), int(y[cols].max()), cy, ny)
        x0, x1 = _chunk_bounds(int(x[cols].min()), int(x[cols].max()), cx, nx)
        offsets = ((z[cols] - z0) * (y1 - y0) + (y[cols] - y0)) * (x1 - x0) + (x[cols] - x0)
        box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
        reads.append(BoxRead(slice(0, n_trials), box, cols, offsets.astype(np.int64)))
    return reads


def _trial_block_reads(zyx, dims, chunks, n_trials, budget, itemsize) -> list[BoxRead]:
    """Blocks of whole trial chunks over the kept voxels' (chunk-aligned) bounding box."""
    sizes = tuple(int(c) for c in chunks[1:]) if chunks is not None else (1, 1, 1)
    bounds = [
        _chunk_bounds(int(a.min()), int(a.max()), c, n)
        for a, c, n in zip(zyx, sizes, dims, strict=True)
    ]
    box = tuple(slice(lo, hi) for lo, hi in bounds)
    extent = [hi - lo for lo, hi in bounds]
    per_trial = int(np.prod(extent)) * itemsize
    step = max(1, budget // per_trial)
    if chunks is not None:
        ct = int(chunks[0])
        step = max(ct, (step // ct) * ct)
    z, y, x = (a - lo for a, (lo, _) in zip(zyx, bounds, strict=True))
    offsets = ((z * extent[1] + y) * extent[2] + x).astype(np.int64)
    cols = np.arange(offsets.size)
    return [
        BoxRead(slice(t0, min(t0 + step, n_trials)), box, cols, offsets)
        for t0 in range(0, n_trials, step)
    ]


def _read_box(dset, selection: tuple[slice, ...]) -> np.ndarray:
    """``dset[selection]``: the one place an HDF5 session is read (tests account reads here)."""
    return dset[selection]


def read_hdf5_session(
    path: Path, shape: tuple[int, int, int], index: np.ndarray, budget: int = READ_BUDGET
) -> np.ndarray:
    """Read the kept voxels of one HDF5 beta session (``/betas`` (750, Z, Y, X) int16).

    Parameters
    ----------
    path : Path
        ``betas_sessionNN.hdf5``.
    shape : (X, Y, Z)
        Expected volume shape (from ``nsdgeneral``).
    index : array of shape (n_voxels,)
        From :func:`core.data.nsd_files.volume_index`.
    budget : int
        Bytes of raw betas one read may hold.

    Returns
    -------
    betas : array of shape (750, n_voxels), float32
        Percent signal change (int16 / 300).
    """
    import h5py

    path = Path(path)
    x, y, z = shape
    expected = f"dataset /betas of shape {(TRIALS_PER_SESSION, z, y, x)}"
    if not path.exists():
        raise file_error(path, expected, "no file")
    try:
        fh = h5py.File(path, "r")
    except Exception as exc:
        raise file_error(path, f"an HDF5 file with {expected}", exc) from exc
    with fh:
        if "betas" not in fh:
            raise file_error(path, expected, f"datasets {list(fh.keys())}")
        dset = fh["betas"]
        if dset.shape != (TRIALS_PER_SESSION, z, y, x):
            raise file_error(path, expected, f"shape {tuple(int(s) for s in dset.shape)}")
        plan = plan_hdf5_reads(
            index, shape, dset.chunks, budget=budget, itemsize=dset.dtype.itemsize
        )
        out = np.empty((TRIALS_PER_SESSION, len(index)), dtype=np.float32)
        for read in plan:
            try:
                block = _read_box(dset, read.selection)
            except Exception as exc:
                raise file_error(path, f"{expected} (complete)", exc) from exc
            out[read.trials, read.columns] = to_percent(
                block.reshape(block.shape[0], -1)[:, read.offsets]
            )
    return out


def _open_nifti_proxy(path: Path, shape: tuple[int, int, int]):
    """The checked array proxy of a NIfTI beta session."""
    import nibabel as nib

    expected = f"betas of shape {tuple(shape) + (TRIALS_PER_SESSION,)}"
    if not path.exists():
        raise file_error(path, expected, "no file")
    try:
        proxy = nib.load(path).dataobj
    except Exception as exc:
        raise file_error(path, f"a NIfTI file with {expected}", exc) from exc
    full = tuple(int(s) for s in proxy.shape)
    if full != tuple(shape) + (TRIALS_PER_SESSION,):
        raise file_error(path, expected, f"shape {full}")
    return proxy


def gzip_opener() -> tuple[Callable, tuple[type[BaseException], ...]]:
    """``open`` for gzip streams and the errors a corrupt stream raises: ``isal.igzip`` (ISA-L,
    ~2x faster decompression) when the optional ``isal`` package is installed, else ``gzip``."""
    errors: tuple[type[BaseException], ...] = (EOFError, OSError, gzip.BadGzipFile, zlib.error)
    try:
        from isal import igzip, isal_zlib
    except ImportError:
        return gzip.open, errors
    return igzip.open, (*errors, isal_zlib.error)


def read_nifti_session(
    path: Path,
    shape: tuple[int, int, int],
    index: np.ndarray,
    volumes_per_read: int = VOLUMES_PER_READ,
) -> np.ndarray:
    """Read the kept voxels of one NIfTI beta session (X, Y, Z, 750) int16.

    The (gzip) stream is decompressed once, ``volumes_per_read`` volumes at a time; each block
    keeps only the kept voxels, so memory is one block of volumes plus the output.

    Parameters
    ----------
    path : Path
        ``betas_sessionNN.nii.gz`` (or ``.nii``).
    shape : (X, Y, Z)
    index : array of shape (n_voxels,)
        From :func:`core.data.nsd_files.volume_index` (a volume's voxels are in (Z, Y, X) C
        order on disk, i.e. NIfTI's Fortran order of (X, Y, Z)).
    volumes_per_read : int

    Returns
    -------
    betas : array of shape (750, n_voxels), float32
        Percent signal change (int16 / 300; a header scaling, when present, is applied instead).
    """
    path = Path(path)
    proxy = _open_nifti_proxy(path, shape)
    expected = f"betas of shape {tuple(shape) + (TRIALS_PER_SESSION,)}"
    dtype = np.dtype(proxy.dtype)
    slope, inter = float(proxy.slope), float(proxy.inter)
    scaled = np.isfinite(slope) and (slope not in (0.0, 1.0) or inter != 0.0)
    vox = int(np.prod(shape))
    out = np.empty((TRIALS_PER_SESSION, len(index)), dtype=np.float32)
    opener, errors = gzip_opener()
    if not path.name.endswith(".gz"):
        opener = open
    try:
        with opener(path, "rb") as fh:
            fh.read(int(proxy.offset))
            for t0 in range(0, TRIALS_PER_SESSION, volumes_per_read):
                n = min(volumes_per_read, TRIALS_PER_SESSION - t0)
                buf = fh.read(n * vox * dtype.itemsize)
                if len(buf) != n * vox * dtype.itemsize:
                    raise EOFError(
                        f"file ends after trial {t0 + len(buf) // (vox * dtype.itemsize)}"
                    )
                raw = np.frombuffer(buf, dtype=dtype).reshape(n, vox)[:, index]
                del buf
                if scaled:
                    raw = raw * slope + (inter if np.isfinite(inter) else 0.0)
                out[t0 : t0 + n] = to_percent(raw)
            while fh.read(1 << 20):  # to the end of the stream, where gzip checks its CRC
                pass
    except errors as exc:
        raise file_error(
            path, f"{expected} (complete)", f"a truncated or corrupt file: {exc}"
        ) from exc
    return out


def read_volume_session(
    path: Path, fmt: str, shape: tuple[int, int, int], index: np.ndarray
) -> np.ndarray:
    """One func1pt8mm session's kept voxels, (750, n_voxels) float32, from NIfTI or HDF5.

    Parameters
    ----------
    path : Path
    fmt : {"nifti", "hdf5"}
    shape : (X, Y, Z)
    index : array of shape (n_voxels,)
    """
    if fmt == "hdf5":
        return read_hdf5_session(path, shape, index)
    return read_nifti_session(path, shape, index)
