"""The simulated cortex: pycortex S1's flat surface with the demo's ROIs, a contiguous general
visual mask, schematic retinotopic maps of V1-V3, smooth random fields and per-subject warps.

Everything here is geometry on S1's flat coordinates (about 1 unit = 1 mm; a mesh edge is
0.85 units). Maps are built on a 1-unit raster of each hemisphere's flat patch and sampled at the
vertices, so "smooth" means smooth over the flattened cortex.

Template (shared by all subjects, :func:`template`)
    - ROIs V1, V2, V3, OFA, FFA, EBA, OPA, PPA, RSC, IPS from the committed asset
      ``core/data/assets/s1_visual_rois.npz`` (stray islands of a label removed: each ROI keeps
      its largest connected piece).
    - LOC, a constructed patch (pycortex's S1 ships LO empty): the general-mask vertices within
      :data:`LOC_RADIUS` mm of the midpoint between V3 and EBA (the closest pair of their
      vertices), at least 2 mm from every other ROI, where the lateral occipital complex lies in
      a real brain (between V3, OFA and EBA). Simulated: its place and extent are the demo's
      choice, not an anatomical label; it is added after the general mask is built, so the mask
      is the same as without it.
    - General visual mask (the role of NSD's nsdgeneral): one contiguous posterior region per
      hemisphere that encloses the ROIs and the cortex between them (the ROIs dilated by 10 mm,
      closed with a 16 mm disk, holes filled), minus the anterior third of IPS (so ROI labels and
      the mask differ as they do in NSD).
    - Candidate targets: the mask plus a 6 mm rim outside it.
    - Retinotopy of V1-V3 (schematic, :func:`retinotopy`): on S1's flat map V1, V2 and V3 are
      parallel bands. Eccentricity runs along the bands: the fovea where their dorsal and
      ventral halves meet (the middle), the periphery at both ends, with cortical magnification
      (log-like spacing). Polar angle runs across each band with mirror reversals at the area
      borders (horizontal meridian at V1's outer edge and at the V2/V3 border, vertical meridian
      at the V1/V2 border and at V3's outer edge). The ventral half maps the upper visual field,
      the dorsal half the lower; the left hemisphere maps the right hemifield.

Subjects (:func:`subject_warp`)
    Each subject is the template seen through a smooth warp of the flat coordinates: every ROI
    is shifted (SD 2 mm) and scaled (SD 12%) around its centre, plus a smooth displacement field
    (SD 1.5 mm, 20 mm wide), so ROI sizes, positions and the maps inside them vary between
    subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from core.data.surfaces import load_flat_mesh

ROI_ASSET = Path(__file__).resolve().parent.parent / "assets" / "s1_visual_rois.npz"
SURFACE = "pycortex:S1"
#: The ROIs of pycortex's S1 the demo uses (the committed asset), in label order (later ones
#: win the few shared boundary vertices).
ASSET_ROIS = ("V1", "V2", "V3", "OFA", "FFA", "EBA", "OPA", "PPA", "RSC", "IPS")
#: ROIs the demo constructs itself (see the module docstring).
CONSTRUCTED_ROIS = ("LOC",)
#: The demo's ROIs, in label order.
ROI_NAMES = (*ASSET_ROIS, *CONSTRUCTED_ROIS)
#: Radius (flat units, about mm) of the constructed LOC patch.
LOC_RADIUS = 10.0
EARLY = ("V1", "V2", "V3")
#: Raster pitch of the flat maps (flat units, about mm).
PITCH = 1.0
MASK_DILATE = 10.0
MASK_CLOSE = 16.0
RIM = 6.0
#: Largest pRF eccentricity (degrees) at the ends of the V1-V3 bands, and the smallest.
ECC_MAX = 7.0
ECC_MIN = 0.15
#: Cortical magnification: eccentricity grows as exp(MAGNIFICATION * u) along the band.
MAGNIFICATION = 3.2


@dataclass(frozen=True)
class Raster:
    """A regular grid over one hemisphere's flat patch."""

    x0: float
    y0: float
    shape: tuple[int, int]  # rows (y), columns (x)

    def cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cell holding each point (clipped to the grid)."""
        col = np.clip(np.rint((xy[:, 0] - self.x0) / PITCH).astype(int), 0, self.shape[1] - 1)
        row = np.clip(np.rint((xy[:, 1] - self.y0) / PITCH).astype(int), 0, self.shape[0] - 1)
        return row, col

    def paint(self, xy: np.ndarray) -> np.ndarray:
        """Boolean grid, True in every cell holding one of the points."""
        grid = np.zeros(self.shape, bool)
        row, col = self.cells(xy)
        grid[row, col] = True
        return grid

    def sample(self, grid: np.ndarray, xy: np.ndarray, order: int = 1) -> np.ndarray:
        """Values of a grid at points (bilinear by default)."""
        coords = np.stack([(xy[:, 1] - self.y0) / PITCH, (xy[:, 0] - self.x0) / PITCH])
        return ndimage.map_coordinates(grid.astype(np.float64), coords, order=order, mode="nearest")


@dataclass(frozen=True)
class Hemisphere:
    """The template on one hemisphere.

    Attributes
    ----------
    index : int
        0 = left, 1 = right.
    coords : array of shape (n_vertices, 2)
    in_patch : bool array of shape (n_vertices,)
        Vertices on the flat patch (in some face).
    roi : int8 array of shape (n_vertices,)
        1 + index into :data:`ROI_NAMES`; 0 = no ROI.
    general : bool array
    candidate : bool array
    reach : bool array
        Vertices that a subject's warp can bring into the candidates (within 12 units of them).
    ecc, angle : float arrays
        pRF eccentricity (degrees) and polar angle (radians, 0 = the horizontal meridian
        towards the mapped hemifield, +pi/2 = upper vertical meridian) in V1-V3; NaN elsewhere.
    ecc_fill, angle_fill : float arrays
        The same maps extended to every vertex from the nearest V1-V3 vertex (the pRFs of
        targets just outside the bands, whose tuning blends into early visual cortex).
    area_fill : int8 array
        Index into :data:`EARLY` of the nearest V1-V3 vertex.
    ips_axis : array of shape (3, 2)
        Origin (the posterior end of IPS, nearest V3), unit direction along IPS, and (length,
        0): :meth:`ips_position` maps points to 0 (posterior) .. 1 (anterior).
    raster : Raster
    roi_grids : dict of str to bool grid
    general_grid : bool grid
    """

    index: int
    coords: np.ndarray
    in_patch: np.ndarray
    roi: np.ndarray
    general: np.ndarray
    candidate: np.ndarray
    reach: np.ndarray
    ecc: np.ndarray
    angle: np.ndarray
    ecc_fill: np.ndarray
    angle_fill: np.ndarray
    area_fill: np.ndarray
    ips_axis: np.ndarray
    raster: Raster
    roi_grids: dict
    general_grid: np.ndarray

    @property
    def tree(self) -> cKDTree:
        return _tree(self.index)

    def ips_position(self, xy: np.ndarray) -> np.ndarray:
        """Position along IPS's long axis: 0 at its posterior end, 1 at its anterior end."""
        origin, direction, (length, _) = self.ips_axis
        return np.clip(((xy - origin) @ direction) / max(length, 1e-6), 0.0, 1.0)


