"""3D brain views: any :class:`~core.viz.maps.BrainMap` on both hemispheres' inflated and pial
surfaces, with ROI outlines and names, in the colours of the flat view, as one small
self-contained HTML page (our own WebGL viewer, :mod:`core.viz.brain3d_page`; no plotly, nothing
is fetched).

Surfaces per surface id (what a dataset's :class:`~core.data.dataset.TargetGeometry` names):

- ``"pycortex:<subject>"`` (the demo: S1): pycortex's inflated and pial surfaces;
- ``"fsaverage:<surf folder>"`` (an NSD folder): ``{lh,rh}.inflated`` and ``{lh,rh}.pial``;
- ``"nilearn:fsaverage"`` / ``"nilearn:fsaverage5"``: nilearn's bundled fsaverage5. The full
  fsaverage mesh (163,842 vertices per hemisphere) is not bundled with nilearn and cannot be
  downloaded here: fsaverage targets are drawn on fsaverage5's 10,242 vertices per hemisphere
  (the first 10,242 of fsaverage, which nest), so targets on finer vertices are not drawn;
- targets without geometry (volume data, e.g. NSD func1pt8mm): :func:`surface_problem` says why
  no surface can be drawn.

Meshes are decimated once (vertex clustering on the inflated surface, to about
:data:`DEFAULT_VERTICES` vertices per hemisphere) and cached on disk; a view is then a per-vertex
colour lookup and an HTML template (tens of milliseconds).

The page carries the mesh compactly (coordinates in 0.1 mm, delta-coded, faces delta-coded, all
gzip-compressed and unpacked by the browser's ``DecompressionStream``): about 0.53 MB for S1's
two decimated surfaces, 0.05-0.1 MB per map, 25 kB of page: 0.6-0.65 MB per view (3.2 MB when
plotly.js was inlined). The camera is fitted to the vertices shown
(:func:`fit_camera`), ROI borders take a colour that contrasts with the map's colour scale
(:func:`border_colours`) and ROI names are anchored deep inside their ROI
(:func:`roi_label_positions`), then pushed apart on screen where they would overlap.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.config import subdir
from core.data.dataset import DatasetError, TargetSet
from core.hashing import content_key
from core.storage import ArtifactError, load_npz, save_npz
from core.viz.maps import BrainMap, colorscale

#: Vertices per hemisphere after decimation (S1 has 152,893; fsaverage5 10,242 is kept whole).
DEFAULT_VERTICES = 20_000
#: Surfaces offered, in order (the first is shown first).
SURFACES = ("inflated", "pial")
#: Colours ROI borders may take, in order of preference: a neutral one where it stands out from
#: every colour of the map (CIE76 colour difference at least :data:`MIN_CONTRAST`), else the
#: chromatic one that stands out most.
BORDER_NEUTRAL = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}
BORDER_CHROMATIC = {"green": (0.0, 0.8, 0.25), "cyan": (0.0, 0.85, 1.0), "magenta": (0.9, 0.0, 0.9)}
#: Colours the highlighted ROI's outline may take.
HIGHLIGHT_COLOURS = {
    "blue": (0.1, 0.6, 1.0), "green": (0.0, 0.8, 0.25), "magenta": (0.9, 0.0, 0.9),
    "cyan": (0.0, 0.85, 1.0), "yellow": (1.0, 0.85, 0.0),
}  # fmt: skip
#: Least colour difference (CIE76 Delta E) between a border and any colour of the map.
MIN_CONTRAST = 35.0
#: Shades of bare cortex (sulci, gyri) where no target is near.
BARE_CORTEX = (0.62, 0.82)
_MESH_VERSION = 4

FSAVERAGE_NOTE = (
    "Drawn on nilearn's bundled fsaverage5 (10,242 vertices per hemisphere): the full-resolution "
    "fsaverage meshes are not available offline here, so each finer fsaverage vertex is shown "
    "at its nearest fsaverage5 vertex (about 16 share one). Register the NSD folder with its "
    "nsddata/freesurfer/fsaverage/surf files to draw every vertex at its own place."
)


@dataclass(frozen=True)
class BrainMesh:
    """Both hemispheres of one surface family, decimated, stacked (left first).

    Attributes
    ----------
    coords : dict of str to array of shape (n_vertices, 3), float32
        Vertex positions per surface (``"inflated"``, ``"pial"``); the inflated hemispheres are
        moved apart so they do not overlap.
    faces : array of shape (n_faces, 3), int32
    hemi : array of shape (n_vertices,), int8
        0 = left.
    cluster_of : tuple of two arrays, int32
        Per hemisphere, the decimated vertex of each original vertex (-1 = not drawn).
    sulc : array of shape (n_vertices,), float32
        Shading of the bare cortex (1 = gyrus, 0 = sulcus), from the pial surface's curvature.
    note : str
        What the mesh is (shown under the view).
    """

    coords: dict[str, np.ndarray]
    faces: np.ndarray
    hemi: np.ndarray
    cluster_of: tuple[np.ndarray, np.ndarray]
    sulc: np.ndarray
    note: str

    @property
    def n_vertices(self) -> int:
        return int(self.hemi.size)


def surface_problem(targets: TargetSet) -> str | None:
    """Why no surface view can be drawn for these targets (None when one can)."""
    if targets.geometry is None:
        return (
            "No 3D surface view: these targets are voxels of a volume (e.g. NSD func1pt8mm) "
            "with no mapping to cortical surface vertices. Register the dataset in fsaverage "
            "space (`datasets add nsd PATH --space fsaverage`) to see its maps on a surface."
        )
    return None


# --------------------------------------------------------------------------- surfaces


def _read_hemisphere(surface_id: str, hemi: str) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """(coords per surface, faces, number of vertices targets index into) of one hemisphere."""
    if surface_id.startswith("pycortex:"):
        from core.data.surfaces import import_cortex

        cortex = import_cortex()
        subject = surface_id.split(":", 1)[1]
        if subject not in cortex.db.subjects:
            raise DatasetError(f"pycortex has no subject {subject!r}")
        infl, faces = cortex.db.get_surf(subject, "inflated", hemisphere=hemi)
        try:
            pial, _ = cortex.db.get_surf(subject, "pia", hemisphere=hemi)
        except Exception:
            pial, _ = cortex.db.get_surf(subject, "fiducial", hemisphere=hemi)
        return {"inflated": infl, "pial": pial}, np.asarray(faces), int(infl.shape[0])
    if surface_id.startswith("fsaverage:"):
        import nibabel.freesurfer as fs

        folder = Path(surface_id.split(":", 1)[1])
        infl, faces = fs.read_geometry(str(folder / f"{hemi}.inflated"))
        coords = {"inflated": infl}
        for name in ("pial", "white"):
            path = folder / f"{hemi}.{name}"
            if path.exists():
                coords["pial"] = fs.read_geometry(str(path))[0]
                break
        return coords, np.asarray(faces), int(infl.shape[0])
    if surface_id.startswith("nilearn:"):
        from core.config import setup_environment

        setup_environment()
        from nilearn.datasets import load_fsaverage

        fs5 = load_fsaverage("fsaverage5")
        part = "left" if hemi == "lh" else "right"
        coords = {
            name: np.asarray(fs5[key].parts[part].coordinates)
            for name, key in (("inflated", "inflated"), ("pial", "pial"))
        }
        faces = np.asarray(fs5["inflated"].parts[part].faces)
        n_index = 163_842 if surface_id == "nilearn:fsaverage" else coords["inflated"].shape[0]
        return coords, faces, n_index
    raise DatasetError(f"no 3D surfaces for surface id {surface_id!r}")


def _cluster(coords: np.ndarray, faces: np.ndarray, n_target: int) -> np.ndarray:
    """Vertex clustering: the cluster index of each vertex (a grid over ``coords``, sized so that
    about ``n_target`` cells are occupied)."""
    n = coords.shape[0]
    if n <= n_target:
        return np.arange(n, dtype=np.int64)
    tri = coords[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    cell = float(np.sqrt(area.sum() / n_target))
    lo = coords.min(0)
    inverse = np.arange(n)
    for _ in range(4):
        idx = np.floor((coords - lo) / cell).astype(np.int64)
        dims = idx.max(0) + 1
        keys = (idx[:, 0] * dims[1] + idx[:, 1]) * dims[2] + idx[:, 2]
        _, inverse = np.unique(keys, return_inverse=True)
        got = int(inverse.max()) + 1
        if abs(got - n_target) <= 0.1 * n_target:
            break
        cell *= float(np.sqrt(got / n_target))
    return inverse.astype(np.int64)


def _decimate(coords: dict[str, np.ndarray], faces: np.ndarray, n_target: int):
    """(coords per surface, faces, cluster of each vertex) of a decimated hemisphere."""
    cluster = _cluster(np.asarray(coords["inflated"], np.float64), faces, n_target)
    n_c = int(cluster.max()) + 1
    counts = np.bincount(cluster, minlength=n_c).astype(np.float64)
    out = {}
    for name, xyz in coords.items():
        xyz = np.asarray(xyz, np.float64)
        out[name] = np.stack(
            [np.bincount(cluster, xyz[:, d], minlength=n_c) / counts for d in range(3)], axis=1
        ).astype(np.float32)
    f = cluster[faces]
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return out, f[np.sort(first)].astype(np.int32), cluster.astype(np.int32)


def _vertex_normals(xyz: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = xyz[faces].astype(np.float64)
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = xyz.shape[0]
    vn = np.zeros((n, 3), np.float64)
    for k in range(3):
        for d in range(3):
            vn[:, d] += np.bincount(faces[:, k], fn[:, d], minlength=n)
    norm = np.linalg.norm(vn, axis=1, keepdims=True)
    return (vn / np.where(norm > 0, norm, 1)).astype(np.float32)


def _neighbour_mean(values: np.ndarray, faces: np.ndarray, n: int) -> np.ndarray:
    """Mean of each vertex's neighbours (through faces) of a per-vertex array."""
    values = np.asarray(values, np.float64)
    cols = values.reshape(values.shape[0], -1)
    acc = np.zeros((n, cols.shape[1]), np.float64)
    deg = np.zeros(n, np.float64)
    for a, b in ((0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)):
        for d in range(cols.shape[1]):
            acc[:, d] += np.bincount(faces[:, a], cols[faces[:, b], d], minlength=n)
        deg += np.bincount(faces[:, a], minlength=n)
    acc /= np.where(deg > 0, deg, 1)[:, None]
    return acc.reshape(values.shape)


