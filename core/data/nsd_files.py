"""Readers for NSD's file formats; every failure names the file and what was expected.

- ``nsd_expdesign.mat`` (MATLAB v5 via scipy, or v7.3 via h5py): ``masterordering``, ``subjectim``,
  ``sharedix`` with NSD's 1-based conventions;
- ``nsd_stim_info_merged.csv``;
- ROI volumes (``.nii.gz``), surface labels (``.mgz``) and their ``.mgz.ctab`` names;
- per-target maps (``ncsnr.nii.gz``, ``{lh,rh}.ncsnr.mgh``);
- fsaverage beta sessions streamed in chunks of trials: MGH ``(V, 1, 1, 750)`` float32 (the
  func1pt8mm NIfTI and HDF5 sessions are read by :mod:`core.data.nsd_volume`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dataset import DatasetError
from core.data.nsd_layout import N_STIMULI, TRIALS_PER_SESSION

#: NSD's int16 betas are percent signal change times 300.
BETA_SCALE = 300.0


def file_error(path: Path, expected: str, found: str | Exception) -> DatasetError:
    """A :class:`DatasetError` naming the file, what was expected and what was found."""
    return DatasetError(f"{path}: expected {expected}; found {found}")


# --------------------------------------------------------------------------------------------
# experiment design
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpDesign:
    """NSD's experiment design, kept in its 1-based form.

    Parameters
    ----------
    masterordering : array of shape (30000,), int64
        For each trial, a 1-based index into the subject's 10,000-image list.
    subjectim : array of shape (8, 10000), int64
        Per subject, 1-based 73k ids; columns 0..999 are the shared images.
    sharedix : array of shape (1000,), int64
        1-based 73k ids of the shared images.
    """

    masterordering: np.ndarray
    subjectim: np.ndarray
    sharedix: np.ndarray

    @property
    def n_sessions(self) -> int:
        return int(self.masterordering.shape[0] // TRIALS_PER_SESSION)

    def shared_ids(self) -> np.ndarray:
        """0-based 73k ids of the shared images, array of shape (1000,), int64 (sorted)."""
        return np.sort(self.sharedix - 1)

    def subject_ids(self, subject: str) -> np.ndarray:
        """0-based 73k ids of a subject's 10,000 images (in design order), shape (10000,)."""
        return self.subjectim[_subject_row(subject)] - 1

    def trial_ids(self, subject: str, session: int) -> np.ndarray:
        """0-based 73k id shown on each trial of one 1-based session, shape (750,), int64.

        ``img73k = subjectim[s - 1, masterordering[k] - 1] - 1``.
        """
        if not 1 <= session <= self.n_sessions:
            raise DatasetError(f"session {session} outside the design's 1..{self.n_sessions}")
        k = slice((session - 1) * TRIALS_PER_SESSION, session * TRIALS_PER_SESSION)
        return self.subjectim[_subject_row(subject), self.masterordering[k] - 1] - 1


def _subject_row(subject: str) -> int:
    return int(subject[-2:]) - 1


def _load_mat(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 = HDF5; arrays come back transposed
        import h5py

        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}


def read_expdesign(path: Path) -> ExpDesign:
    """Read and check ``nsd_expdesign.mat``.

    Raises
    ------
    DatasetError
        Missing file, unreadable file, a missing field, a wrong shape or an out-of-range value
        (the message names the file and the expectation).
    """
    path = Path(path)
    if not path.exists():
        raise file_error(
            path, "the NSD experiment design (masterordering, subjectim, sharedix)", "no file"
        )
    try:
        mat = _load_mat(path)
    except Exception as exc:  # truncated or not a mat file
        raise file_error(path, "a MATLAB .mat file", exc) from exc
    specs = {
        "masterordering": ((30000,), 10000),
        "subjectim": ((8, 10000), N_STIMULI),
        "sharedix": ((1000,), N_STIMULI),
    }
    out: dict[str, np.ndarray] = {}
    for field, (shape, upper) in specs.items():
        if field not in mat:
            raise file_error(
                path,
                f"a field {field!r}",
                f"fields {sorted(k for k in mat if not k.startswith('__'))}",
            )
        arr = np.asarray(mat[field])
        arr = arr.reshape(-1) if len(shape) == 1 else arr
        if arr.shape != shape:
            raise file_error(
                path, f"{field} of shape {shape}", f"shape {np.asarray(mat[field]).shape}"
            )
        if not np.all(np.isfinite(arr)) or arr.min() < 1 or arr.max() > upper:
            raise file_error(
                path,
                f"{field} holding 1-based indices in 1..{upper}",
                f"values in {arr.min()}..{arr.max()}",
            )
        out[field] = arr.astype(np.int64)
    return ExpDesign(**out)


# --------------------------------------------------------------------------------------------
# stimulus info
# --------------------------------------------------------------------------------------------
STIM_INFO_COLUMNS = ("nsdId", "cocoId", "shared1000")


def read_stim_info(path: Path) -> pd.DataFrame:
    """Read ``nsd_stim_info_merged.csv``, indexed by the 0-based ``nsdId``."""
    path = Path(path)
    if not path.exists():
        raise file_error(path, "the stimulus info CSV", "no file")
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise file_error(path, "a CSV file", exc) from exc
    missing = [c for c in STIM_INFO_COLUMNS if c not in df.columns]
    if missing:
        raise file_error(path, f"columns {list(STIM_INFO_COLUMNS)}", f"no column(s) {missing}")
    df = df.drop(columns=[c for c in df.columns if c.startswith("Unnamed")])
    df["shared1000"] = df["shared1000"].astype(str).str.lower().isin(["true", "1", "1.0"])
    return df.set_index("nsdId", drop=False).rename_axis("stimulus_id")


