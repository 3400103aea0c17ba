"""Volume slices of a brain map: the view of voxel targets that have no surface mapping.

NSD's func1pt8mm targets reach flat and 3D views through NSD's transform files
(:mod:`core.data.nsd_projection`); where one is missing, a map is drawn on the volume instead:
each target's colour (the same as on the flat view, :meth:`core.viz.maps.BrainMap.target_rgba`)
put back in its voxel, shown as three orthogonal slices through the slices holding the most
coloured targets and a row of axial slices across the targets' extent. The volume is turned to
RAS+ (:func:`nibabel.as_closest_canonical`: flips and transposes only, no resampling), so left is
drawn on the left, anterior up in axial slices and superior up elsewhere.
"""

from __future__ import annotations

import numpy as np

from core.viz.flatmap import BACKGROUND

#: Slices in the row of axial slices.
N_AXIAL = 6


def target_index_volume(dataset, subject: str) -> tuple[np.ndarray, np.ndarray]:
    """Which target each voxel of a func1pt8mm NSD subject holds, in RAS+ orientation.

    Parameters
    ----------
    dataset : Dataset
        NSD in func1pt8mm.
    subject : str

    Returns
    -------
    index : array of shape (X, Y, Z), int32
        Target index per voxel, -1 outside the targets.
    zooms : array of shape (3,), float64
        Voxel size (mm) along each axis of ``index``.

    Raises
    ------
    DatasetError
        For another dataset kind or space (see :func:`core.data.nsd.volume_image_of`).
    """
    import nibabel as nib

    from core.data.nsd import volume_image_of

    n = dataset.subject(subject).n_targets
    img = nib.as_closest_canonical(volume_image_of(dataset, subject, np.arange(n, dtype=np.float32)))
    data = np.asarray(img.dataobj, dtype=np.float64)
    index = np.where(np.isfinite(data), np.rint(data), -1).astype(np.int32)
    return index, np.asarray(img.header.get_zooms()[:3], dtype=np.float64)


def no_surface_note(dataset, subject: str) -> str:
    """Why a subject's maps are drawn as volume slices: the NSD transform files it lacks, named
    (relative to the NSD root), or that its targets have no surface mapping at all."""
    from pathlib import Path

    from core.data.dataset import DatasetError
    from core.data.nsd import missing_transforms_of

    try:
        missing = missing_transforms_of(dataset, subject)
    except DatasetError:
        missing = []
    if not missing:
        return "No surface mapping for these voxel targets: volume slices instead of a flat map."
    root = Path(dataset.metadata.get("root", "/"))
    folder = missing[0].parent
    where = folder.relative_to(root) if folder.is_relative_to(root) else folder
    names = ", ".join(p.name for p in missing)
    return (f"No surface map: {len(missing)} of NSD's transform files missing in {where}/ "
            f"({names}; the NSD bucket has them at nsddata/ppdata/{subject}/transforms/), so "
            "the map is drawn on volume slices.")  # fmt: skip


def slice_cuts(index: np.ndarray, shown: np.ndarray) -> tuple[int, int, int]:
    """Per axis, the slice holding the most shown targets (the most targets when none is shown).

    Parameters
    ----------
    index : array of shape (X, Y, Z), int
        Target index per voxel (-1 = none).
    shown : array of shape (n_targets,), bool

    Returns
    -------
    cuts : (int, int, int)
    """
    inside = index >= 0
    hit = np.zeros(index.shape, bool)
    hit[inside] = shown[index[inside]]
    if not hit.any():
        hit = inside
    return tuple(int(np.argmax(hit.sum(axis=tuple(a for a in range(3) if a != axis))))
                 for axis in range(3))  # fmt: skip


def _rgba_volume(index: np.ndarray, target_rgba: np.ndarray) -> np.ndarray:
    out = np.empty((*index.shape, 4), np.float32)
    out[:] = (*BACKGROUND, 1.0)
    inside = index >= 0
    out[inside] = target_rgba[index[inside]]
    return out


