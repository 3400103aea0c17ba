"""Flatmaps for every dataset through one path: a target-to-pixel raster over flat meshes.

A dataset's :class:`~core.data.dataset.TargetGeometry` places each target on a vertex of a flat
surface (pycortex S1 for the demo; fsaverage for NSD/Algonauts). :func:`build_raster` computes,
once per target set, which target each pixel of the flatmap shows (nearest target within a small
radius, both hemispheres side by side with the occipital poles meeting in the middle) and which
pixels are cortex; redraws are then a table lookup (milliseconds). Rasters are cached on disk,
keyed by the target set's digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from core.config import subdir
from core.data.dataset import TargetSet
from core.data.surfaces import load_flat_mesh
from core.hashing import content_key
from core.storage import ArtifactError, load_npz, save_npz

BACKGROUND = (0.93, 0.93, 0.93)
CORTEX = (0.75, 0.75, 0.75)


@dataclass(frozen=True)
class FlatmapRaster:
    """Which target each flatmap pixel shows.

    Attributes
    ----------
    pixel_target : array of shape (height, width), int32
        Target index per pixel, -1 where no target is near.
    cortex : array of shape (height, width), bool
        Pixels on the flattened cortex (drawn grey where no target is shown).
    target_xy : array of shape (n_targets, 2), float32
        Pixel coordinates (column, row) of each target, for ROI labels.
    target_hemi : array of shape (n_targets,), int8
        Hemisphere of each target (0 = left).
    """

    pixel_target: np.ndarray
    cortex: np.ndarray
    target_xy: np.ndarray
    target_hemi: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixel_target.shape  # type: ignore[return-value]


def _placed_coords(surface: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Flat coordinates of each hemisphere, shifted so the occipital poles meet at x = 0."""
    out = {}
    for h, hemi in enumerate(("lh", "rh")):
        mesh = load_flat_mesh(surface, hemi)
        xy = mesh.coords.astype(np.float64).copy()
        ok = np.isfinite(xy).all(1)
        # pycortex convention: lh's occipital pole is its max x, rh's its min x
        xy[:, 0] -= xy[ok, 0].max() if h == 0 else xy[ok, 0].min()
        xy[:, 0] += -2.0 if h == 0 else 2.0  # a small gap between hemispheres
        out[h] = (xy, ok)
    return out


def build_raster(targets: TargetSet, width: int = 900, radius: float = 2.2) -> FlatmapRaster:
    """Compute (or load from the disk cache) the flatmap raster of a target set.

    Parameters
    ----------
    targets : TargetSet
        Must have a geometry.
    width : int
        Raster width in pixels; the height follows the aspect ratio of the targets' extent.
    radius : float
        A pixel shows the nearest target within this flat-map distance.

    Raises
    ------
    ValueError
        When the target set has no geometry.
    """
    if targets.geometry is None:
        raise ValueError("this target set has no surface geometry; no flatmap can be drawn")
    key = content_key(
        "flatmap-raster", {"targets": targets.digest(), "width": width, "radius": radius}
    )
    path = subdir("flatmaps") / f"{key}.npz"
    try:
        d = load_npz(path)
        return FlatmapRaster(d["pixel_target"], d["cortex"], d["target_xy"], d["target_hemi"])
    except ArtifactError:
        pass
    raster = _compute_raster(targets, width, radius)
    save_npz(
        path,
        pixel_target=raster.pixel_target,
        cortex=raster.cortex,
        target_xy=raster.target_xy,
        target_hemi=raster.target_hemi,
    )
    return raster


