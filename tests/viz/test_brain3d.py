"""3D brain views: meshes (pycortex S1, nilearn fsaverage5), target-to-vertex mapping, colours
that match the flat view, borders that stand out on every colour scale, ROI names apart, a camera
that keeps the whole brain in view, the small self-contained HTML (and, with chromium, the page
drawn), and the volume-only message."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from core.viz.brain3d import (
    COORD_SCALE,
    FIT_MARGIN,
    FSAVERAGE_NOTE,
    MIN_CONTRAST,
    SURFACES,
    VIEWS,
    border_colours,
    brain_html,
    colour_contrast,
    encode_coords,
    encode_faces,
    encode_map,
    fit_camera,
    load_brain_mesh,
    map_colours,
    outline_vertices,
    project,
    roi_label_positions,
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


@pytest.fixture(scope="module")
def rois(subject):
    from core.data.rois import GENERAL, roi_masks

    return {k: v for k, v in roi_masks(subject).items() if k != GENERAL}


def _u8(c):
    return np.rint(np.array(c) * 255).astype(np.uint8)


def test_roi_outlines_and_highlight(mesh, vt, subject, rois):
    m = BrainMap.of_values("x", np.zeros(subject.targets.n_targets), label="v", title="t")
    rgb, _, roi = vertex_rgb(mesh, vt, m, rois, highlight="V1")
    assert set(np.unique(roi)) >= {0, 1}  # some vertices in ROIs, some outside
    border, high = border_colours(m)
    line = (rgb == _u8(border)).all(1)
    blue = (rgb == _u8(high)).all(1)
    assert line.any() and blue.any()
    assert line[outline_vertices(mesh, roi)].mean() > 0.7  # the rest: the highlight's outline
    v1 = list(rois).index("V1") + 1
    assert (roi[blue] == v1).all()


@pytest.mark.parametrize(
    "kind", ["diverging", "inferno", "viridis", "categories"],
)
def test_borders_stand_out_on_every_colour_scale(kind):
    """White borders vanished on the white middle of a diverging scale and on inferno's pale
    end: the border and the highlight now differ from every colour of the map (and from each
    other) by at least MIN_CONTRAST (CIE76 Delta E)."""
    values = np.linspace(-1, 1, 50)
    m = {
        "diverging": BrainMap.of_values("d", values, label="v", title="t", symmetric=True),
        "inferno": BrainMap.of_values("i", values, label="v", title="t"),
        "viridis": BrainMap.of_values("v", values, label="v", title="t", cmap="viridis"),
        "categories": BrainMap.of_categories("c", np.arange(50) % 4, ["a", "b", "c", "d"],
                                             title="t"),
    }[kind]  # fmt: skip
    border, high = border_colours(m)
    colours = map_colours(m)
    assert colour_contrast(border, colours) >= MIN_CONTRAST
    assert colour_contrast(high, colours) >= MIN_CONTRAST
    assert colour_contrast(high, np.array([border])) >= MIN_CONTRAST
    if kind in ("diverging", "inferno"):
        assert border != (1.0, 1.0, 1.0)
    # the scale's own extremes are among the colours checked (white middle, pale end)
    assert colour_contrast((1.0, 1.0, 1.0), colours) < 20 or kind in ("viridis", "categories")


def test_roi_names_sit_apart(mesh, vt, subject, rois):
    """V2 wraps around V1: each name is anchored at its ROI's deepest vertex, so V1's and V2's
    (which were written over each other) are apart, each inside its own ROI."""
    m = BrainMap.of_values("x", np.zeros(subject.targets.n_targets), label="v", title="t")
    _, _, roi = vertex_rgb(mesh, vt, m, rois)
    labels = roi_label_positions(mesh, roi, list(rois))
    names = list(rois)
    for lab in labels:
        assert roi[lab["vertex"]] == names.index(lab["name"]) + 1
        assert mesh.hemi[lab["vertex"]] == lab["hemi"]
    infl = mesh.coords["inflated"]
    for h in (0, 1):
        at = {lab["name"]: infl[lab["vertex"]] for lab in labels if lab["hemi"] == h}
        assert {"V1", "V2"} <= set(at)
        assert np.linalg.norm(at["V1"] - at["V2"]) > 8.0  # mm
        pts = np.array(list(at.values()))
        gaps = np.linalg.norm(pts[:, None] - pts[None], axis=2) + 1e9 * np.eye(len(pts))
        assert gaps.min() > 5.0


@pytest.mark.parametrize("aspect", [0.7, 1.8, 3.0])
def test_camera_keeps_every_vertex_in_view(mesh, aspect):
    """The occipital pole was cropped: every view, fitted to the vertices shown, holds every
    vertex inside the margin, and is as close as that allows (some vertex touches it)."""
    for surface, xyz in mesh.coords.items():
        for hemi in (None, 0, 1):
            pts = xyz if hemi is None else xyz[mesh.hemi == hemi]
            for name, (az, el) in VIEWS.items():
                cam = fit_camera(pts, az, el, aspect)
                ndc = np.abs(project(pts, cam, aspect))
                assert ndc.max() <= FIT_MARGIN + 1e-6, (surface, hemi, name)
                assert ndc.max() >= FIT_MARGIN - 1e-3, (surface, hemi, name)
                # centred: the extents on both sides are about equal
                p = project(pts, cam, aspect)
                assert abs(p[:, 1].max() + p[:, 1].min()) < 0.1, (surface, hemi, name)


def _unplane(raw: bytes, dtype) -> np.ndarray:
    """What the page's ``unplane`` does: byte planes back to little-endian numbers."""
    width = np.dtype(dtype).itemsize
    u8 = np.frombuffer(raw, np.uint8).reshape(width, -1).T.copy()
    return u8.view(np.dtype(dtype).newbyteorder("<")).ravel()