def _sulc(pial: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """1 on gyri (convex), 0 in sulci, from the umbrella Laplacian along the normal, smoothed."""
    n = pial.shape[0]
    lap = _neighbour_mean(pial.astype(np.float64), faces, n) - pial
    conv = -(lap * _vertex_normals(pial, faces)).sum(1)
    for _ in range(3):
        conv = 0.5 * conv + 0.5 * _neighbour_mean(conv, faces, n)
    return (conv > 0).astype(np.float32)


def _build_mesh(surface_id: str, n_target: int) -> BrainMesh:
    coords, faces, hemis, clusters, sulc = {s: [] for s in SURFACES}, [], [], [], []
    offset = 0
    present = set(SURFACES)
    for h, hemi in enumerate(("lh", "rh")):
        surf, tri, n_index = _read_hemisphere(surface_id, hemi)
        present &= set(surf)
        dec, f, cluster = _decimate(surf, tri, n_target)
        n_dec = dec["inflated"].shape[0]
        full = np.full(n_index, -1, np.int32)
        full[: cluster.size] = cluster + offset
        if surface_id == "nilearn:fsaverage":  # finer vertices: their nearest fsaverage5 vertex
            from core.data.fsaverage import fsaverage5_parent

            parent = fsaverage5_parent(hemi)
            if parent is not None and parent.size == n_index:
                full = full[parent]
        clusters.append(full)
        for name in SURFACES:
            coords[name].append(dec.get(name, dec["inflated"]))
        faces.append(f + offset)
        hemis.append(np.full(n_dec, h, np.int8))
        sulc.append(_sulc(dec.get("pial", dec["inflated"]), f))
        offset += n_dec
    stacked = {name: np.concatenate(parts) for name, parts in coords.items() if name in present}
    hemi = np.concatenate(hemis)
    # the inflated hemispheres overlap in place: move them apart, a 6 mm gap at the midline
    infl = stacked["inflated"]
    infl[hemi == 0, 0] -= infl[hemi == 0, 0].max() + 3.0
    infl[hemi == 1, 0] -= infl[hemi == 1, 0].min() - 3.0
    n_full = sum(int((c >= 0).sum()) for c in clusters)
    if surface_id.startswith("nilearn:fsaverage") and surface_id != "nilearn:fsaverage5":
        note = FSAVERAGE_NOTE
    else:
        note = (
            f"{_surface_name(surface_id)}: {n_full:,} vertices, decimated to {hemi.size:,} for "
            "the browser; each vertex shows its nearest target within 3 mm."
            if hemi.size < n_full
            else f"{_surface_name(surface_id)}: {hemi.size:,} vertices."
        )
    return BrainMesh(
        coords=stacked,
        faces=np.concatenate(faces).astype(np.int32),
        hemi=hemi,
        cluster_of=(clusters[0], clusters[1]),
        sulc=np.concatenate(sulc).astype(np.float32),
        note=note,
    )


def _surface_name(surface_id: str) -> str:
    if surface_id.startswith("pycortex:"):
        return f"pycortex subject {surface_id.split(':', 1)[1]}"
    if surface_id.startswith("fsaverage:"):
        return "fsaverage (FreeSurfer files of the dataset)"
    return "nilearn fsaverage5"


@lru_cache(maxsize=4)
def load_brain_mesh(surface_id: str, n_vertices: int = DEFAULT_VERTICES) -> BrainMesh:
    """The decimated two-hemisphere mesh of a surface id (cached in memory and on disk).

    Raises
    ------
    DatasetError
        For a surface id without 3D surfaces.
    """
    key = content_key(
        "brain-mesh", {"surface": surface_id, "n": n_vertices, "v": _MESH_VERSION}
    )
    path = subdir("flatmaps") / f"mesh3d-{key}.npz"
    try:
        d = load_npz(path)
        coords = {s: d[f"coords_{s}"] for s in SURFACES if f"coords_{s}" in d}
        return BrainMesh(coords, d["faces"], d["hemi"], (d["cluster_lh"], d["cluster_rh"]),
                         d["sulc"], str(d["note"]))  # fmt: skip
    except (ArtifactError, KeyError):
        pass
    mesh = _build_mesh(surface_id, n_vertices)
    save_npz(
        path,
        **{f"coords_{s}": c for s, c in mesh.coords.items()},
        faces=mesh.faces,
        hemi=mesh.hemi,
        cluster_lh=mesh.cluster_of[0],
        cluster_rh=mesh.cluster_of[1],
        sulc=mesh.sulc,
        note=np.array(mesh.note),
    )
    return mesh


# --------------------------------------------------------------------------- maps on the mesh


#: A mesh vertex shows the nearest target within this distance (mm, on the inflated surface),
#: as a flatmap pixel shows the nearest target within a small flat distance.
TARGET_RADIUS = 3.0


def vertex_targets(mesh: BrainMesh, targets: TargetSet, radius: float = TARGET_RADIUS) -> np.ndarray:
    """The target each mesh vertex shows: the nearest target (same hemisphere, on the inflated
    surface) within ``radius`` mm, -1 where none is that near.

    Raises
    ------
    ValueError
        For targets without surface geometry (see :func:`surface_problem`).
    """
    from scipy.spatial import cKDTree

    geo = targets.geometry
    if geo is None:
        raise ValueError(surface_problem(targets))
    at = np.full(geo.vertex.size, -1, np.int64)
    for h in (0, 1):
        sel = geo.hemi == h
        table = mesh.cluster_of[h]
        v = geo.vertex[sel].astype(np.int64)
        got = np.full(v.size, -1, np.int64)
        ok = v < table.size
        got[ok] = table[v[ok]]
        at[sel] = got
    infl = mesh.coords["inflated"]
    out = np.full(mesh.n_vertices, -1, np.int64)
    for h in (0, 1):
        tidx = np.flatnonzero((geo.hemi == h) & (at >= 0))
        verts = np.flatnonzero(mesh.hemi == h)
        if tidx.size == 0 or verts.size == 0:
            continue
        dist, k = cKDTree(infl[at[tidx]]).query(infl[verts], distance_upper_bound=radius)
        hit = np.isfinite(dist)
        out[verts[hit]] = tidx[k[hit]]
    return out


def vertex_values(vt: np.ndarray, brain_map: BrainMap) -> np.ndarray:
    """Per mesh vertex, the value (NaN) or category (-1) of the target it shows."""
    ok = vt >= 0
    if brain_map.categorical:
        out = np.full(vt.size, -1, np.int64)
        out[ok] = brain_map.values[vt[ok]]
        return out
    out = np.full(vt.size, np.nan)
    out[ok] = brain_map.values[vt[ok]]
    return out


def vertex_rois(vt: np.ndarray, rois: dict[str, np.ndarray]) -> np.ndarray:
    """Per mesh vertex, the 1-based index (in ``rois`` order) of the first ROI holding the
    target it shows; 0 for none."""
    out = np.zeros(vt.size, np.int64)
    ok = vt >= 0
    for k, mask in reversed(list(enumerate(rois.values(), start=1))):
        inside = np.zeros(vt.size, bool)
        inside[ok] = np.asarray(mask)[vt[ok]]
        out[inside] = k
    return out


def _edges_of(faces: np.ndarray) -> np.ndarray:
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def outline_vertices(mesh: BrainMesh, labels: np.ndarray) -> np.ndarray:
    """Vertices on the border of their ROI (a neighbour through a face has another label)."""
    e = _edges_of(mesh.faces)
    a, b = labels[e[:, 0]], labels[e[:, 1]]
    diff = a != b
    edge = np.zeros(mesh.n_vertices, bool)
    edge[e[diff & (a > 0), 0]] = True
    edge[e[diff & (b > 0), 1]] = True
    return edge


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in 0..1, shape (..., 3)."""
    c = np.asarray(rgb, np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def map_colours(brain_map: BrainMap, n: int = 64) -> np.ndarray:
    """Every colour a view of the map may paint under a border: its colour scale sampled at ``n``
    points (continuous maps) or its categories' colours, and the shades of bare cortex.

    Returns
    -------
    rgb : array of shape (k, 3), float in 0..1
    """
    import matplotlib

    from core.viz.maps import category_colours

    if brain_map.categorical:
        scale = np.array(category_colours(brain_map.names), np.float64).reshape(-1, 3)
    else:
        scale = matplotlib.colormaps[brain_map.cmap](np.linspace(0, 1, n))[:, :3]
    bare = np.array([(g, g, g) for g in BARE_CORTEX])
    return np.vstack([scale, bare])


def colour_contrast(colour: tuple[float, float, float], colours: np.ndarray) -> float:
    """The least CIE76 colour difference (Delta E) between ``colour`` and any of ``colours``."""
    return float(np.linalg.norm(_lab(np.asarray(colours)) - _lab(np.asarray(colour)), axis=-1).min())


def border_colours(
    brain_map: BrainMap,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(ROI border colour, highlighted ROI colour) that stand out on this map.

    The border is black or white where that differs from every colour of the map by at least
    :data:`MIN_CONTRAST` (black on ``RdBu_r`` and on the categories, as the white middle of a
    diverging scale would swallow white lines), else the colour of :data:`BORDER_CHROMATIC` that
    differs most (green on ``inferno``, whose ends are black and pale yellow). The highlight is
    the first of :data:`HIGHLIGHT_COLOURS` that differs by that much from the map and from the
    border.
    """
    colours = map_colours(brain_map)
    border = next(
        (c for c in BORDER_NEUTRAL.values() if colour_contrast(c, colours) >= MIN_CONTRAST), None
    )
    if border is None:
        border = max(BORDER_CHROMATIC.values(), key=lambda c: colour_contrast(c, colours))
    against = np.vstack([colours, [border]])
    highlight = max(HIGHLIGHT_COLOURS.values(), key=lambda c: colour_contrast(c, against))
    return tuple(float(x) for x in border), tuple(float(x) for x in highlight)


def vertex_rgb(
    mesh: BrainMesh,
    vt: np.ndarray,
    brain_map: BrainMap,
    rois: dict[str, np.ndarray] | None = None,
    highlight: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB uint8 per vertex, per-vertex value, per-vertex ROI index) of a map on the mesh.

    Colours follow :meth:`BrainMap.target_rgba` (the flat view's scale); vertices without a
    target near are shaded cortex (light on gyri, dark in sulci); ROI borders and the highlighted
    ROI's outline take the colours of :func:`border_colours`, which stand out on this map.
    """
    values = vertex_values(vt, brain_map)
    shown = values >= 0 if brain_map.categorical else np.isfinite(values)
    rgb = np.empty((mesh.n_vertices, 3), np.float32)
    rgb[:] = BARE_CORTEX[0] + (BARE_CORTEX[1] - BARE_CORTEX[0]) * mesh.sulc[:, None]
    proxy = BrainMap(
        key="", title="", label="", values=np.asarray(values)[shown], cmap=brain_map.cmap,
        limits=brain_map.limits, names=brain_map.names,
    )  # fmt: skip
    rgb[shown] = proxy.target_rgba()[:, :3]
    roi_index = np.zeros(mesh.n_vertices, np.int64)
    if rois:
        border, high = border_colours(brain_map)
        roi_index = vertex_rois(vt, rois)
        rgb[outline_vertices(mesh, roi_index)] = border
        if highlight in rois:
            k = list(rois).index(highlight) + 1
            inside = roi_index == k
            edge = outline_vertices(mesh, np.where(inside, 1, 0))
            e = _edges_of(mesh.faces)
            ring = np.zeros_like(edge)
            ring[e[edge[e[:, 0]], 1]] = True  # one ring wider, as the flat view's thick outline
            rgb[edge | (ring & inside)] = high
    out_values = values.astype(np.float32) if not brain_map.categorical else values
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), out_values, roi_index


def roi_label_positions(
    mesh: BrainMesh, roi_index: np.ndarray, names: list[str]
) -> list[dict]:
    """Where to write each ROI's name, per hemisphere: the ROI vertex farthest (along the
    inflated surface) from the ROI's border, so that the names of nested or neighbouring ROIs
    (V2 wraps around V1) sit apart; ties go to the vertex nearest the ROI's centre.

    Returns
    -------
    labels : list of dict
        ``name``, ``hemi`` (0 = left), ``vertex`` (its index in the mesh) and ``pos`` (its
        position per surface, mm).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n = mesh.n_vertices
    pairs = np.sort(_edges_of(mesh.faces).astype(np.int64), axis=1)
    keys = np.unique(pairs[:, 0] * n + pairs[:, 1])
    e = np.stack([keys // n, keys % n], axis=1)
    infl = mesh.coords["inflated"].astype(np.float64)
    la, lb = roi_index[e[:, 0]], roi_index[e[:, 1]]
    # every ROI's border vertices, and the edges inside one ROI: one search gives each ROI vertex
    # its distance to its own ROI's border
    border = np.zeros(n, bool)
    border[e[la != lb].ravel()] = True
    border &= roi_index > 0
    same = (la == lb) & (la > 0)
    depth = np.zeros(n)
    if border.any() and same.any():
        length = np.linalg.norm(infl[e[same, 0]] - infl[e[same, 1]], axis=1) + 1e-6
        g = coo_matrix((length, (e[same, 0], e[same, 1])), shape=(n, n)).tocsr()
        depth = dijkstra(g, directed=False, indices=np.flatnonzero(border), min_only=True)
        depth = np.where(np.isfinite(depth), depth, 0.0)
    out = []
    for k, name in enumerate(names, start=1):
        for h in (0, 1):
            idx = np.flatnonzero((roi_index == k) & (mesh.hemi == h))
            if idx.size == 0:
                continue
            centre = infl[idx].mean(0)
            near = -np.linalg.norm(infl[idx] - centre, axis=1) * 1e-3
            v = int(idx[np.argmax(np.round(depth[idx], 1) + near)])
            pos = {s: [round(float(x), 2) for x in c[v]] for s, c in mesh.coords.items()}
            out.append({"name": name, "hemi": h, "vertex": v, "pos": pos})
    return out


# --------------------------------------------------------------------------- camera

#: Views offered: (azimuth, elevation) in degrees of the direction from the brain to the eye
#: (azimuth 0 = right, 90 = front; elevation 90 = above). The first one is shown first: the
#: occipital pole, where the visual ROIs are.
VIEWS: dict[str, tuple[float, float]] = {
    "back": (-90.0, 8.0), "left": (180.0, 10.0), "right": (0.0, 10.0),
    "bottom": (-90.0, -89.0), "top": (-90.0, 89.0),
}  # fmt: skip
#: Vertical field of view of the camera (degrees).
FOV = 20.0
#: Fraction of the view the fitted brain may fill (a margin on every side).
FIT_MARGIN = 0.92


def camera_basis(azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(direction to the eye, screen right, screen up), unit vectors, of a turntable camera with
    the z axis up."""
    a, e = np.radians(azimuth), np.radians(elevation)
    d = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    r = np.array([-np.sin(a), np.cos(a), 0.0])
    u = np.cross(r, -d)
    return d, r, u / np.linalg.norm(u)


def fit_camera(
    xyz: np.ndarray, azimuth: float, elevation: float, aspect: float, fov: float = FOV,
    margin: float = FIT_MARGIN,
) -> dict:  # fmt: skip
    """The nearest camera, looking from (``azimuth``, ``elevation``) at the centre of the
    vertices' bounding box, that keeps every vertex inside ``margin`` of the view (the page
    computes the same for its canvas, :mod:`core.viz.brain3d_page`).

    Parameters
    ----------
    xyz : array of shape (n, 3)
        The vertices shown.
    aspect : float
        Width over height of the view.

    Returns
    -------
    camera : dict
        ``target``, ``eye``, ``right``, ``up`` (arrays), ``distance`` and ``fov`` (vertical,
        degrees).
    """
    xyz = np.asarray(xyz, np.float64)
    target = 0.5 * (xyz.min(0) + xyz.max(0))
    d, r, u = camera_basis(azimuth, elevation)
    ty = np.tan(np.radians(fov) / 2) * margin
    tx = ty * aspect
    for step in range(3):
        rel = xyz - target
        z, x, y = rel @ d, rel @ r, rel @ u
        dist = float(max((z + np.abs(x) / tx).max(), (z + np.abs(y) / ty).max(), z.max() + 1.0))
        if step == 2:
            break
        # perspective makes the near side look larger: centre the projected extent
        nx, ny = x / ((dist - z) * tx), y / ((dist - z) * ty)
        target = target + dist * (0.5 * (nx.max() + nx.min()) * tx * r
                                  + 0.5 * (ny.max() + ny.min()) * ty * u)  # fmt: skip
    return {"target": target, "eye": target + dist * d, "right": r, "up": u, "distance": dist,
            "fov": fov}  # fmt: skip


def project(xyz: np.ndarray, camera: dict, aspect: float) -> np.ndarray:
    """Normalised device coordinates (x, y in -1..1 inside the view) of points seen by a camera
    from :func:`fit_camera`."""
    rel = np.asarray(xyz, np.float64) - camera["eye"]
    d = (camera["eye"] - camera["target"]) / camera["distance"]
    depth = -(rel @ d)
    ty = np.tan(np.radians(camera["fov"]) / 2)
    return np.stack([(rel @ camera["right"]) / (depth * ty * aspect),
                     (rel @ camera["up"]) / (depth * ty)], axis=1)  # fmt: skip


# --------------------------------------------------------------------------- HTML

#: Coordinates travel in units of 1/COORD_SCALE mm.
COORD_SCALE = 10.0


def _gz64(raw: bytes) -> str:
    """base64 of the gzip stream of ``raw`` (what the browser's DecompressionStream unpacks)."""
    co = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip header
    return base64.b64encode(co.compress(raw) + co.flush()).decode("ascii")


def _planes(a: np.ndarray) -> bytes:
    """The bytes of a little-endian integer array, byte plane by byte plane (low bytes first):
    the high planes of small numbers are runs of 0x00/0xff that compress to nearly nothing."""
    a = np.ascontiguousarray(a, a.dtype.newbyteorder("<"))
    return np.ascontiguousarray(a.view(np.uint8).reshape(-1, a.dtype.itemsize).T).tobytes()


def encode_coords(xyz: np.ndarray) -> bytes:
    """Vertex positions as the page reads them: per axis (x for every vertex, then y, then z),
    the differences between consecutive vertices of the positions in 1/:data:`COORD_SCALE` mm,
    int16 (wrapping), in byte planes."""
    q = np.rint(np.asarray(xyz, np.float64) * COORD_SCALE).clip(-32767, 32767).astype(np.int32)
    delta = np.diff(np.ascontiguousarray(q.T), axis=1, prepend=0).astype(np.int16)
    return _planes(delta.ravel())


def encode_faces(faces: np.ndarray) -> tuple[bytes, int]:
    """(bytes, number of faces of the left hemisphere) of the faces as the page reads them: each
    face rotated to start at its lowest vertex (winding kept), faces sorted by that vertex (the
    left hemisphere's come first), then three int32 columns: the difference of the first vertex
    from the previous face's, and the two others' differences from the first; in byte planes."""
    f = np.asarray(faces, np.int64)
    k = np.argmin(f, axis=1)
    rows = np.arange(f.shape[0])
    r = np.stack([f[rows, k], f[rows, (k + 1) % 3], f[rows, (k + 2) % 3]], axis=1)
    r = r[np.lexsort((r[:, 2], r[:, 1], r[:, 0]))]
    cols = np.stack([np.diff(r[:, 0], prepend=0), r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]])
    return _planes(cols.astype(np.int32).ravel()), int(r.shape[0])


_MESH_PAYLOADS: dict[int, tuple[BrainMesh, dict]] = {}


def _mesh_payload(mesh: BrainMesh) -> dict:
    """The mesh part of the page's data (encoded once per mesh object)."""
    got = _MESH_PAYLOADS.get(id(mesh))
    if got is not None and got[0] is mesh:
        return got[1]
    n_left = int((mesh.hemi == 0).sum())
    raw, _ = encode_faces(mesh.faces)
    payload = {
        "n": mesh.n_vertices,
        "nLeft": n_left,
        "nFaces": int(mesh.faces.shape[0]),
        "nFacesLeft": int((mesh.faces.min(1) < n_left).sum()),
        "scale": COORD_SCALE,
        "surfaces": list(mesh.coords),
        "coords": {s: _gz64(encode_coords(c)) for s, c in mesh.coords.items()},
        "faces": _gz64(raw),
    }
    if len(_MESH_PAYLOADS) >= 4:
        _MESH_PAYLOADS.pop(next(iter(_MESH_PAYLOADS)))
    _MESH_PAYLOADS[id(mesh)] = (mesh, payload)
    return payload


def encode_map(rgb: np.ndarray, values: np.ndarray, roi_index: np.ndarray,
               categorical: bool) -> tuple[bytes, float, float]:  # fmt: skip
    """(bytes, low, high) of a map's per-vertex data as the page reads it: the red, green and
    blue planes (uint8), the ROI index (uint8), then the value as uint16 planes: a category, or
    ``low + q * (high - low) / 65534`` for continuous maps; 65535 = no value."""
    values = np.asarray(values)
    if categorical:
        q = np.where(values >= 0, values, 65535).astype(np.uint16)
        lo, hi = 0.0, 0.0
    else:
        ok = np.isfinite(values)
        lo = float(values[ok].min()) if ok.any() else 0.0
        hi = float(values[ok].max()) if ok.any() else 0.0
        span = hi - lo if hi > lo else 1.0
        q = np.full(values.size, 65535, np.uint16)
        q[ok] = np.rint((values[ok] - lo) / span * 65534).astype(np.uint16)
    raw = (np.ascontiguousarray(np.asarray(rgb, np.uint8).T).tobytes()
           + np.asarray(roi_index).clip(0, 255).astype(np.uint8).tobytes() + _planes(q))  # fmt: skip
    return raw, lo, hi


def _rgb_css(c: tuple[float, float, float]) -> str:
    return "rgb({},{},{})".format(*(int(round(255 * x)) for x in c))


def brain_html(
    mesh: BrainMesh,
    vt: np.ndarray,
    brain_map: BrainMap,
    rois: dict[str, np.ndarray] | None = None,
    highlight: str | None = None,
    simulated: bool = False,
    height: int = 540,
    file_stem: str = "brain3d",
) -> str:
    """A small self-contained HTML page (WebGL) showing ``brain_map`` on both hemispheres.

    Buttons switch the surface (inflated, pial), the hemispheres shown and the camera (back,
    left, right, bottom, top, medial), each fitted so that the whole brain is in view; drag
    turns, the wheel zooms, a double click fits again; hovering a vertex shows its ROI and value;
    a button saves a PNG (the view with its title, names and colour bar).

    Parameters
    ----------
    mesh : BrainMesh
        From :func:`load_brain_mesh`.
    vt : array of shape (n_vertices,)
        The target each vertex shows, from :func:`vertex_targets`.
    brain_map : BrainMap
    rois : dict of str to bool array, optional
        ROI masks to outline and name.
    highlight : str, optional
        ROI outlined in the highlight colour of :func:`border_colours`.
    simulated : bool
        Shows a "SIMULATED data" badge.
    height : int
        Height of the view in CSS pixels (the buttons above it take about 30 more).
    file_stem : str
        Name of the saved PNG.

    Returns
    -------
    html : str
        About 0.53 MB for S1's decimated surfaces plus 0.05-0.1 MB for the map.
    """
    from core.viz.brain3d_page import TEMPLATE

    rgb, values, roi_index = vertex_rgb(mesh, vt, brain_map, rois, highlight)
    names = list(rois or {})
    raw, lo, hi = encode_map(rgb, values, roi_index, brain_map.categorical)
    border, high = border_colours(brain_map)
    data = {
        "mesh": _mesh_payload(mesh),
        "map": _gz64(raw),
        "low": lo,
        "high": hi,
        "title": brain_map.title,
        "label": brain_map.label,
        "roiNames": names,
        "labels": [{"name": lab["name"], "hemi": lab["hemi"], "vertex": lab["vertex"]}
                   for lab in roi_label_positions(mesh, roi_index, names)] if names else [],
        "border": _rgb_css(border) if names else None,
        "highlight": [highlight, _rgb_css(high)] if names and highlight in names else None,
        "categorical": brain_map.categorical,
        "categories": list(brain_map.names),
        "legend": [[n, _rgb_css(c)] for n, c in brain_map.legend()],
        "colorscale": None if brain_map.categorical else colorscale(brain_map.cmap),
        "limits": list(brain_map.limits),
        "views": {k: list(v) for k, v in VIEWS.items()},
        "fov": FOV,
        "margin": FIT_MARGIN,
        "simulated": bool(simulated),
        "fileStem": file_stem,
    }
    return (
        TEMPLATE.replace("__HEIGHT__", str(int(height)))
        .replace("__DATA__", json.dumps(data, separators=(",", ":")).replace("</", "<\\/"))
    )
