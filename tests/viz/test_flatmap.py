"""Flatmaps: raster geometry, colouring, outlines and rendering on the demo surface."""

from __future__ import annotations

import numpy as np
import pytest

from core.viz.flatmap import (
    build_raster,
    categorical_rgba,
    draw_flatmap,
    figure_png,
    flatmap_rgba,
    roi_outline,
)


@pytest.fixture(scope="module")
def targets(demo_small):
    return demo_small.subject("subj01").targets


@pytest.fixture(scope="module")
def raster(targets):
    return build_raster(targets, width=300)


def test_raster_shows_most_targets(raster, targets):
    shown = np.unique(raster.pixel_target[raster.pixel_target >= 0])
    assert shown.size > 0.5 * targets.n_targets
    assert raster.pixel_target.max() < targets.n_targets


def test_raster_is_cached_on_disk(targets, raster):
    again = build_raster(targets, width=300)
    assert np.array_equal(again.pixel_target, raster.pixel_target)


def test_hemispheres_sit_side_by_side(raster):
    x = raster.target_xy[:, 0]
    assert x[raster.target_hemi == 0].mean() < x[raster.target_hemi == 1].mean()


def test_values_colour_the_pixels_of_their_targets(raster, targets):
    values = np.zeros(targets.n_targets)
    values[0] = 1.0
    rgba = flatmap_rgba(raster, values, cmap="gray", vmin=0, vmax=1)
    pix = raster.pixel_target == 0
    if pix.any():
        assert np.allclose(rgba[pix][:, :3], 1.0)
    others = raster.pixel_target > 0
    assert np.allclose(rgba[others][:, :3], 0.0)


def test_wrong_number_of_values_is_an_error(raster):
    with pytest.raises(ValueError, match="targets"):
        flatmap_rgba(raster, np.zeros(3))


def test_nan_values_show_plain_cortex(raster, targets):
    rgba = flatmap_rgba(raster, np.full(targets.n_targets, np.nan))
    assert rgba.shape == raster.shape + (4,)
    assert np.isfinite(rgba).all()


def test_categorical_colours(raster, targets):
    labels = np.where(np.arange(targets.n_targets) % 2 == 0, 0, 1)
    rgba = categorical_rgba(raster, labels, [(1, 0, 0), (0, 0, 1)])
    pix = raster.pixel_target >= 0
    assert set(map(tuple, np.unique(rgba[pix][:, :3], axis=0))) <= {(1, 0, 0), (0, 0, 1)}


def test_roi_outline_is_on_the_roi_border(raster, targets):
    edge = roi_outline(raster, targets.roi_mask("V1"))
    assert 0 < edge.sum() < (raster.pixel_target >= 0).sum()


def test_figure_renders_to_png(raster, targets):
    rgba = flatmap_rgba(raster, targets.ncsnr)
    rois = {n: targets.roi_mask(n) for n in targets.roi_names()}
    fig = draw_flatmap(
        raster, rgba, rois=rois, highlight="FFA", colorbar=("inferno", 0, 1, "ncsnr")
    )
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_roi_names_on_the_flat_map_do_not_overlap():
    """Many small ROIs at nearly one place (NSD's 31 labels on a flat map): every name gets a
    box of its own; a lone ROI keeps its name at its median."""
    from core.viz.flatmap import _LABEL_H, FlatmapRaster, label_positions

    rng = np.random.default_rng(0)
    n = 400
    xy = np.column_stack([rng.normal(200, 3, n), rng.normal(150, 3, n)]).astype(np.float32)
    xy[-20:] = (700, 100)
    raster = FlatmapRaster(np.full((300, 900), -1, np.int32), np.zeros((300, 900), bool), xy,
                           np.where(xy[:, 0] > 450, 1, 0).astype(np.int8))  # fmt: skip
    rois = {f"ROI-{k}": np.isin(np.arange(n), np.arange(k * 20, k * 20 + 20)) for k in range(19)}
    rois["alone"] = np.arange(n) >= n - 20
    labels = label_positions(raster, rois)
    assert sorted(n for n, _, _ in labels) == sorted(rois)
    boxes = [(x, y, 5.5 * len(name) / 2) for name, x, y in labels]
    for i, (xa, ya, ha) in enumerate(boxes):
        for xb, yb, hb in boxes[i + 1:]:
            assert abs(xa - xb) >= ha + hb - 1e-6 or abs(ya - yb) >= _LABEL_H - 1e-6
    assert next((x, y) for name, x, y in labels if name == "alone") == (700, 100)


def test_full_fsaverage_targets_are_drawn_on_nilearns_fsaverage5():
    """NSD's nsdgeneral on fsaverage lies mostly on vertices finer than fsaverage5's (>= 10,242):
    the offline flat mesh places each at its nearest fsaverage5 vertex, so the raster draws
    them (it used to fail on their NaN positions)."""
    from core.data.dataset import TargetGeometry, TargetSet
    from core.data.fsaverage import fsaverage5_parent
    from core.data.surfaces import load_flat_mesh

    mesh = load_flat_mesh("nilearn:fsaverage", "lh")
    parent = fsaverage5_parent("lh")
    assert np.isfinite(mesh.coords).all()
    np.testing.assert_array_equal(mesh.coords[150_000], mesh.coords[parent[150_000]])
    rng = np.random.default_rng(0)
    vertex = np.concatenate([rng.choice(163_842, 300, replace=False),
                             rng.choice(163_842, 300, replace=False)]).astype(np.int32)
    hemi = np.repeat([0, 1], 300).astype(np.int8)
    targets = TargetSet(roi_families={}, general_mask=np.ones(600, bool),
                        geometry=TargetGeometry("nilearn:fsaverage", hemi, vertex))  # fmt: skip
    raster = build_raster(targets, width=300)
    shown = np.unique(raster.pixel_target[raster.pixel_target >= 0])
    fine = np.flatnonzero(vertex >= 10_242)
    assert fine.size > 500 and np.isin(fine, shown).mean() > 0.3  # finer vertices are drawn
    assert np.isfinite(raster.target_xy).all()


def test_targets_off_the_flat_patch_are_left_out(monkeypatch):
    """A flat patch leaves some vertices without a position (NSD's medial wall): the raster is
    drawn from the others, and ROI names sit among the placed targets."""
    import core.viz.flatmap as flatmap
    from core.data.dataset import TargetGeometry, TargetSet
    from core.data.flat_mesh import FlatMesh

    xy = np.column_stack([np.linspace(0, 50, 40), np.tile([0.0, 5.0], 20)]).astype(np.float32)
    xy[5] = np.nan
    faces = np.array([[0, 1, 2]], np.int32)
    mesh = FlatMesh(coords=xy, faces=faces, inflated=np.zeros((40, 3), np.float32))
    monkeypatch.setattr(flatmap, "load_flat_mesh", lambda surface, hemi: mesh)
    vertex = np.arange(40, dtype=np.int32)
    targets = TargetSet(roi_families={}, general_mask=np.ones(40, bool),
                        geometry=TargetGeometry("test:patch", np.zeros(40, np.int8), vertex))
    raster = flatmap._compute_raster(targets, width=120, radius=2.2)
    assert 5 not in raster.pixel_target and (raster.pixel_target >= 0).any()
    labels = flatmap.label_positions(raster, {"R": np.arange(40) < 10})
    assert len(labels) == 1 and np.isfinite(labels[0][1:]).all()