def test_mesh_and_map_encodings_round_trip(mesh):
    """The page decodes exactly what Python encodes (the same steps, in numpy)."""
    n = mesh.n_vertices
    for xyz in mesh.coords.values():
        delta = _unplane(encode_coords(xyz), np.int16).reshape(3, n)
        q = np.cumsum(delta.astype(np.int64), axis=1)
        q = ((q + 32768) % 65536) - 32768  # int16 wrap, as the page's << 16 >> 16
        assert np.abs(q.T / COORD_SCALE - xyz).max() <= 0.5 / COORD_SCALE + 1e-4
    raw, n_faces = encode_faces(mesh.faces)
    d = _unplane(raw, np.int32).reshape(3, n_faces).astype(np.int64)
    first = np.cumsum(d[0])
    got = np.stack([first, first + d[1], first + d[2]], axis=1)

    def canon(f):  # each face from its lowest vertex, winding kept
        k = np.argmin(f, axis=1)
        r = np.arange(len(f))
        return {tuple(x) for x in np.stack([f[r, k], f[r, (k + 1) % 3], f[r, (k + 2) % 3]], 1)}

    assert n_faces == mesh.faces.shape[0] and canon(got) == canon(mesh.faces.astype(np.int64))
    n_left = int((mesh.hemi == 0).sum())
    left = got.min(1) < n_left
    assert left[: left.sum()].all()  # the left hemisphere's faces come first
    rng = np.random.default_rng(1)
    values = rng.normal(size=n)
    values[::5] = np.nan
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    roi = rng.integers(0, 9, n)
    raw, lo, hi = encode_map(rgb, values, roi, categorical=False)
    u8 = np.frombuffer(raw, np.uint8)
    assert np.array_equal(u8[: 3 * n].reshape(3, n).T, rgb)
    assert np.array_equal(u8[3 * n: 4 * n], roi)
    q = _unplane(u8[4 * n:].tobytes(), np.uint16)
    back = np.where(q == 65535, np.nan, lo + q * (hi - lo) / 65534)
    assert np.allclose(back, values, atol=(hi - lo) / 65534, equal_nan=True)


def _page_data(html: str) -> dict:
    return json.loads(re.search(r"const D = (\{.*?\});\n", html).group(1))