# --------------------------------------------------------------------------------------------
# ROI labels and per-target maps
# --------------------------------------------------------------------------------------------
def read_ctab(path: Path) -> dict[int, str]:
    """Read a ``.mgz.ctab`` colour table: ``index name [r g b a]`` per line.

    Returns
    -------
    names : dict of int to str
        Positive label values to ROI names (0 "Unknown" and negatives are dropped).
    """
    path = Path(path)
    if not path.exists():
        raise file_error(path, "a colour table with 'index name' lines", "no file")
    names: dict[int, str] = {}
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            value = int(parts[0])
        except ValueError:
            raise file_error(path, "'index name' lines", f"line {n}: {line!r}") from None
        if len(parts) < 2:
            raise file_error(path, "'index name' lines", f"line {n}: {line!r}")
        if value > 0:
            names[value] = parts[1]
    return names


def read_volume(path: Path, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a 3-D NIfTI volume (an ROI, ``nsdgeneral`` or ``ncsnr``).

    Parameters
    ----------
    path : Path
    what : str
        What the file should be, for error messages.
    shape : tuple of int, optional
        Expected (X, Y, Z).

    Returns
    -------
    volume : array of shape (X, Y, Z)
    """
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise file_error(path, what, "no file")
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj)
    except Exception as exc:
        raise file_error(path, f"{what} as a readable NIfTI volume", exc) from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3 or (shape is not None and data.shape != tuple(shape)):
        raise file_error(path, f"{what} of shape {shape or '(X, Y, Z)'}", f"shape {data.shape}")
    return data


def read_surface_map(path: Path, what: str, n_vertices: int | None = None) -> np.ndarray:
    """Read a per-vertex map from ``.mgh``/``.mgz`` of shape (V, 1, 1[, 1]).

    Returns
    -------
    values : array of shape (V,)
    """
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise file_error(path, what, "no file")
    try:
        data = np.asarray(nib.load(path).dataobj)
    except Exception as exc:
        raise file_error(path, f"{what} as a readable MGH/MGZ file", exc) from exc
    if data.ndim < 1 or int(np.prod(data.shape[1:])) != 1:
        raise file_error(path, f"{what} of shape (V, 1, 1)", f"shape {data.shape}")
    values = data.reshape(-1)
    if n_vertices is not None and values.shape[0] != n_vertices:
        raise file_error(path, f"{what} with {n_vertices} vertices", f"{values.shape[0]} vertices")
    return values


def as_labels(values: np.ndarray, path: Path) -> np.ndarray:
    """Round label values to int16 (NSD stores some label files as float)."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            raise file_error(Path(path), "integer label values", "NaN or infinite values")
        values = np.rint(values)
    return values.astype(np.int16)


# --------------------------------------------------------------------------------------------
# beta sessions, streamed
# --------------------------------------------------------------------------------------------
def to_percent(raw: np.ndarray) -> np.ndarray:
    """int16 betas / 300 as float32 (float input is returned as float32 unchanged)."""
    if raw.dtype.kind in "iu":
        return raw.astype(np.float32) / np.float32(BETA_SCALE)
    return raw.astype(np.float32, copy=False)


def plain_shape(shape) -> tuple[int, ...]:
    """A shape as plain ints (nibabel's MGH shapes are numpy int32, which print as np.int32(..))."""
    return tuple(int(s) for s in shape)


def volume_index(mask: np.ndarray) -> np.ndarray:
    """Flat indices, into a (Z, Y, X) C-ordered volume, of ``mask``'s voxels in (X, Y, Z) C order.

    This fixes one voxel order for every volume format: targets are ``np.argwhere(mask)``.

    Parameters
    ----------
    mask : array of shape (X, Y, Z), bool

    Returns
    -------
    index : array of shape (n_voxels,), int64
    """
    x, y, z = np.nonzero(mask)
    nx, ny, _ = mask.shape
    return (z.astype(np.int64) * ny + y) * nx + x


def stream_mgh_betas(
    path: Path, n_vertices: int, index: np.ndarray, chunk: int = 50
) -> Iterator[np.ndarray]:
    """Stream one hemisphere's fsaverage session (``.mgh`` of shape (V, 1, 1, 750), float32).

    Parameters
    ----------
    path : Path
    n_vertices : int
        Expected vertex count V.
    index : array of shape (n_selected,)
        Vertices kept.

    Yields
    ------
    betas : array of shape (n_chunk, n_selected), float32
    """
    import nibabel as nib

    path = Path(path)
    expected = f"betas of shape {(n_vertices, 1, 1, TRIALS_PER_SESSION)}"
    if not path.exists():
        raise file_error(path, expected, "no file")
    try:
        img = nib.load(path)
    except Exception as exc:
        raise file_error(path, f"an MGH file with {expected}", exc) from exc
    if plain_shape(img.shape) != (n_vertices, 1, 1, TRIALS_PER_SESSION):
        raise file_error(path, expected, f"shape {plain_shape(img.shape)}")
    for t0 in range(0, TRIALS_PER_SESSION, chunk):
        t1 = min(t0 + chunk, TRIALS_PER_SESSION)
        try:
            block = np.asarray(img.dataobj[:, 0, 0, t0:t1])
        except Exception as exc:
            raise file_error(
                path, f"{expected} (complete)", f"a truncated or corrupt file: {exc}"
            ) from exc
        yield to_percent(block[index].T)
