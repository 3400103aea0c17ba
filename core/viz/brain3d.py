"""3D brain views: any :class:`~core.viz.maps.BrainMap` on both hemispheres' inflated and pial
surfaces, with ROI outlines and names, in the colours of the flat view, as one self-contained HTML
page (plotly's WebGL mesh, the copy bundled with nilearn; nothing is fetched).

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
"""

from __future__ import annotations

import base64
import json
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
#: Colour of ROI outlines (as on the flat view) and of the highlighted ROI.
OUTLINE = (1.0, 1.0, 1.0)
HIGHLIGHT = (0.1, 0.6, 1.0)
_MESH_VERSION = 3

FSAVERAGE_NOTE = (
    "Drawn on nilearn's bundled fsaverage5 (10,242 vertices per hemisphere): the full-resolution "
    "fsaverage meshes are not available offline here, so targets on finer fsaverage vertices "
    "are not drawn. Register the NSD folder with its nsddata/freesurfer/fsaverage/surf files to "
    "draw every vertex."
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


def vertex_rgb(
    mesh: BrainMesh,
    vt: np.ndarray,
    brain_map: BrainMap,
    rois: dict[str, np.ndarray] | None = None,
    highlight: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB uint8 per vertex, per-vertex value, per-vertex ROI index) of a map on the mesh.

    Colours follow :meth:`BrainMap.target_rgba` (the flat view's scale); vertices without a
    target near are shaded cortex (light on gyri, dark in sulci); ROI borders are white, the
    highlighted ROI's blue.
    """
    values = vertex_values(vt, brain_map)
    shown = values >= 0 if brain_map.categorical else np.isfinite(values)
    rgb = np.empty((mesh.n_vertices, 3), np.float32)
    rgb[:] = 0.62 + 0.2 * mesh.sulc[:, None]
    proxy = BrainMap(
        key="", title="", label="", values=np.asarray(values)[shown], cmap=brain_map.cmap,
        limits=brain_map.limits, names=brain_map.names,
    )  # fmt: skip
    rgb[shown] = proxy.target_rgba()[:, :3]
    roi_index = np.zeros(mesh.n_vertices, np.int64)
    if rois:
        roi_index = vertex_rois(vt, rois)
        rgb[outline_vertices(mesh, roi_index)] = OUTLINE
        if highlight in rois:
            k = list(rois).index(highlight) + 1
            inside = roi_index == k
            edge = outline_vertices(mesh, np.where(inside, 1, 0))
            e = _edges_of(mesh.faces)
            ring = np.zeros_like(edge)
            ring[e[edge[e[:, 0]], 1]] = True  # one ring wider, as the flat view's thick outline
            rgb[edge | (ring & inside)] = HIGHLIGHT
    out_values = values.astype(np.float32) if not brain_map.categorical else values
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), out_values, roi_index


def roi_label_positions(
    mesh: BrainMesh, roi_index: np.ndarray, names: list[str]
) -> list[dict]:
    """Where to write each ROI's name, per hemisphere and surface: the ROI vertex nearest the
    ROI's centre, lifted a few millimetres along the surface normal."""
    out = []
    normals = {s: _vertex_normals(c, mesh.faces) for s, c in mesh.coords.items()}
    for k, name in enumerate(names, start=1):
        for h in (0, 1):
            idx = np.flatnonzero((roi_index == k) & (mesh.hemi == h))
            if idx.size == 0:
                continue
            pos = {}
            for s, c in mesh.coords.items():
                centre = c[idx].mean(0)
                v = idx[np.argmin(np.linalg.norm(c[idx] - centre, axis=1))]
                pos[s] = [round(float(x), 2) for x in c[v] + 6.0 * normals[s][v]]
            out.append({"name": name, "hemi": h, "pos": pos})
    return out


# --------------------------------------------------------------------------- HTML


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    import nilearn

    path = Path(nilearn.__file__).parent / "_assets" / "js" / "plotly-gl3d-latest.min.js"
    return path.read_text(encoding="utf-8")


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
    """A self-contained HTML page (plotly WebGL) showing ``brain_map`` on both hemispheres.

    Buttons switch the surface (inflated, pial), the hemispheres shown and the camera
    (left, right, medial, back, bottom, top); hovering a vertex shows its ROI and value; the
    mode bar saves a PNG.

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
        ROI outlined in blue.
    simulated : bool
        Shows a "SIMULATED data" badge.
    """
    rgb, values, roi_index = vertex_rgb(mesh, vt, brain_map, rois, highlight)
    names = list(rois or {})
    # compact payload: coordinates in 1/50 mm as int16, faces as per-hemisphere uint16 indices
    # (vertices are stacked left then right, each hemisphere below 65,536 vertices)
    n_left = int((mesh.hemi == 0).sum())
    left_face = mesh.faces[:, 0] < n_left
    faces = np.concatenate([mesh.faces[left_face], mesh.faces[~left_face] - n_left])
    data = {
        "title": brain_map.title,
        "label": brain_map.label,
        "surfaces": list(mesh.coords),
        "coords": {s: _b64(np.rint(c * 50).clip(-32767, 32767).astype(np.int16))
                   for s, c in mesh.coords.items()},  # fmt: skip
        "nLeft": n_left,
        "nFacesLeft": int(left_face.sum()),
        "faces": _b64(faces.astype(np.uint16 if faces.max(initial=0) < 65535 else np.uint32)),
        "wideFaces": bool(faces.max(initial=0) >= 65535),
        "rgb": _b64(rgb),
        "values": _b64(np.asarray(values, np.float32)),
        "roi": _b64(roi_index.astype(np.uint8)),
        "roiNames": names,
        "labels": roi_label_positions(mesh, roi_index, names) if names else [],
        "categorical": brain_map.categorical,
        "categories": list(brain_map.names),
        "legend": [[n, "rgb({},{},{})".format(*(int(255 * x) for x in c))]
                   for n, c in brain_map.legend()],  # fmt: skip
        "colorscale": None if brain_map.categorical else colorscale(brain_map.cmap),
        "limits": list(brain_map.limits),
        "simulated": bool(simulated),
        "fileStem": file_stem,
    }
    return (
        _TEMPLATE.replace("__PLOTLY__", _plotly_js())
        .replace("__DATA__", json.dumps(data, separators=(",", ":")))
        .replace("__HEIGHT__", str(int(height)))
    )


_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8">
<style>
 body { margin: 0; font-family: "Source Sans Pro", sans-serif; font-size: 13px; color: #31333f; }
 #bar { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; padding: 2px 4px 6px; }
 .grp { display: flex; gap: 2px; align-items: center; }
 .grp span { color: #808495; margin-right: 2px; }
 button { border: 1px solid #d6d6d9; background: white; border-radius: 6px; padding: 2px 8px;
          cursor: pointer; font-size: 12px; color: #31333f; }
 button.on { background: #31333f; color: white; border-color: #31333f; }
 .badge { background: #b3261e; color: white; border-radius: 4px; padding: 1px 6px; font-size: 11px; }
 #brain { width: 100%; height: __HEIGHT__px; }
</style></head>
<body>
<div id="bar">
 <div class="grp" id="g-surf"><span>Surface</span></div>
 <div class="grp" id="g-hemi"><span>Hemispheres</span></div>
 <div class="grp" id="g-view"><span>View</span></div>
 <span id="badge"></span>
</div>
<div id="brain" data-testid="brain3d"></div>
<script>__PLOTLY__</script>
<script>
(function () {
  const D = __DATA__;
  function dec(b64, T) {
    const s = atob(b64), buf = new ArrayBuffer(s.length), u8 = new Uint8Array(buf);
    for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i);
    return new T(buf);
  }
  const coords = {};
  for (const s of D.surfaces) coords[s] = dec(D.coords[s], Int16Array);
  const faces = dec(D.faces, D.wideFaces ? Uint32Array : Uint16Array);
  const rgb = dec(D.rgb, Uint8Array), vals = dec(D.values, Float32Array);
  const roi = dec(D.roi, Uint8Array);
  const nAll = vals.length;
  if (D.simulated) document.getElementById('badge').innerHTML =
      '<span class="badge">SIMULATED data</span>';
  // per hemisphere: its vertex range and faces (local indices)
  const parts = [0, 1].map(h => {
    const v0 = h ? D.nLeft : 0, v1 = h ? nAll : D.nLeft;
    const f0 = h ? D.nFacesLeft : 0, f1 = h ? faces.length / 3 : D.nFacesLeft;
    const I = new Array(f1 - f0), J = new Array(f1 - f0), K = new Array(f1 - f0);
    for (let f = f0; f < f1; f++) { I[f - f0] = faces[3 * f]; J[f - f0] = faces[3 * f + 1];
                                    K[f - f0] = faces[3 * f + 2]; }
    const colour = new Array(v1 - v0), text = new Array(v1 - v0);
    for (let v = v0; v < v1; v++) {
      colour[v - v0] = `rgb(${rgb[3 * v]},${rgb[3 * v + 1]},${rgb[3 * v + 2]})`;
      const r = roi[v] ? D.roiNames[roi[v] - 1] : 'no ROI';
      let val = '';
      if (D.categorical) val = vals[v] >= 0 ? D.categories[vals[v]] : 'none';
      else val = Number.isFinite(vals[v]) ? vals[v].toFixed(3) : 'no value';
      text[v - v0] = `${r} · ${val}`;
    }
    return { v0, v1, I, J, K, colour, text };
  });
  function xyz(surf, h) {
    const c = coords[surf], p = parts[h], n = p.v1 - p.v0;
    const x = new Array(n), y = new Array(n), z = new Array(n);
    for (let v = p.v0; v < p.v1; v++) {
      x[v - p.v0] = c[3 * v] / 50; y[v - p.v0] = c[3 * v + 1] / 50; z[v - p.v0] = c[3 * v + 2] / 50;
    }
    return [x, y, z];
  }
  let surf = D.surfaces[0], shown = [true, true];
  const traces = [0, 1].map(h => {
    const [x, y, z] = xyz(surf, h), p = parts[h];
    return { type: 'mesh3d', x, y, z, i: p.I, j: p.J, k: p.K, vertexcolor: p.colour,
             text: p.text, hoverinfo: 'text', name: h ? 'right' : 'left', flatshading: false,
             lighting: { ambient: 0.55, diffuse: 0.6, specular: 0.08, roughness: 0.9 },
             lightposition: { x: 0, y: 0, z: 1e5 }, showscale: false };
  });
  function labelTrace(s) {
    const L = D.labels.filter(l => shown[l.hemi]);
    return { type: 'scatter3d', mode: 'text', x: L.map(l => l.pos[s][0]),
             y: L.map(l => l.pos[s][1]), z: L.map(l => l.pos[s][2]), text: L.map(l => l.name),
             textfont: { size: 12, color: '#000' }, hoverinfo: 'skip', showlegend: false };
  }
  traces.push(labelTrace(surf));
  const mid = [coords[surf][0] / 50, coords[surf][1] / 50, coords[surf][2] / 50];
  if (D.colorscale) {
    traces.push({ type: 'scatter3d', mode: 'markers', x: [mid[0]], y: [mid[1]], z: [mid[2]],
      hoverinfo: 'skip', showlegend: false,
      marker: { size: 0.1, opacity: 0, color: [D.limits[0]], colorscale: D.colorscale,
                cmin: D.limits[0], cmax: D.limits[1], showscale: true,
                colorbar: { title: { text: D.label, side: 'right' }, len: 0.6, thickness: 12 } } });
  }
  for (const [name, colour] of D.legend) {
    traces.push({ type: 'scatter3d', mode: 'markers', x: [null], y: [null], z: [null], name,
                  marker: { color: colour, size: 8 }, showlegend: true, hoverinfo: 'skip' });
  }
  const axis = { visible: false, showspikes: false };
  const cams = {
    left: { eye: { x: -1.45, y: 0, z: 0.2 } }, right: { eye: { x: 1.45, y: 0, z: 0.2 } },
    back: { eye: { x: 0, y: -1.3, z: 0.25 } }, bottom: { eye: { x: 0, y: -0.15, z: -1.45 } },
    top: { eye: { x: 0, y: -0.15, z: 1.45 } },
  };
  for (const c of Object.values(cams)) c.up = { x: 0, y: 0, z: 1 };
  const layout = {
    title: { text: D.title, font: { size: 14 }, y: 0.98 },
    margin: { l: 0, r: 0, t: 30, b: 0 }, paper_bgcolor: 'white', showlegend: D.legend.length > 0,
    legend: { orientation: 'h', y: 0.02 },
    scene: { xaxis: axis, yaxis: axis, zaxis: axis, aspectmode: 'data', camera: cams.back,
             bgcolor: 'white' },
  };
  const config = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ['resetCameraLastSave3d', 'hoverClosest3d'],
    toImageButtonOptions: { format: 'png', filename: D.fileStem, scale: 2 } };
  const el = document.getElementById('brain');
  Plotly.newPlot(el, traces, layout, config);
  function button(group, label, on, fn) {
    const b = document.createElement('button');
    b.textContent = label; if (on) b.className = 'on';
    b.onclick = () => { for (const o of document.querySelectorAll(`#${group} button`)) o.className = '';
                        b.className = 'on'; fn(); };
    document.getElementById(group).appendChild(b);
  }
  function redraw() {
    const xs = [], ys = [], zs = [];
    for (const h of [0, 1]) { const [x, y, z] = xyz(surf, h); xs.push(x); ys.push(y); zs.push(z); }
    Plotly.restyle(el, { x: xs, y: ys, z: zs, visible: shown }, [0, 1]);
    const t = labelTrace(surf);
    Plotly.restyle(el, { x: [t.x], y: [t.y], z: [t.z], text: [t.text] }, [2]);
  }
  for (const s of D.surfaces) button('g-surf', s, s === surf, () => { surf = s; redraw(); });
  for (const [label, v] of [['both', [true, true]], ['left', [true, false]], ['right', [false, true]]])
    button('g-hemi', label, label === 'both', () => { shown = v; redraw(); });
  function view(name) { Plotly.relayout(el, { 'scene.camera': cams[name] }); }
  for (const name of ['back', 'left', 'right', 'bottom', 'top'])
    button('g-view', name, name === 'back', () => view(name));
  button('g-view', 'medial', false, () => {
    // medial: look at the midline face of the one hemisphere shown (left by default)
    if (shown[0] && shown[1]) { shown = [true, false]; redraw(); }
    view(shown[0] ? 'right' : 'left');
  });
})();
</script>
</body></html>
"""