def _compute_raster(targets: TargetSet, width: int, radius: float) -> FlatmapRaster:
    geo = targets.geometry
    placed = _placed_coords(geo.surface)
    txy = np.zeros((geo.vertex.size, 2))
    for h, (xy, _) in placed.items():
        sel = geo.hemi == h
        txy[sel] = xy[geo.vertex[sel]]
    placed_ok = np.isfinite(txy).all(1)  # a vertex off the flat patch is not drawn
    if not placed_ok.any():
        raise ValueError(f"no target of this set has a position on the flat mesh {geo.surface!r}")
    margin = 6.0
    lo = txy[placed_ok].min(0) - margin
    hi = txy[placed_ok].max(0) + margin
    scale = (width - 1) / (hi[0] - lo[0])
    height = int(np.ceil((hi[1] - lo[1]) * scale)) + 1
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    # row 0 is the top of the image: flip y
    px = np.column_stack([lo[0] + cols.ravel() / scale, hi[1] - rows.ravel() / scale])
    drawn = np.flatnonzero(placed_ok)
    dist, idx = cKDTree(txy[drawn]).query(px, distance_upper_bound=radius)
    found = np.isfinite(dist)
    pixel_target = np.full(dist.shape, -1, np.int64)
    pixel_target[found] = drawn[idx[found]]
    pixel_target = pixel_target.astype(np.int32).reshape(height, width)
    cortex = np.zeros(height * width, bool)
    for xy, ok in placed.values():
        inside = (
            ok
            & (xy[:, 0] >= lo[0])
            & (xy[:, 0] <= hi[0])
            & (xy[:, 1] >= lo[1])
            & (xy[:, 1] <= hi[1])
        )
        d, _ = cKDTree(xy[inside]).query(px, distance_upper_bound=1.6)
        cortex |= np.isfinite(d)
    target_xy = np.column_stack([(txy[:, 0] - lo[0]) * scale, (hi[1] - txy[:, 1]) * scale])
    return FlatmapRaster(
        pixel_target,
        cortex.reshape(height, width),
        target_xy.astype(np.float32),
        geo.hemi.astype(np.int8),
    )


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def flatmap_rgba(
    raster: FlatmapRaster,
    values: np.ndarray,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Colour a flatmap.

    Parameters
    ----------
    raster : FlatmapRaster
    values : array of shape (n_targets,)
        NaN targets are drawn as plain cortex.
    cmap : str
        Matplotlib colormap name.
    vmin, vmax : float, optional
        Colour limits (default: 1st and 99th percentiles of the finite values).
    mask : array of shape (n_targets,), bool, optional
        Only these targets are coloured.

    Returns
    -------
    rgba : array of shape (height, width, 4), float32 in 0..1
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (raster.target_xy.shape[0],):
        raise ValueError(
            f"values has shape {values.shape}; this flatmap has {raster.target_xy.shape[0]} targets"
        )
    shown = np.isfinite(values) if mask is None else np.isfinite(values) & mask
    finite = values[shown]
    if vmin is None:
        vmin = float(np.percentile(finite, 1)) if finite.size else 0.0
    if vmax is None:
        vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    if vmax <= vmin:
        vmax = vmin + 1e-6
    colours = _cmap(cmap)(np.clip((values - vmin) / (vmax - vmin), 0, 1))
    rgba = np.empty(raster.shape + (4,), np.float32)
    rgba[...] = (*BACKGROUND, 1.0)
    rgba[raster.cortex] = (*CORTEX, 1.0)
    pt = raster.pixel_target
    has = pt >= 0
    show_px = has.copy()
    show_px[has] = shown[pt[has]]
    rgba[show_px] = colours[pt[show_px]]
    return rgba


def categorical_rgba(
    raster: FlatmapRaster, labels: np.ndarray, colours: list[tuple[float, float, float]]
) -> np.ndarray:
    """Colour a flatmap by category (e.g. the best instruction per target); -1 = not shown.

    Returns
    -------
    rgba : array of shape (height, width, 4), float32
    """
    labels = np.asarray(labels)
    table = np.array([(*c, 1.0) for c in colours], np.float32)
    rgba = np.empty(raster.shape + (4,), np.float32)
    rgba[...] = (*BACKGROUND, 1.0)
    rgba[raster.cortex] = (*CORTEX, 1.0)
    pt = raster.pixel_target
    has = pt >= 0
    lab = np.full(pt.shape, -1)
    lab[has] = labels[pt[has]]
    ok = lab >= 0
    rgba[ok] = table[lab[ok]]
    return rgba


def roi_outline(raster: FlatmapRaster, roi_mask: np.ndarray) -> np.ndarray:
    """Pixels on the border of an ROI (a target mask), as a boolean image of the raster's shape."""
    pt = raster.pixel_target
    inside = np.zeros(pt.shape, bool)
    has = pt >= 0
    inside[has] = roi_mask[pt[has]]
    edge = np.zeros_like(inside)
    edge[:-1] |= inside[:-1] != inside[1:]
    edge[:, :-1] |= inside[:, :-1] != inside[:, 1:]
    return edge & (inside | np.roll(inside, 1, 0) | np.roll(inside, 1, 1))


@lru_cache(maxsize=8)
def _dilate_kernel(width: int) -> np.ndarray:
    return np.ones((width, width), bool)


def draw_flatmap(
    raster: FlatmapRaster,
    rgba: np.ndarray,
    rois: dict[str, np.ndarray] | None = None,
    highlight: str | None = None,
    title: str | None = None,
    colorbar: tuple[str, float, float, str] | None = None,
    legend: list[tuple[str, tuple[float, float, float]]] | None = None,
    badge: str | None = None,
):
    """Render a coloured flatmap as a matplotlib figure with ROI outlines and names.

    Parameters
    ----------
    raster : FlatmapRaster
    rgba : array of shape (height, width, 4)
        From :func:`flatmap_rgba` or :func:`categorical_rgba`.
    rois : dict of str to array of shape (n_targets,), bool, optional
        ROI masks to outline and name.
    highlight : str, optional
        ROI drawn with a thick outline.
    title : str, optional
    colorbar : (cmap, vmin, vmax, label), optional
    legend : list of (name, colour), optional
        For categorical maps.
    badge : str, optional
        A small corner note (e.g. "SIMULATED").

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from scipy.ndimage import binary_dilation

    h, w = raster.shape
    fig = Figure(figsize=(9, 9 * h / w + (0.6 if colorbar or legend else 0.2)), dpi=100)
    ax = fig.add_axes(
        (0, 0.08 if (colorbar or legend) else 0, 1, 0.9 if (colorbar or legend) else 0.95)
    )
    img = rgba.copy()
    for name, mask in (rois or {}).items():
        edge = roi_outline(raster, mask)
        if name == highlight:
            edge = binary_dilation(edge, _dilate_kernel(3))
            img[edge] = (0.1, 0.6, 1.0, 1.0)
        else:
            img[edge] = (1.0, 1.0, 1.0, 1.0)
    ax.imshow(img, interpolation="nearest")
    for name, x, y in label_positions(raster, rois or {}):
        ax.text(
            x,
            y,
            name,
            fontsize=8,
            ha="center",
            va="center",
            color="black",
            fontweight="bold" if name == highlight else "normal",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.6, "lw": 0},
        )
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=11)
    if badge:
        ax.text(
            0.01,
            0.99,
            badge,
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=8,
            color="white",
            bbox={"fc": "#b3261e", "lw": 0, "boxstyle": "round,pad=0.3"},
        )
    ax.text(
        0.25, 0.01, "left hemisphere", transform=ax.transAxes, ha="center", fontsize=8, color="#555"
    )
    ax.text(
        0.75,
        0.01,
        "right hemisphere",
        transform=ax.transAxes,
        ha="center",
        fontsize=8,
        color="#555",
    )
    if colorbar:
        import matplotlib as mpl

        cmap, vmin, vmax, label = colorbar
        cax = fig.add_axes((0.3, 0.04, 0.4, 0.025))
        mpl.colorbar.ColorbarBase(
            cax, cmap=_cmap(cmap), norm=mpl.colors.Normalize(vmin, vmax), orientation="horizontal"
        ).set_label(label, fontsize=9)
    if legend:
        from matplotlib.patches import Patch

        fig.legend(
            handles=[Patch(color=c, label=n) for n, c in legend],
            loc="lower center",
            ncol=min(len(legend), 6),
            fontsize=8,
            frameon=False,
        )
    return fig


#: A label box in raster pixels at :func:`draw_flatmap`'s scale (8 pt text at 100 dpi over a
#: 900-pixel-wide figure): width per character, extra width, height.
_CHAR_W, _PAD_W, _LABEL_H = 5.5, 6.0, 13.0


def label_positions(
    raster: FlatmapRaster, rois: dict[str, np.ndarray]
) -> list[tuple[str, float, float]]:
    """Where to write each ROI's name on the flat map, per hemisphere, without overlaps.

    Each name goes to its ROI's median position; a name whose box would overlap one already
    placed (larger ROIs are placed first) moves to the nearest free spot among small steps up,
    down and sideways (it stays put when none is free within four label heights).

    Parameters
    ----------
    raster : FlatmapRaster
    rois : dict of str to array of shape (n_targets,), bool

    Returns
    -------
    labels : list of (name, x, y)
        Pixel coordinates (column, row) of each label's centre.
    """
    scale = raster.shape[1] / 900.0  # raster pixels per figure pixel
    wanted = []
    on_mesh = np.isfinite(raster.target_xy).all(1)  # targets off the flat mesh are not drawn
    for name, mask in rois.items():
        for hemi_sel in _hemi_halves(raster, mask & on_mesh):
            x, y = np.median(raster.target_xy[hemi_sel], axis=0)
            wanted.append((int(hemi_sel.sum()), name, float(x), float(y)))
    wanted.sort(key=lambda w: -w[0])
    h = _LABEL_H * scale
    steps = [(0.0, 0.0)] + [(dx, dy) for r in (1, 2, 3, 4)
                            for dx, dy in ((0, -r), (0, r), (-r, 0), (r, 0), (-r, -r), (r, -r),
                                           (-r, r), (r, r))]  # fmt: skip
    placed: list[tuple[float, float, float]] = []  # centre x, centre y, half width
    out = []
    for _, name, x, y in wanted:
        half = (_CHAR_W * len(name) + _PAD_W) * scale / 2
        spot = (x, y)
        for dx, dy in steps:
            cx, cy = x + dx * half, y + dy * h
            if all(abs(cx - px) >= half + ph or abs(cy - py) >= h for px, py, ph in placed):
                spot = (cx, cy)
                break
        placed.append((spot[0], spot[1], half))
        out.append((name, spot[0], spot[1]))
    return out


def _hemi_halves(raster: FlatmapRaster, mask: np.ndarray) -> list[np.ndarray]:
    """Split a target mask into its hemispheres (one label per hemisphere)."""
    return [
        m for m in (mask & (raster.target_hemi == 0), mask & (raster.target_hemi == 1)) if m.any()
    ]


def figure_png(fig) -> bytes:
    """Encode a matplotlib figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()
