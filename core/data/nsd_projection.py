"""func1pt8mm voxel maps on the subject's cortical surface and on fsaverage, with NSD's transforms.

NSD ships, per subject, the coordinate transforms its own mapping code (``nsdcode``'s
``NSDmapdata``) reads from ``nsddata/ppdata/subjXX/transforms/``. This module reads the same files
with nibabel and turns them into sparse projection matrices, so that a per-voxel map (one value per
func1pt8mm target) becomes a per-vertex map with one sparse mat-vec.

What nsdcode does (checked in nsdcode 1.1's ``nsd_mapdata.py``, ``parse_case.py``,
``load_data.py``, ``transform_data.py`` and ``interp_wrapper.py``):

- volume -> native surface (its "case 2", e.g. ``func1pt8`` -> ``lh.layerB2``) reads
  ``{lh,rh}.func1pt8-to-{layerB1,layerB2,layerB3}.mgz`` (``f"{hemi}{source}-to-{surface}.mgz"``),
  loads it with ``get_fdata()`` and reshapes it to (n_subject_vertices, 3) in Fortran order: per
  subject-surface vertex, the decimal (x, y, z) voxel coordinate it samples, **1-based**. It sets
  coordinates equal to 9999 to NaN, subtracts 1, and interpolates the volume there with
  ``scipy.ndimage.map_coordinates`` (``interptype`` "cubic" by default = order 3, "linear" = 1,
  "nearest" = 0; ``mode="nearest"``; the volume's NaNs set to 0). A coordinate that is NaN or
  outside the volume gives NaN, then ``badval`` (0 by default).
- native surface -> fsaverage (its "case 3") reads ``{lh,rh}.white-to-fsaverage.mgz``: per
  fsaverage vertex (163,842 per hemisphere) the **1-based** index of a subject-surface vertex; the
  mapping is always nearest neighbour, ``out = source[index - 1]`` (``interptype`` is ignored).
- ``NSDmapdata`` maps one surface per call; averaging the three depth surfaces layerB1..B3 into one
  value per vertex is not in nsdcode: it is how NSD's documentation describes its own fsaverage
  preparation (from func1mm, with cubic interpolation, then nearest neighbour to fsaverage), and
  what :func:`build_projection` does (the three layers' weights are pooled, each layer's
  summing to 1).

Where this module differs, on purpose:

- Interpolation is "linear" (trilinear, the default) or "nearest" (rounding like
  ``map_coordinates(order=0)``), never cubic: the cubic B-spline prefilter spreads every voxel
  over the whole volume (no sparse matrix), and nsdcode's default suits full volumes, not a map
  known only on the targets.
- Only target voxels (e.g. ``nsdgeneral``) carry values. The interpolation weights a vertex puts on
  other voxels are dropped and the rest renormalised; a vertex keeps a value only when targets
  carry at least ``min_weight`` (default 0.5) of its weight over its valid layers. nsdcode would
  interpolate whatever the full volume holds there (zeros for a masked map).
- A coordinate is valid when every axis lies within ``1 <= c <= dim`` (1-based; 9999, NaN and
  negative values are therefore invalid), as ``interp_wrapper``'s docstring and the MATLAB
  original state. nsdcode's Python port applies its ``< 1`` test after subtracting 1, which also
  drops coordinates in the first voxel plane of each axis.

Drawing on the existing per-target geometry, :meth:`VolumeProjection.geometry` places each
target at its nearest fsaverage vertex (voxel-space distance to the vertex's subject-surface
position, mean over layers); the faithful per-vertex map is :meth:`VolumeProjection.to_fsaverage`
(continuous) or :meth:`VolumeProjection.labels_to_fsaverage` (categories).

Projections are cached per subject as one ``.npz`` (CSR arrays, no pickle) keyed by the transform
files' signature, the target voxels and the options; a redraw is a sparse mat-vec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from core.data.dataset import DatasetError, TargetGeometry
from core.data.nsd_files import file_error
from core.data.nsd_layout import DEPTH_LAYERS, NsdLayout

HEMIS = ("lh", "rh")
#: nsdcode's marker of an invalid coordinate in the volume-to-surface transforms.
INVALID_COORDINATE = 9999
INTERPOLATIONS = ("linear", "nearest")
#: Bumped when the projection computed from the same files changes.
PROJECTION_VERSION = "1"


# --------------------------------------------------------------------------------------------
# the transform files
# --------------------------------------------------------------------------------------------
def missing_transforms(layout: NsdLayout, subject: str) -> list[Path]:
    """The transform files a func1pt8mm -> fsaverage projection needs that are not on disk.

    Parameters
    ----------
    layout : NsdLayout
    subject : str
        ``"subj01"`` .. ``"subj08"``.

    Returns
    -------
    missing : list of Path
        In :meth:`NsdLayout.projection_transforms` order; empty when all eight exist.
    """
    return [p for p in layout.projection_transforms(subject) if not p.exists()]


def require_transforms(layout: NsdLayout, subject: str) -> None:
    """Raise :class:`DatasetError` naming every missing transform file (nothing when all exist)."""
    missing = missing_transforms(layout, subject)
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise DatasetError(
            f"no surface projection of {subject}'s func1pt8mm targets: NSD transform file(s) "
            f"missing: {names} (from the NSD bucket's nsddata/ppdata/{subject}/transforms/; "
            "a volume slice view is the alternative)"
        )


def _read_mgz(path: Path, what: str) -> np.ndarray:
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise file_error(path, what, "no file")
    try:
        return np.asarray(nib.load(path).get_fdata(), dtype=np.float64)
    except Exception as exc:
        raise file_error(path, f"{what} as a readable MGH/MGZ file", exc) from exc


def read_volume_to_surface(path: Path, n_vertices: int | None = None) -> np.ndarray:
    """Read ``{lh,rh}.func1pt8-to-layerB*.mgz`` as nsdcode does.

    Parameters
    ----------
    path : Path
    n_vertices : int, optional
        Expected subject-surface vertex count (the other layers' count).

    Returns
    -------
    coords : array of shape (n_subject_vertices, 3), float64
        Per vertex the 1-based (x, y, z) func1pt8mm voxel coordinate, as stored (9999 marks an
        invalid vertex; see :func:`valid_coordinates`).

    Raises
    ------
    DatasetError
        When the file is missing, unreadable, not of shape (V, 1, 1, 3), or has another vertex
        count than ``n_vertices``.
    """
    what = "per-vertex 1-based voxel coordinates of shape (V, 1, 1, 3)"
    data = _read_mgz(path, what)
    if data.ndim < 2 or int(np.prod(data.shape[1:])) != 3:
        raise file_error(Path(path), what, f"shape {data.shape}")
    coords = data.reshape(data.shape[0], -1, order="F")
    if n_vertices is not None and coords.shape[0] != n_vertices:
        raise file_error(
            Path(path), f"{n_vertices} vertices like the other depth layers", coords.shape[0]
        )
    return coords


def read_surface_to_fsaverage(path: Path, n_subject_vertices: int) -> np.ndarray:
    """Read ``{lh,rh}.white-to-fsaverage.mgz`` (nearest neighbour, 1-based) as 0-based indices.

    Parameters
    ----------
    path : Path
    n_subject_vertices : int
        Vertices of the subject's surface (of the volume-to-surface transforms).

    Returns
    -------
    index : array of shape (n_fsaverage_vertices,), int64
        Per fsaverage vertex, the 0-based subject-surface vertex it takes its value from.

    Raises
    ------
    DatasetError
        When the file is missing, unreadable, not (F, 1, 1), not integer-valued, or points
        outside ``1 .. n_subject_vertices``.
    """
    what = "per fsaverage vertex a 1-based subject vertex index, shape (F, 1, 1)"
    data = _read_mgz(path, what)
    if data.ndim < 1 or int(np.prod(data.shape[1:])) != 1:
        raise file_error(Path(path), what, f"shape {data.shape}")
    values = data.reshape(-1)
    if not np.all(np.isfinite(values)) or np.any(values != np.rint(values)):
        raise file_error(Path(path), "integer vertex indices", "non-integer values")
    index = values.astype(np.int64)
    if index.size and (index.min() < 1 or index.max() > n_subject_vertices):
        raise file_error(
            Path(path),
            f"indices 1..{n_subject_vertices} (the subject surface's vertices)",
            f"values {index.min()}..{index.max()}",
        )
    return index - 1


def valid_coordinates(coords: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Which 1-based coordinates lie inside the volume.

    Parameters
    ----------
    coords : array of shape (n, 3)
        1-based (x, y, z) as stored in the transform files.
    shape : (X, Y, Z)

    Returns
    -------
    valid : array of shape (n,), bool
        False for 9999, NaN, infinite, negative or out-of-range coordinates
        (valid: ``1 <= c <= dim`` on every axis).
    """
    coords = np.asarray(coords, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(coords).all(axis=1) & (coords != INVALID_COORDINATE).all(axis=1)
        ok &= (coords >= 1).all(axis=1) & (coords <= np.asarray(shape, np.float64)).all(axis=1)
    return ok


# --------------------------------------------------------------------------------------------
# voxel bookkeeping
# --------------------------------------------------------------------------------------------
def voxels_from_index(index: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """0-based (x, y, z) of targets from their flat (Z, Y, X) indices
    (:func:`core.data.nsd_files.volume_index`, the order of func1pt8mm targets).

    Parameters
    ----------
    index : array of shape (n_targets,), int
    shape : (X, Y, Z)

    Returns
    -------
    voxels : array of shape (n_targets, 3), int64
    """
    index = np.asarray(index, dtype=np.int64)
    nx, ny, _ = shape
    return np.column_stack([index % nx, (index // nx) % ny, index // (nx * ny)])


def _target_lookup(voxels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    voxels = np.asarray(voxels, dtype=np.int64)
    if voxels.ndim != 2 or voxels.shape[1] != 3:
        raise ValueError(f"voxels must have shape (n_targets, 3); got {voxels.shape}")
    if voxels.size and ((voxels < 0).any() or (voxels >= np.asarray(shape)).any()):
        raise ValueError(f"voxels outside the volume of shape {tuple(shape)}")
    lookup = np.full(shape, -1, dtype=np.int64)
    lookup[tuple(voxels.T)] = np.arange(voxels.shape[0])
    if (lookup >= 0).sum() != voxels.shape[0]:
        raise ValueError("voxels holds the same voxel twice")
    return lookup


# --------------------------------------------------------------------------------------------
# the matrices
# --------------------------------------------------------------------------------------------
def surface_matrix(
    layers: list[np.ndarray],
    voxels: np.ndarray,
    shape: tuple[int, int, int],
    interp: str = "linear",
    min_weight: float = 0.5,
) -> sp.csr_matrix:
    """Volume -> subject surface: per vertex, weights over the targets, averaged over layers.

    Parameters
    ----------
    layers : list of arrays of shape (n_subject_vertices, 3)
        1-based voxel coordinates per depth layer (:func:`read_volume_to_surface`).
    voxels : array of shape (n_targets, 3), int
        0-based (x, y, z) of each target.
    shape : (X, Y, Z)
        The func1pt8mm grid.
    interp : {"linear", "nearest"}
    min_weight : float in (0, 1]
        A vertex keeps a row only when targets carry at least this share of its interpolation
        weight over its valid layers.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix of shape (n_subject_vertices, n_targets), float64
        Each row sums to 1 (the vertex's value is a weighted mean of targets) or is empty
        (no value: invalid in every layer, or too little of it on targets).
    """
    if interp not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interp!r}; expected one of {INTERPOLATIONS}")
    if not 0 < min_weight <= 1:
        raise ValueError(f"min_weight must be in (0, 1]; got {min_weight}")
    lookup = _target_lookup(voxels, shape)
    n_targets = int(np.asarray(voxels).shape[0])
    n_vertices = int(layers[0].shape[0])
    dims = np.asarray(shape, dtype=np.int64)
    rows, cols, weights = [], [], []
    n_valid = np.zeros(n_vertices, dtype=np.float64)
    for coords in layers:
        if coords.shape != (n_vertices, 3):
            raise ValueError("every layer must hold the same vertices")
        ok = valid_coordinates(coords, shape)
        n_valid += ok
        vert = np.flatnonzero(ok)
        c0 = coords[vert] - 1.0  # 0-based, within [0, dim - 1]
        if interp == "nearest":
            corners = [(np.floor(c0 + 0.5).astype(np.int64), np.ones(vert.size))]
        else:
            base = np.floor(c0).astype(np.int64)
            frac = c0 - base
            corners = []
            for dx in (0, 1):
                for dy in (0, 1):
                    for dz in (0, 1):
                        d = np.array([dx, dy, dz])
                        w = np.prod(np.where(d == 1, frac, 1.0 - frac), axis=1)
                        corners.append((base + d, w))
        for ijk, w in corners:
            inside = (w > 0) & (ijk < dims).all(axis=1)
            col = np.full(vert.size, -1, dtype=np.int64)
            col[inside] = lookup[tuple(ijk[inside].T)]
            hit = col >= 0
            rows.append(vert[hit])
            cols.append(col[hit])
            weights.append(w[hit])
    rows_a = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols_a = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    w_a = np.concatenate(weights) if weights else np.zeros(0)
    m = sp.coo_matrix((w_a, (rows_a, cols_a)), shape=(n_vertices, n_targets)).tocsr()
    m.sum_duplicates()
    covered = np.asarray(m.sum(axis=1)).ravel()
    share = np.divide(covered, n_valid, out=np.zeros(n_vertices), where=n_valid > 0)
    keep = share >= min_weight - 1e-12
    scale = np.divide(1.0, covered, out=np.zeros(n_vertices), where=keep & (covered > 0))
    m = sp.diags(scale) @ m
    m.eliminate_zeros()
    return m.tocsr()


def fsaverage_matrix(surface: sp.csr_matrix, fs_index: np.ndarray) -> sp.csr_matrix:
    """Subject surface -> fsaverage: each fsaverage vertex takes its subject vertex's row.

    Parameters
    ----------
    surface : csr_matrix of shape (n_subject_vertices, n_targets)
    fs_index : array of shape (n_fsaverage_vertices,), int
        0-based subject vertex of each fsaverage vertex (:func:`read_surface_to_fsaverage`).

    Returns
    -------
    matrix : csr_matrix of shape (n_fsaverage_vertices, n_targets)
    """
    return sp.csr_matrix(surface[np.asarray(fs_index, dtype=np.int64)])


def apply_matrix(matrix: sp.csr_matrix, values: np.ndarray, min_weight: float = 0.5) -> np.ndarray:
    """Per-vertex weighted mean of per-target ``values``; NaN targets are left out.

    Parameters
    ----------
    matrix : csr_matrix of shape (n_vertices, n_targets)
        Rows sum to 1 or are empty.
    values : array of shape (n_targets,)
    min_weight : float
        A vertex is NaN unless finite targets carry at least this share of its weight.

    Returns
    -------
    out : array of shape (n_vertices,), float64
        NaN where the vertex has no row or too little of it on finite values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (matrix.shape[1],):
        raise ValueError(f"values has shape {values.shape}; expected ({matrix.shape[1]},)")
    finite = np.isfinite(values)
    num = matrix @ np.where(finite, values, 0.0)
    den = matrix @ finite.astype(np.float64)
    ok = den >= min_weight - 1e-12
    out = np.full(matrix.shape[0], np.nan)
    out[ok] = num[ok] / den[ok]
    return out


def apply_labels(matrix: sp.csr_matrix, labels: np.ndarray, min_weight: float = 0.5) -> np.ndarray:
    """Per-vertex winner-take-all of per-target integer ``labels`` (like nsdcode's 'wta').

    Parameters
    ----------
    matrix : csr_matrix of shape (n_vertices, n_targets)
    labels : array of shape (n_targets,), int
        Category per target; negative = none (e.g. -1 for "no significant instruction").
    min_weight : float
        A vertex is -1 unless labelled targets carry at least this share of its weight.

    Returns
    -------
    out : array of shape (n_vertices,), int64
        The label with the largest total weight (the smallest label on a tie); -1 for none.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (matrix.shape[1],):
        raise ValueError(f"labels has shape {labels.shape}; expected ({matrix.shape[1]},)")
    out = np.full(matrix.shape[0], -1, dtype=np.int64)
    kinds = np.unique(labels[labels >= 0])
    if kinds.size == 0:
        return out
    onehot = sp.csr_matrix(
        (
            np.ones(int((labels >= 0).sum())),
            (np.flatnonzero(labels >= 0), np.searchsorted(kinds, labels[labels >= 0])),
        ),
        shape=(labels.size, kinds.size),
    )
    votes = (matrix @ onehot).toarray()
    total = votes.sum(axis=1)
    ok = total >= min_weight - 1e-12
    out[ok] = kinds[votes[ok].argmax(axis=1)]
    return out


# --------------------------------------------------------------------------------------------
# one subject's projection
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeProjection:
    """One subject's func1pt8mm targets projected onto its own surface and onto fsaverage.

    Parameters
    ----------
    subject : str
    shape : (X, Y, Z)
        The func1pt8mm grid.
    voxels : array of shape (n_targets, 3), int64
        0-based (x, y, z) of each target.
    surface : dict of str to csr_matrix of shape (n_subject_vertices, n_targets)
        Per hemisphere (``"lh"``, ``"rh"``): volume -> subject surface, mean over layerB1..B3.
    fsaverage : dict of str to csr_matrix of shape (n_fsaverage_vertices, n_targets)
        Per hemisphere: volume -> fsaverage (the subject-surface row of each fsaverage vertex).
    positions : dict of str to array of shape (n_fsaverage_vertices, 3), float32
        Per hemisphere, each fsaverage vertex's 0-based voxel-space position (its subject
        vertex's mean over valid layers); NaN when invalid in every layer.
    interp : {"linear", "nearest"}
    min_weight : float
    """

    subject: str
    shape: tuple[int, int, int]
    voxels: np.ndarray
    surface: dict[str, sp.csr_matrix]
    fsaverage: dict[str, sp.csr_matrix]
    positions: dict[str, np.ndarray]
    interp: str = "linear"
    min_weight: float = 0.5

    @property
    def n_targets(self) -> int:
        return int(self.voxels.shape[0])

    def to_surface(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target ``values`` (n_targets,) -> per hemisphere (n_subject_vertices,), NaN
        where no target reaches (see :func:`apply_matrix`)."""
        return {h: apply_matrix(self.surface[h], values, self.min_weight) for h in HEMIS}

    def to_fsaverage(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target ``values`` (n_targets,) -> per hemisphere (n_fsaverage_vertices,), NaN
        where no target reaches."""
        return {h: apply_matrix(self.fsaverage[h], values, self.min_weight) for h in HEMIS}

    def labels_to_fsaverage(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Per-target integer ``labels`` (n_targets,) -> per hemisphere (n_fsaverage_vertices,),
        winner-take-all, -1 where none (for categorical maps, e.g. the best instruction)."""
        return {h: apply_labels(self.fsaverage[h], labels, self.min_weight) for h in HEMIS}

    def placement(
        self, drawable: dict[str, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each target's nearest fsaverage vertex (see :func:`nearest_fsaverage_vertex`).

        Parameters
        ----------
        drawable : dict of str to array of shape (n_fsaverage_vertices,), bool, optional
            Only these vertices are candidates (e.g. those with flat coordinates).

        Returns
        -------
        hemi : array of shape (n_targets,), int8
        vertex : array of shape (n_targets,), int32
        distance : array of shape (n_targets,), float32
            In voxels (1.8 mm each).
        """
        positions = {}
        for h in HEMIS:
            pos = np.asarray(self.positions[h], dtype=np.float64).copy()
            if drawable is not None:
                mask = np.zeros(pos.shape[0], dtype=bool)
                d = np.asarray(drawable[h], dtype=bool)[: pos.shape[0]]
                mask[: d.size] = d
                pos[~mask] = np.nan
            positions[h] = pos
        return nearest_fsaverage_vertex(self.voxels, positions)

    def geometry(
        self, surface: str, drawable: dict[str, np.ndarray] | None = None
    ) -> TargetGeometry:
        """A :class:`TargetGeometry` placing each target at its nearest fsaverage vertex on the
        fsaverage surface ``surface`` (e.g. ``"nilearn:fsaverage"``); ``drawable`` as in
        :meth:`placement` (see :func:`drawable_vertices`)."""
        hemi, vertex, _ = self.placement(drawable)
        return TargetGeometry(surface=surface, hemi=hemi, vertex=vertex)


def drawable_vertices(surface: str) -> dict[str, np.ndarray] | None:
    """Per hemisphere, the fsaverage vertices of ``surface`` that have flat coordinates (nilearn's
    fsaverage: the first 10,242; a FreeSurfer flat patch: the vertices it keeps); None when the
    surface cannot be loaded (then every vertex is a candidate)."""
    from core.data.surfaces import load_flat_mesh

    try:
        return {h: np.isfinite(load_flat_mesh(surface, h).coords).all(axis=1) for h in HEMIS}
    except (DatasetError, OSError, ValueError):
        return None


def vertex_positions(layers: list[np.ndarray], shape: tuple[int, int, int]) -> np.ndarray:
    """Per subject-surface vertex, its 0-based voxel-space position: the mean over its valid layers.

    Parameters
    ----------
    layers : list of arrays of shape (n_subject_vertices, 3), 1-based coordinates
    shape : (X, Y, Z)

    Returns
    -------
    positions : array of shape (n_subject_vertices, 3), float64
        NaN for a vertex invalid in every layer.
    """
    total = np.zeros_like(layers[0], dtype=np.float64)
    count = np.zeros(layers[0].shape[0])
    for coords in layers:
        ok = valid_coordinates(coords, shape)
        total[ok] += coords[ok] - 1.0
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[:, None]


def nearest_fsaverage_vertex(
    voxels: np.ndarray, positions: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each target's nearest fsaverage vertex (both hemispheres), in voxel space.

    Parameters
    ----------
    voxels : array of shape (n_targets, 3)
        0-based voxel of each target.
    positions : dict of str to array of shape (n_fsaverage_vertices, 3)
        Per hemisphere, each fsaverage vertex's 0-based voxel-space position (its subject
        vertex's :func:`vertex_positions`), NaN when unknown.

    Returns
    -------
    hemi : array of shape (n_targets,), int8
    vertex : array of shape (n_targets,), int32
    distance : array of shape (n_targets,), float32
        In voxels; inf (vertex 0 of lh) when no fsaverage vertex has a position. A vertex equally
        near in both hemispheres goes to the first found.
    """
    from scipy.spatial import cKDTree

    voxels = np.asarray(voxels, dtype=np.float64)
    pts, hemi_of, vert_of = [], [], []
    for h, name in enumerate(HEMIS):
        pos = positions[name]
        ok = np.flatnonzero(np.isfinite(pos).all(axis=1))
        pts.append(pos[ok])
        hemi_of.append(np.full(ok.size, h, np.int8))
        vert_of.append(ok)
    all_pts = np.concatenate(pts)
    n = voxels.shape[0]
    if all_pts.shape[0] == 0 or n == 0:
        return np.zeros(n, np.int8), np.zeros(n, np.int32), np.full(n, np.inf, np.float32)
    dist, k = cKDTree(all_pts).query(voxels)
    return (
        np.concatenate(hemi_of)[k].astype(np.int8),
        np.concatenate(vert_of)[k].astype(np.int32),
        dist.astype(np.float32),
    )


def build_projection(
    layout: NsdLayout,
    subject: str,
    voxels: np.ndarray,
    shape: tuple[int, int, int],
    interp: str = "linear",
    min_weight: float = 0.5,
) -> VolumeProjection:
    """Read a subject's transforms and build its :class:`VolumeProjection` (no cache).

    Parameters
    ----------
    layout : NsdLayout
    subject : str
    voxels : array of shape (n_targets, 3), int
        0-based (x, y, z) of each func1pt8mm target (:func:`voxels_from_index`).
    shape : (X, Y, Z)
    interp : {"linear", "nearest"}
    min_weight : float in (0, 1]
        See :func:`surface_matrix`.

    Raises
    ------
    DatasetError
        Naming every missing transform file, or the first malformed one.
    """
    require_transforms(layout, subject)
    voxels = np.asarray(voxels, dtype=np.int64)
    surface, fsavg, positions = {}, {}, {}
    for hemi in HEMIS:
        layers: list[np.ndarray] = []
        for layer in DEPTH_LAYERS:
            n = layers[0].shape[0] if layers else None
            layers.append(read_volume_to_surface(layout.volume_to_surface(subject, hemi, layer), n))
        fs_index = read_surface_to_fsaverage(
            layout.surface_to_fsaverage(subject, hemi), layers[0].shape[0]
        )
        surface[hemi] = surface_matrix(layers, voxels, shape, interp, min_weight)
        fsavg[hemi] = fsaverage_matrix(surface[hemi], fs_index)
        positions[hemi] = vertex_positions(layers, shape)[fs_index].astype(np.float32)
    return VolumeProjection(
        subject=subject,
        shape=tuple(int(s) for s in shape),
        voxels=voxels,
        surface=surface,
        fsaverage=fsavg,
        positions=positions,
        interp=interp,
        min_weight=float(min_weight),
    )


def project_volume_values(
    layout: NsdLayout,
    subject: str,
    values: np.ndarray,
    voxels: np.ndarray,
    shape: tuple[int, int, int],
    cache_dir: Path | None = None,
    interp: str = "linear",
    min_weight: float = 0.5,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-voxel ``values`` of func1pt8mm targets on the subject's surface and on fsaverage.

    Parameters
    ----------
    layout, subject, voxels, shape, cache_dir, interp, min_weight
        See :func:`load_projection`.
    values : array of shape (n_targets,)

    Returns
    -------
    surface : dict of str to array of shape (n_subject_vertices,)
        Per hemisphere, NaN where no target reaches.
    fsaverage : dict of str to array of shape (n_fsaverage_vertices,)
        Per hemisphere, NaN where no target reaches.
    """
    projection = load_projection(layout, subject, voxels, shape, cache_dir, interp, min_weight)
    return projection.to_surface(values), projection.to_fsaverage(values)


# --------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------
def projection_key(
    layout: NsdLayout,
    subject: str,
    voxels: np.ndarray,
    shape: tuple[int, int, int],
    interp: str,
    min_weight: float,
) -> str:
    """The cache key: transform files' signature (path, size, mtime), target voxels, options."""
    from core.data.nsd_cache import source_signature
    from core.hashing import array_digest, content_key

    return content_key(
        "nsd-volume-projection",
        {
            "version": PROJECTION_VERSION,
            "subject": subject,
            "sources": source_signature(layout.projection_transforms(subject)),
            "voxels": array_digest(np.ascontiguousarray(voxels, dtype=np.int64)),
            "shape": [int(s) for s in shape],
            "interp": interp,
            "min_weight": float(min_weight),
        },
    )


def _csr_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_data": m.data.astype(np.float64),
        f"{prefix}_indices": m.indices.astype(np.int64),
        f"{prefix}_indptr": m.indptr.astype(np.int64),
        f"{prefix}_shape": np.asarray(m.shape, dtype=np.int64),
    }


def _csr_from(prefix: str, d: dict[str, np.ndarray]) -> sp.csr_matrix:
    shape = tuple(int(s) for s in d[f"{prefix}_shape"])
    return sp.csr_matrix(
        (d[f"{prefix}_data"], d[f"{prefix}_indices"], d[f"{prefix}_indptr"]), shape=shape
    )


def save_projection(path: Path, projection: VolumeProjection) -> None:
    """Write a projection to one ``.npz`` (CSR arrays and target placement; no pickle)."""
    from core.storage import save_npz

    arrays: dict[str, np.ndarray] = {
        "shape": np.asarray(projection.shape, dtype=np.int64),
        "voxels": projection.voxels.astype(np.int64),
        "min_weight": np.asarray(projection.min_weight, dtype=np.float64),
    }
    for hemi in HEMIS:
        arrays.update(_csr_arrays(f"{hemi}_surface", projection.surface[hemi]))
        arrays.update(_csr_arrays(f"{hemi}_fsaverage", projection.fsaverage[hemi]))
        arrays[f"{hemi}_positions"] = projection.positions[hemi].astype(np.float32)
    save_npz(Path(path), **arrays)


def read_projection(path: Path, subject: str, interp: str) -> VolumeProjection:
    """Read a projection written by :func:`save_projection` (``allow_pickle=False``).

    Raises
    ------
    core.storage.ArtifactError
        When the file is missing or unreadable.
    """
    from core.storage import load_npz

    d = load_npz(Path(path))
    return VolumeProjection(
        subject=subject,
        shape=tuple(int(s) for s in d["shape"]),
        voxels=d["voxels"],
        surface={h: _csr_from(f"{h}_surface", d) for h in HEMIS},
        fsaverage={h: _csr_from(f"{h}_fsaverage", d) for h in HEMIS},
        positions={h: d[f"{h}_positions"] for h in HEMIS},
        interp=interp,
        min_weight=float(d["min_weight"]),
    )


def load_projection(
    layout: NsdLayout,
    subject: str,
    voxels: np.ndarray,
    shape: tuple[int, int, int],
    cache_dir: Path | None = None,
    interp: str = "linear",
    min_weight: float = 0.5,
) -> VolumeProjection:
    """The subject's :class:`VolumeProjection`, from ``cache_dir`` when cached, else built (and
    written there as ``<key>.npz``, see :func:`projection_key`).

    Parameters
    ----------
    layout, subject, voxels, shape, interp, min_weight
        See :func:`build_projection`.
    cache_dir : Path, optional
        A folder of the dataset's compact cache (``<home>/datasets/<name>/<subject>/projection``);
        None: no cache.

    Raises
    ------
    DatasetError
        Naming every missing transform file, or a malformed one.
    """
    from core.storage import ArtifactError

    require_transforms(layout, subject)
    if cache_dir is None:
        return build_projection(layout, subject, voxels, shape, interp, min_weight)
    key = projection_key(layout, subject, voxels, shape, interp, min_weight)
    path = Path(cache_dir) / f"{key}.npz"
    try:
        return read_projection(path, subject, interp)
    except (ArtifactError, KeyError, ValueError):
        pass  # absent or damaged: rebuilt below
    projection = build_projection(layout, subject, voxels, shape, interp, min_weight)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    save_projection(path, projection)
    return projection
