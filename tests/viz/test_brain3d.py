"""3D brain views: meshes (pycortex S1, nilearn fsaverage5), target-to-vertex mapping, colours
that match the flat view, the self-contained HTML, and the volume-only message."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from core.viz.brain3d import (
    FSAVERAGE_NOTE,
    SURFACES,
    brain_html,
    load_brain_mesh,
    surface_problem,
    vertex_rgb,
    vertex_targets,
)
from core.viz.maps import BrainMap


@pytest.fixture(scope="module")
def subject(demo_small):
    return demo_small.subject("subj01")


@pytest.fixture(scope="module")
def mesh(subject):
    return load_brain_mesh(subject.targets.geometry.surface)


@pytest.fixture(scope="module")
def vt(mesh, subject):
    return vertex_targets(mesh, subject.targets)


def test_s1_mesh_has_both_hemispheres_and_surfaces(mesh):
    assert set(mesh.coords) == set(SURFACES)
    n = mesh.n_vertices
    assert 20_000 < n < 60_000  # decimated from S1's ~300k vertices
    assert set(np.unique(mesh.hemi)) == {0, 1}
    assert (np.diff(mesh.hemi) >= 0).all()  # stacked: left first
    assert mesh.faces.min() >= 0 and mesh.faces.max() < n
    # faces never join the hemispheres
    assert (mesh.hemi[mesh.faces] == mesh.hemi[mesh.faces[:, :1]]).all()
    infl = mesh.coords["inflated"]
    # inflated hemispheres moved apart: left entirely left of right
    assert infl[mesh.hemi == 0, 0].max() < infl[mesh.hemi == 1, 0].min()
    for h in (0, 1):
        table = mesh.cluster_of[h]
        assert table.max() < n and (table >= 0).all()
    assert "pycortex subject S1" in mesh.note


def test_mesh_is_cached_on_disk(mesh, subject):
    load_brain_mesh.cache_clear()
    again = load_brain_mesh(subject.targets.geometry.surface)
    assert np.array_equal(again.faces, mesh.faces)
    assert np.allclose(again.coords["pial"], mesh.coords["pial"])


def test_every_target_is_drawn_and_vertices_show_near_targets(mesh, vt, subject):
    n_t = subject.targets.n_targets
    assert vt.max() < n_t
    shown = np.unique(vt[vt >= 0])
    # the decimated mesh has fewer vertices than the dense ROIs have targets: every vertex near
    # targets shows one (as a flatmap pixel does), most targets are seen
    assert shown.size > 0.4 * n_t
    # a vertex shows a target of its own hemisphere
    hemi_t = subject.targets.geometry.hemi
    assert (hemi_t[vt[vt >= 0]] == mesh.hemi[vt >= 0]).all()


def test_colours_match_the_flat_view(mesh, vt, subject):
    rng = np.random.default_rng(0)
    values = rng.normal(size=subject.targets.n_targets)
    values[::7] = np.nan
    m = BrainMap.of_values("x", values, label="v", title="t", symmetric=True)
    rgb, vals, roi = vertex_rgb(mesh, vt, m)  # no ROIs: no outline drawn over colours
    has = (vt >= 0) & np.isfinite(values[vt])  # elsewhere: shaded bare cortex
    expect = np.rint(m.target_rgba()[vt[has], :3] * 255).astype(int)
    assert np.abs(rgb[has].astype(int) - expect).max() <= 1
    assert np.allclose(vals[has], values[vt[has]], equal_nan=True)
    # categories: the category colours of the flat maps
    labels = rng.integers(-1, 3, subject.targets.n_targets)
    c = BrainMap.of_categories("c", labels, ["IC", "IU1", "VQ2"], title="best")
    rgb, vals, _ = vertex_rgb(mesh, vt, c)
    assert np.array_equal(vals[has], labels[vt[has]])
    expect = np.rint(c.target_rgba()[vt[has], :3] * 255).astype(int)
    ok = labels[vt[has]] >= 0
    assert np.abs(rgb[has][ok].astype(int) - expect[ok]).max() <= 1


def test_roi_outlines_and_highlight(mesh, vt, subject):
    from core.pipeline.fits import GENERAL, roi_masks

    rois = {k: v for k, v in roi_masks(subject).items() if k != GENERAL}
    m = BrainMap.of_values("x", np.zeros(subject.targets.n_targets), label="v", title="t")
    rgb, _, roi = vertex_rgb(mesh, vt, m, rois, highlight="V1")
    assert set(np.unique(roi)) >= {0, 1}  # some vertices in ROIs, some outside
    white = (rgb == 255).all(1)
    blue = (rgb == np.rint(np.array([0.1, 0.6, 1.0]) * 255).astype(np.uint8)).all(1)
    assert white.any() and blue.any()
    v1 = list(rois).index("V1") + 1
    assert (roi[blue] == v1).all()


def test_html_is_self_contained(mesh, vt, subject):
    from core.pipeline.fits import GENERAL, roi_masks

    rois = {k: v for k, v in roi_masks(subject).items() if k != GENERAL}
    m = BrainMap.of_values("x", subject.targets.ncsnr, label="ncsnr", title="ncsnr · subj01")
    html = brain_html(mesh, vt, m, rois, highlight="FFA", simulated=True)
    assert "<script src" not in html and "http://" not in html.split("<script>")[2][:2000]
    assert "Plotly.newPlot" in html and 'data-testid="brain3d"' in html
    data = json.loads(re.search(r"const D = (\{.*?\});\n", html).group(1))
    assert data["surfaces"] == list(SURFACES)
    assert data["simulated"] and data["limits"] == list(m.limits)
    assert {lab["name"] for lab in data["labels"]} <= set(rois)
    assert len(html) < 6_000_000


def test_volume_targets_have_no_surface(subject):
    volume = replace(subject.targets, geometry=None)
    msg = surface_problem(volume)
    assert msg and "volume" in msg and "fsaverage" in msg
    assert surface_problem(subject.targets) is None
    with pytest.raises(ValueError, match="volume"):
        vertex_targets(load_brain_mesh(subject.targets.geometry.surface), volume)


def test_nilearn_fsaverage5_offline():
    """nilearn bundles fsaverage5 (not the full fsaverage): fsaverage targets are drawn on its
    10,242 vertices per hemisphere, and the note says so."""
    mesh = load_brain_mesh("nilearn:fsaverage")
    assert mesh.n_vertices == 2 * 10_242
    assert mesh.note == FSAVERAGE_NOTE
    assert mesh.cluster_of[0].size == 163_842
    assert (mesh.cluster_of[0][10_242:] == -1).all()  # finer vertices: not drawn
    assert set(mesh.coords) == set(SURFACES)