def test_html_is_small_and_self_contained(mesh, vt, subject, rois):
    m = BrainMap.of_values("x", subject.targets.ncsnr, label="ncsnr", title="ncsnr · subj01")
    html = brain_html(mesh, vt, m, rois, highlight="FFA", simulated=True)
    assert "<script src" not in html and "http://" not in html and "https://" not in html
    assert 'data-testid="brain3d"' in html and "DecompressionStream" in html
    data = _page_data(html)
    assert data["mesh"]["surfaces"] == list(SURFACES)
    assert data["simulated"] and data["limits"] == list(m.limits)
    assert {lab["name"] for lab in data["labels"]} <= set(rois)
    assert data["border"] and data["highlight"][0] == "FFA"
    # the target: <= 1.5 MB per view (was 3.2 MB with plotly inlined)
    assert len(html.encode()) <= 1_500_000
    # a categorical map of the same mesh: the mesh part is the same, the map part differs
    c = BrainMap.of_categories("c", np.arange(subject.targets.n_targets) % 3, ["IC", "IU1", "VQ2"],
                               title="best")  # fmt: skip
    other = _page_data(brain_html(mesh, vt, c, rois))
    assert other["mesh"] == data["mesh"] and other["map"] != data["map"]
    assert other["categorical"] and [n for n, _ in other["legend"]] == ["IC", "IU1", "VQ2"]


def _chromium():
    from tests.app.browser import chromium_path

    return chromium_path()


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_page_draws_in_chromium(mesh, vt, subject, rois, tmp_path):
    """The page in headless chromium: drawn, every vertex inside the view in every view and
    surface, the ROI names' boxes never overlapping, no console errors (how fast it draws is a
    benchmark's question, ``benchmarks/app.py``, not a test's)."""
    from tests.app.browser import Chromium

    m = BrainMap.of_values("x", subject.targets.ncsnr, label="ncsnr", title="ncsnr")
    path = tmp_path / "brain.html"
    path.write_text(brain_html(mesh, vt, m, rois, highlight="V1", simulated=True))
    click = ("(g, t) => [...document.querySelectorAll('#' + g + ' button')]"
             ".find(b => b.textContent === t).click()")  # fmt: skip
    with Chromium(width=1000, height=700) as browser:
        browser.open(path.as_uri())
        browser.wait_for("document.getElementById('brain')?.dataset.ready", timeout=30)
        for surface in SURFACES:
            for hemi in ("both", "left"):
                for view in ("back", "bottom", "left", "medial"):
                    got = browser.eval(f"""(async () => {{ const c = {click};
                        c('g-surf', '{surface}'); c('g-hemi', '{hemi}'); c('g-view', '{view}');
                        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                        return {{ worst: brain3d.fitCheck(), boxes: brain3d.labelBoxes() }}; }})()""")
                    where = (surface, hemi, view)
                    assert FIT_MARGIN - 0.01 <= got["worst"] <= FIT_MARGIN + 1e-3, where
                    boxes = got["boxes"]
                    for i, a in enumerate(boxes):
                        for b in boxes[i + 1:]:
                            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
                            assert apart, (where, a, b)
                    if (surface, hemi, view) == ("inflated", "both", "back"):
                        names = [b["name"] for b in boxes]
                        assert names.count("V1") == 2 and names.count("V2") == 2, names
        assert browser.console_errors() == []


def test_volume_targets_have_no_surface(subject):
    volume = replace(subject.targets, geometry=None)
    msg = surface_problem(volume)
    assert msg and "volume" in msg and "fsaverage" in msg
    assert surface_problem(subject.targets) is None
    with pytest.raises(ValueError, match="volume"):
        vertex_targets(load_brain_mesh(subject.targets.geometry.surface), volume)


def test_nilearn_fsaverage5_offline():
    """nilearn bundles fsaverage5 (not the full fsaverage): fsaverage targets are drawn on its
    10,242 vertices per hemisphere, each finer vertex at its nearest fsaverage5 vertex, and the
    note says so."""
    from core.data.fsaverage import fsaverage5_parent

    mesh = load_brain_mesh("nilearn:fsaverage")
    assert mesh.n_vertices == 2 * 10_242
    assert mesh.note == FSAVERAGE_NOTE
    for h, hemi in enumerate(("lh", "rh")):
        cluster = mesh.cluster_of[h]
        assert cluster.size == 163_842 and (cluster >= 0).all()  # every vertex drawn
        parent = fsaverage5_parent(hemi)
        np.testing.assert_array_equal(cluster[10_242:], cluster[parent[10_242:]])
    assert set(mesh.coords) == set(SURFACES)
