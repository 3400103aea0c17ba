"""fsaverage flat meshes for real data (NSD fsaverage betas, Algonauts challenge space).

Targets on fsaverage carry ``TargetGeometry(surface=<id>, hemi, vertex)`` with ``vertex`` the
fsaverage vertex index (0 .. 163841). Two surface ids draw them:

``"fsaverage:<surf folder>"``
    The FreeSurfer files of an NSD folder (``nsddata/freesurfer/fsaverage/surf``):
    ``{lh,rh}.full.flat.patch.3d`` (flat coordinates; vertices outside the patch are NaN) and
    ``{lh,rh}.inflated`` (faces and inflated coordinates).
``"nilearn:fsaverage"``
    nilearn's bundled fsaverage5 flat mesh (works offline). fsaverage's icosahedral vertices
    nest: fsaverage5's 10,242 vertices are the first 10,242 of fsaverage, so this mesh has
    163,842 vertices and fsaverage5's faces; every other vertex sits at its nearest fsaverage5
    vertex (pycortex's bundled upsampling neighbours, :func:`fsaverage5_parent`; NaN where
    pycortex is not installed): a decimated but faithful flatmap where every vertex is drawn.
``"nilearn:fsaverage5"``
    The plain fsaverage5 mesh (10,242 vertices).

Importing this module registers these loaders with :mod:`core.data.surfaces`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from core.data.dataset import DatasetError
from core.data.flat_mesh import FlatMesh
from core.data.nsd_layout import FSAVERAGE_VERTICES

FSAVERAGE5_VERTICES = 10242
NILEARN_FSAVERAGE = "nilearn:fsaverage"


def read_patch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a FreeSurfer patch file (``*.flat.patch.3d``).

    Format: big-endian int32 ``-1``, int32 ``n``, then ``n`` records of (int32 vertex, float32 x,
    y, z); the vertex number is 1-based and negative for border vertices.

    Returns
    -------
    vertices : array of shape (n,), int64
        0-based vertex indices.
    xyz : array of shape (n, 3), float32
    """
    path = Path(path)
    dtype = np.dtype([("vert", ">i4"), ("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
    if not path.exists():
        raise DatasetError(f"{path}: expected a FreeSurfer flat patch; found no file")
    raw = path.read_bytes()
    if len(raw) < 8:
        raise DatasetError(f"{path}: expected a FreeSurfer patch header; found {len(raw)} bytes")
    version, n = struct.unpack(">ii", raw[:8])
    body = raw[8:]
    if version != -1 or len(body) != n * dtype.itemsize:
        raise DatasetError(
            f"{path}: expected a FreeSurfer patch (-1, n, n x 16 bytes); found version {version}, "
            f"n={n}, {len(body)} bytes of records (truncated or corrupt)"
        )
    rec = np.frombuffer(body, dtype=dtype)
    vertices = np.abs(rec["vert"].astype(np.int64)) - 1
    xyz = np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
    return vertices, xyz


def load_freesurfer_flat(surf_dir: Path, hemi: str) -> FlatMesh:
    """Flat mesh from ``<surf_dir>/{hemi}.full.flat.patch.3d`` and ``{hemi}.inflated``.

    Faces are the inflated surface's triangles whose three vertices are all in the patch.
    """
    import nibabel.freesurfer as fs

    surf_dir = Path(surf_dir)
    inflated_path = surf_dir / f"{hemi}.inflated"
    if not inflated_path.exists():
        raise DatasetError(f"{inflated_path}: expected a FreeSurfer surface; found no file")
    try:
        infl, faces = fs.read_geometry(str(inflated_path))
    except Exception as exc:
        raise DatasetError(f"{inflated_path}: expected a FreeSurfer surface; found {exc}") from exc
    vertices, xyz = read_patch(surf_dir / f"{hemi}.full.flat.patch.3d")
    n = infl.shape[0]
    if vertices.size and vertices.max() >= n:
        raise DatasetError(
            f"{surf_dir / f'{hemi}.full.flat.patch.3d'}: vertex {vertices.max()} beyond the "
            f"{n} vertices of {inflated_path.name}"
        )
    coords = np.full((n, 2), np.nan, dtype=np.float32)
    coords[vertices] = xyz[:, :2]
    inside = np.zeros(n, dtype=bool)
    inside[vertices] = True
    keep = inside[faces].all(axis=1)
    return FlatMesh(
        coords=coords,
        faces=np.asarray(faces[keep], dtype=np.int32),
        inflated=np.asarray(infl, dtype=np.float32),
    )


def _nilearn_fsaverage5(hemi: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from core.config import setup_environment

    setup_environment()
    from nilearn.datasets import load_fsaverage

    fs5 = load_fsaverage("fsaverage5")
    part = "left" if hemi == "lh" else "right"
    flat = fs5["flat"].parts[part]
    inflated = fs5["inflated"].parts[part]
    return (
        np.asarray(flat.coordinates, dtype=np.float32),
        np.asarray(flat.faces, dtype=np.int32),
        np.asarray(inflated.coordinates, dtype=np.float32),
    )


def fsaverage5_parent(hemi: str) -> np.ndarray | None:
    """The nearest fsaverage5 vertex (on fsaverage's sphere) of every fsaverage vertex, from
    pycortex's bundled ``upsample_fsaverage_neighbors.npz`` (read without importing pycortex).

    Returns
    -------
    parent : array of shape (163842,), int64, or None
        ``parent[v] == v`` for the first 10,242 vertices; None without pycortex's file.
    """
    import importlib.util

    spec = importlib.util.find_spec("cortex")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    path = path / "upsample_fsaverage_neighbors.npz"
    try:
        extra = np.asarray(np.load(path, allow_pickle=False)[f"{hemi}_ico5"], dtype=np.int64)
    except (OSError, KeyError, ValueError):
        return None
    if extra.shape != (FSAVERAGE_VERTICES - FSAVERAGE5_VERTICES,):
        return None
    return np.concatenate([np.arange(FSAVERAGE5_VERTICES), extra])


def _nilearn_loader(surface_id: str, hemi: str) -> FlatMesh:
    flat, faces, inflated = _nilearn_fsaverage5(hemi)
    if surface_id == "nilearn:fsaverage5":
        return FlatMesh(coords=flat[:, :2], faces=faces, inflated=inflated)
    if surface_id != NILEARN_FSAVERAGE:
        raise DatasetError(f"unknown nilearn surface {surface_id!r}")
    parent = fsaverage5_parent(hemi)
    if parent is not None:  # every vertex drawn at its nearest fsaverage5 vertex
        return FlatMesh(coords=flat[parent, :2], faces=faces, inflated=inflated[parent])
    coords = np.full((FSAVERAGE_VERTICES, 2), np.nan, dtype=np.float32)
    coords[:FSAVERAGE5_VERTICES] = flat[:, :2]
    infl = np.full((FSAVERAGE_VERTICES, 3), np.nan, dtype=np.float32)
    infl[:FSAVERAGE5_VERTICES] = inflated
    return FlatMesh(coords=coords, faces=faces, inflated=infl)


def _freesurfer_loader(surface_id: str, hemi: str) -> FlatMesh:
    return load_freesurfer_flat(Path(surface_id.split(":", 1)[1]), hemi)


def fsaverage_surface_id(surf_dir: Path | None) -> str:
    """The best surface id for fsaverage targets: the NSD folder's flat patches when both
    hemispheres' ``full.flat.patch.3d`` and ``inflated`` exist there, else nilearn's."""
    if surf_dir is not None:
        surf_dir = Path(surf_dir)
        files = [
            surf_dir / f"{h}.{k}" for h in ("lh", "rh") for k in ("full.flat.patch.3d", "inflated")
        ]
        if all(f.exists() for f in files):
            return f"fsaverage:{surf_dir.resolve()}"
    return NILEARN_FSAVERAGE


def load_real_surface(surface_id: str, hemi: str) -> FlatMesh:
    """The flat mesh of an ``"fsaverage:<folder>"`` or ``"nilearn:<mesh>"`` surface id (see
    :func:`core.data.surfaces.load_flat_mesh`, which caches it)."""
    if surface_id.startswith("fsaverage:"):
        return _freesurfer_loader(surface_id, hemi)
    return _nilearn_loader(surface_id, hemi)