def slice_figure(
    index: np.ndarray,
    brain_map,
    zooms: np.ndarray | tuple[float, float, float] = (1.0, 1.0, 1.0),
    note: str = "",
    simulated: bool = False,
    n_axial: int = N_AXIAL,
):
    """A map drawn on volume slices: sagittal, coronal and axial slices through the slices
    holding the most coloured targets (dashed lines mark the other cuts), and ``n_axial`` axial
    slices across the targets' extent.

    Parameters
    ----------
    index : array of shape (X, Y, Z), int
        Target index per voxel in RAS+ orientation (-1 = none), :func:`target_index_volume`.
    brain_map : BrainMap
        One value or category per target; coloured as on the flat view (plain grey where not
        shown).
    zooms : (float, float, float)
        Voxel size along each axis (for the aspect ratio).
    note : str
        A line under the slices (e.g. :func:`no_surface_note`).
    simulated : bool
        Adds the SIMULATED badge.
    n_axial : int

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    index = np.asarray(index)
    zx, zy, zz = (float(z) for z in zooms)
    rgba = _rgba_volume(index, brain_map.target_rgba())
    cx, cy, cz = slice_cuts(index, brain_map.shown())
    zs = np.flatnonzero((index >= 0).any(axis=(0, 1)))
    axial = (np.unique(np.linspace(zs[0], zs[-1], n_axial + 2)[1:-1].round().astype(int))
             if zs.size else np.array([], int))  # fmt: skip
    legend = brain_map.legend()
    fig = Figure(figsize=(9, 6.2 + (0.6 if note else 0)), dpi=100)
    grid = fig.add_gridspec(2, max(3, len(axial)), height_ratios=(1.6, 1), left=0.02, right=0.98,
                            top=0.9, bottom=0.24 if note else 0.14, hspace=0.25, wspace=0.08)
    n_top = grid.ncols // 3
    views = [
        (f"sagittal (x = {cx})", rgba[cx, :, :], zz / zy, ("P", "A")),
        (f"coronal (y = {cy})", rgba[:, cy, :], zz / zx, ("L", "R")),
        (f"axial (z = {cz})", rgba[:, :, cz], zy / zx, ("L", "R")),
    ]
    for k, (title, plane, aspect, (left, right)) in enumerate(views):
        ax = fig.add_subplot(grid[0, k * n_top:(k + 1) * n_top])
        ax.imshow(np.transpose(plane, (1, 0, 2)), origin="lower", aspect=aspect,
                  interpolation="nearest")  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.text(0.01, 0.5, left, transform=ax.transAxes, fontsize=8, color="#555", va="center")
        ax.text(0.99, 0.5, right, transform=ax.transAxes, fontsize=8, color="#555", va="center",
                ha="right")  # fmt: skip
        ax.set_axis_off()
    for k, z in enumerate(axial):
        ax = fig.add_subplot(grid[1, k])
        ax.imshow(np.transpose(rgba[:, :, z], (1, 0, 2)), origin="lower", aspect=zy / zx,
                  interpolation="nearest")  # fmt: skip
        ax.set_title(f"z = {z}", fontsize=8)
        ax.set_axis_off()
    if getattr(brain_map, "title", ""):
        fig.suptitle(brain_map.title, fontsize=11)
    if simulated:
        fig.text(0.01, 0.99, "SIMULATED", ha="left", va="top", fontsize=8, color="white",
                 bbox={"fc": "#b3261e", "lw": 0, "boxstyle": "round,pad=0.3"})  # fmt: skip
    bottom = 0.14 if note else 0.05
    if brain_map.categorical:
        if legend:
            from matplotlib.patches import Patch

            fig.legend(handles=[Patch(color=c, label=n) for n, c in legend], loc="lower center",
                       bbox_to_anchor=(0.5, bottom - 0.03), ncol=min(len(legend), 6), fontsize=8,
                       frameon=False)  # fmt: skip
    else:
        import matplotlib as mpl

        vmin, vmax = brain_map.limits
        cax = fig.add_axes((0.3, bottom, 0.4, 0.022))
        mpl.colorbar.ColorbarBase(
            cax, cmap=mpl.colormaps[brain_map.cmap], norm=mpl.colors.Normalize(vmin, vmax),
            orientation="horizontal",
        ).set_label(brain_map.label, fontsize=9)  # fmt: skip
    if note:
        import textwrap

        fig.text(0.02, 0.01, textwrap.fill(note, 140), fontsize=7.5, color="#555", va="bottom")
    return fig