def _dilate(grid: np.ndarray, radius: float) -> np.ndarray:
    """Binary dilation by a disk (through a distance transform: fast for large radii)."""
    return ndimage.distance_transform_edt(~grid) * PITCH <= radius


def _close(grid: np.ndarray, radius: float) -> np.ndarray:
    """Binary closing by a disk: dilate, then erode (the grid's border counts as outside)."""
    dilated = np.pad(_dilate(grid, radius), 1)
    return (ndimage.distance_transform_edt(dilated) * PITCH > radius)[1:-1, 1:-1]


def _disk(radius: float) -> np.ndarray:
    r = int(np.ceil(radius / PITCH))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx**2 + yy**2) <= (radius / PITCH) ** 2


def _largest_piece(grid: np.ndarray) -> np.ndarray:
    closed = ndimage.binary_closing(grid, _disk(2.0))
    labels, n = ndimage.label(closed)
    if n <= 1:
        return closed
    sizes = ndimage.sum(closed, labels, index=np.arange(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def _band_retinotopy(coords: np.ndarray, roi: np.ndarray, hemi: int):
    """Schematic eccentricity and polar angle over the V1-V3 bands (see the module docstring)."""
    n = coords.shape[0]
    ecc = np.full(n, np.nan)
    angle = np.full(n, np.nan)
    early = np.isin(roi, [1 + ROI_NAMES.index(r) for r in EARLY])
    if not early.any():
        return ecc, angle
    y = coords[early, 1]
    lo, hi = np.percentile(y, [1, 99])
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    # cross-band position per 2-unit slice: 0 at the posterior side of each ROI, 1 at the other
    # (the left hemisphere's occipital pole is its largest x, the right's its smallest)
    sign = 1.0 if hemi == 0 else -1.0
    bins = np.floor((coords[:, 1] - lo) / 2.0).astype(int)
    across = np.full(n, np.nan)
    for name in EARLY:
        sel = roi == 1 + ROI_NAMES.index(name)
        post = sign * coords[sel, 0]  # larger = more posterior
        b = bins[sel]
        order = np.unique(b)
        top = np.full(order.max() + 1 - order.min(), np.nan)
        bot = top.copy()
        for k in order:
            vals = post[b == k]
            top[k - order.min()], bot[k - order.min()] = vals.max(), vals.min()
        # smooth the band edges over neighbouring slices
        t = ndimage.uniform_filter1d(np.nan_to_num(top, nan=np.nanmean(top)), 5)
        bo = ndimage.uniform_filter1d(np.nan_to_num(bot, nan=np.nanmean(bot)), 5)
        i = b - order.min()
        across[sel] = np.clip((t[i] - post) / np.maximum(t[i] - bo[i], 1.0), 0.0, 1.0)
    u = np.clip((coords[:, 1] - mid) / half, -1.0, 1.0)
    e = ECC_MIN * np.exp(np.abs(u) * np.log(ECC_MAX / ECC_MIN))
    # polar angle from the horizontal meridian: V1 HM -> VM, V2 VM -> HM, V3 HM -> VM
    frac = across.copy()
    v2 = roi == 1 + ROI_NAMES.index("V2")
    frac[v2] = 1.0 - frac[v2]
    phi = frac * (np.pi / 2)
    upper = u < 0  # ventral half (smaller y on S1's flat map) maps the upper field
    ecc[early] = e[early]
    angle[early] = np.where(upper, phi, -phi)[early]
    return ecc, angle


def _loc_patch(coords: np.ndarray, roi: np.ndarray, general: np.ndarray) -> np.ndarray:
    """The constructed LOC patch (see the module docstring) as a boolean vertex mask."""
    v3 = np.flatnonzero(roi == 1 + ROI_NAMES.index("V3"))
    eba = np.flatnonzero(roi == 1 + ROI_NAMES.index("EBA"))
    out = np.zeros(roi.size, bool)
    if not v3.size or not eba.size:
        return out
    d, j = cKDTree(coords[v3]).query(coords[eba])
    k = int(np.argmin(d))
    centre = (coords[eba[k]] + coords[v3[j[k]]]) / 2
    labelled = np.flatnonzero(roi > 0)
    d_roi, _ = cKDTree(coords[labelled]).query(coords)
    near = np.linalg.norm(coords - centre, axis=1) < LOC_RADIUS
    return general & (roi == 0) & near & (d_roi > 2.0)


@lru_cache(maxsize=2)
def _tree(h: int) -> cKDTree:
    hemi = template()[h]
    return cKDTree(hemi.coords[hemi.in_patch])


@lru_cache(maxsize=1)
def template() -> tuple[Hemisphere, Hemisphere]:
    """The template cortex of both hemispheres (see the module docstring)."""
    rois = np.load(ROI_ASSET, allow_pickle=False)
    out = []
    offset = 0
    for h, name in enumerate(("lh", "rh")):
        mesh = load_flat_mesh(SURFACE, name)
        n = mesh.n_vertices
        coords = mesh.coords.astype(np.float64)
        in_patch = np.zeros(n, bool)
        in_patch[mesh.faces.ravel()] = True
        ok = in_patch & np.isfinite(coords).all(1)
        lo = coords[ok].min(0) - 20.0
        hi = coords[ok].max(0) + 20.0
        shape = (int((hi[1] - lo[1]) / PITCH) + 1, int((hi[0] - lo[0]) / PITCH) + 1)
        raster = Raster(float(lo[0]), float(lo[1]), shape)
        cortex_grid = ndimage.binary_closing(raster.paint(coords[ok]), _disk(2.0))
        roi = np.zeros(n, np.int8)
        roi_grids = {}
        for k, rname in enumerate(ASSET_ROIS):
            idx = rois[rname]
            idx = idx[(idx >= offset) & (idx < offset + n)] - offset
            idx = idx[ok[idx]]
            if idx.size == 0:
                continue
            piece = _largest_piece(raster.paint(coords[idx]))
            row, col = raster.cells(coords[idx])
            keep = idx[piece[row, col]]
            roi[keep] = k + 1
        for k, rname in enumerate(ASSET_ROIS):
            sel = roi == k + 1
            roi_grids[rname] = ndimage.binary_closing(raster.paint(coords[sel]), _disk(1.5))
        # the anterior third of IPS (furthest from V3) lies outside the general mask
        ips = np.flatnonzero(roi == 1 + ROI_NAMES.index("IPS"))
        v3 = np.flatnonzero(roi == 1 + ROI_NAMES.index("V3"))
        anterior = np.zeros(n, bool)
        if ips.size and v3.size:
            d_v3, _ = cKDTree(coords[v3]).query(coords[ips])
            anterior[ips[d_v3 > np.quantile(d_v3, 2 / 3)]] = True
        core = np.zeros(shape, bool)
        for g in roi_grids.values():
            core |= g
        core &= ~raster.paint(coords[anterior])
        grid = _close(_dilate(core, MASK_DILATE), MASK_CLOSE)
        grid = ndimage.binary_fill_holes(grid)
        # keep the pieces that hold ROIs; drop the anterior IPS (and its surround)
        grid &= cortex_grid
        labels, _ = ndimage.label(grid)
        held = np.unique(labels[core & grid])
        grid = np.isin(labels, held[held > 0])
        grid &= ~_dilate(raster.paint(coords[anterior]), 2.0)
        row, col = raster.cells(coords)
        general = grid[row, col] & ok
        general[anterior] = False
        loc = _loc_patch(coords, roi, general)
        roi[loc] = 1 + ROI_NAMES.index("LOC")
        roi_grids["LOC"] = ndimage.binary_closing(raster.paint(coords[loc]), _disk(1.5))
        dist = ndimage.distance_transform_edt(~grid) * PITCH
        candidate = (dist[row, col] <= RIM) & ok
        reach = (dist[row, col] <= RIM + 12.0) & ok
        ecc, angle = _band_retinotopy(coords, roi, h)
        early = np.flatnonzero(np.isfinite(ecc))
        _, near = cKDTree(coords[early]).query(np.where(ok[:, None], coords, 0.0))
        area = np.array([1 + ROI_NAMES.index(r) for r in EARLY])
        area_fill = (np.searchsorted(area, roi[early][near])).astype(np.int8)
        ips_axis = np.zeros((3, 2))
        if ips.size and v3.size:
            pts = coords[ips]
            centre = pts.mean(0)
            _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
            d = vt[0]
            if (pts[d_v3.argmin()] - centre) @ d > 0:  # point from the posterior end
                d = -d
            proj = (pts - centre) @ d
            ips_axis = np.array([centre + proj.min() * d, d, [proj.max() - proj.min(), 0.0]])
        out.append(
            Hemisphere(
                index=h,
                coords=coords,
                in_patch=ok,
                roi=roi,
                general=general,
                candidate=candidate,
                reach=reach,
                ecc=ecc,
                angle=angle,
                ecc_fill=ecc[early][near],
                angle_fill=angle[early][near],
                area_fill=area_fill,
                ips_axis=ips_axis,
                raster=raster,
                roi_grids=roi_grids,
                general_grid=grid,
            )
        )
        offset += n
    return out[0], out[1]


#: Pitch of the random fields' raster (flat units): coarser than the maps, the fields are
#: smooth over several units anyway.
FIELD_PITCH = 2.0


@dataclass(frozen=True)
class Field:
    """A smooth random field on a coarse raster of one hemisphere (see :func:`smooth_field`)."""

    x0: float
    y0: float
    grid: np.ndarray

    def at(self, xy: np.ndarray) -> np.ndarray:
        """Values at points (bilinear)."""
        coords = np.stack([(xy[:, 1] - self.y0) / FIELD_PITCH, (xy[:, 0] - self.x0) / FIELD_PITCH])
        return ndimage.map_coordinates(self.grid, coords, order=1, mode="nearest")


def smooth_field(hemi: Hemisphere, rng: np.random.Generator, width: float) -> Field:
    """A Gaussian random field over the hemisphere, smoothed over ``width`` flat units
    (Gaussian SD) and scaled to unit SD."""
    shape = tuple(int(np.ceil(n * PITCH / FIELD_PITCH)) + 1 for n in hemi.raster.shape)
    noise = rng.standard_normal(shape)
    f = ndimage.gaussian_filter(noise, width / FIELD_PITCH, mode="wrap")
    return Field(hemi.raster.x0, hemi.raster.y0, f / max(float(f.std()), 1e-12))


@lru_cache(maxsize=32)
def membership(hemi_index: int, names: tuple[str, ...], width: float = 2.0) -> np.ndarray:
    """A smooth membership grid of a group of ROIs on one hemisphere: their indicator blurred
    over ``width`` units (about 1 inside, 0.5 at the border, 0 a few mm outside)."""
    hemi = template()[hemi_index]
    grid = np.zeros(hemi.raster.shape)
    for name in names:
        grid = np.maximum(grid, hemi.roi_grids[name].astype(np.float64))
    return ndimage.gaussian_filter(grid, width / PITCH)


def subject_warp(hemi: Hemisphere, xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Where each subject vertex looks into the template (see the module docstring).

    Parameters
    ----------
    hemi : Hemisphere
    xy : array of shape (n, 2)
        Flat coordinates of the subject's vertices.
    rng : numpy Generator

    Returns
    -------
    warped : array of shape (n, 2)
    """
    warped = xy.copy()
    warped[:, 0] += 1.5 * smooth_field(hemi, rng, 20.0).at(xy)
    warped[:, 1] += 1.5 * smooth_field(hemi, rng, 20.0).at(xy)
    for k, name in enumerate(ASSET_ROIS):  # LOC moves with its neighbours (and the field)
        sel = hemi.roi == k + 1
        shift = rng.normal(0.0, 2.0, 2)
        scale = float(np.exp(rng.normal(0.0, 0.12)))
        if not sel.any():
            continue
        centre = hemi.coords[sel].mean(0)
        radius = max(float(np.sqrt(((hemi.coords[sel] - centre) ** 2).sum(1).mean())), 3.0)
        if name in EARLY:  # the bands are long: shift and scale only across them
            radius = 60.0
            scale = float(np.exp(rng.normal(0.0, 0.05)))
        w = np.exp(-((xy - centre) ** 2).sum(1) / (2 * (1.5 * radius) ** 2))[:, None]
        warped += w * ((xy - centre) * (1.0 / scale - 1.0) - shift)
    return warped


def lookup(hemi: Hemisphere, warped: np.ndarray) -> np.ndarray:
    """Index (into the hemisphere's vertices) of the template vertex nearest each warped point."""
    _, j = hemi.tree.query(warped)
    return np.flatnonzero(hemi.in_patch)[j]
