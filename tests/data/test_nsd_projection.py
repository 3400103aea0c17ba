"""func1pt8mm -> subject surface -> fsaverage with NSD's transform files, on a tiny fixture.

The fixture writes the transforms in NSD's format (``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``
(V, 1, 1, 3) 1-based voxel coordinates; ``{lh,rh}.white-to-fsaverage.mgz`` (F, 1, 1) 1-based
subject vertex indices); expectations come from the written coordinates by hand or by a plain
loop, independent of the sparse code.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from fixtures_nsd import DEPTH_LAYERS, N_VERTICES, SUBJECT_VERTICES, write_nsd, write_transforms

from core.data.dataset import DatasetError
from core.data.nsd import (
    missing_transforms_of,
    open_nsd,
    projection_cache_dir,
    volume_image_of,
    volume_projection,
    volume_projection_of,
    volume_voxels,
)
from core.data.nsd_files import volume_index
from core.data.nsd_layout import NsdLayout
from core.data.nsd_projection import (
    build_projection,
    load_projection,
    missing_transforms,
    project_volume_values,
    read_surface_to_fsaverage,
    read_volume_to_surface,
    require_transforms,
    valid_coordinates,
    voxels_from_index,
)
from core.data.nsd_validate import OK, OPTIONAL_MISSING, SKIPPED, validate_nsd

SUBJ = "subj01"
HEMIS = ("lh", "rh")


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    fx = write_nsd(tmp_path_factory.mktemp("nsdproj") / "nsd", subjects=(SUBJ,))
    tf = write_transforms(fx.root, SUBJ, fx.general[SUBJ])
    return fx, tf


@pytest.fixture(scope="module")
def layout(nsd):
    return NsdLayout(nsd[0].root)


@pytest.fixture(scope="module")
def grid(layout):
    return volume_voxels(layout, SUBJ)


@pytest.fixture(scope="module")
def projection(layout, grid):
    shape, voxels = grid
    return build_projection(layout, SUBJ, voxels, shape)


@pytest.fixture
def nsd_copy(nsd, tmp_path):
    dst = tmp_path / "nsd"
    shutil.copytree(nsd[0].root, dst)
    return dst


def _planted(nsd, grid):
    _, tf = nsd
    _, voxels = grid
    t = np.flatnonzero((voxels == np.asarray(tf.planted)).all(axis=1))
    assert t.size == 1
    return int(t[0])


# -- reading the files ----------------------------------------------------------------------
def test_transform_paths_are_nsdcodes(layout):
    # nsdcode parse_case: f"{hemi}{source}-to-{target[3:]}.mgz" with hemi "lh." / "rh."
    tdir = layout.root / "nsddata/ppdata/subj01/transforms"
    assert layout.volume_to_surface(SUBJ, "lh", "layerB2") == tdir / "lh.func1pt8-to-layerB2.mgz"
    assert layout.surface_to_fsaverage(SUBJ, "rh") == tdir / "rh.white-to-fsaverage.mgz"
    assert len(layout.projection_transforms(SUBJ)) == 8


def test_read_files_as_written(nsd, layout):
    _, tf = nsd
    for hemi in HEMIS:
        for k, layer in enumerate(DEPTH_LAYERS):
            coords = read_volume_to_surface(layout.volume_to_surface(SUBJ, hemi, layer))
            np.testing.assert_allclose(coords, tf.coords[hemi][:, k, :], rtol=1e-6)
        index = read_surface_to_fsaverage(
            layout.surface_to_fsaverage(SUBJ, hemi), SUBJECT_VERTICES[hemi]
        )
        np.testing.assert_array_equal(index, tf.fs_index[hemi] - 1)  # 1-based on disk


def test_valid_coordinates_by_hand():
    shape = (5, 4, 3)
    coords = np.array(
        [
            [1, 1, 1],  # first voxel centre: valid (1-based)
            [5, 4, 3],  # last voxel centre: valid
            [9999, 9999, 9999],
            [-1, 2, 2],
            [0.5, 2, 2],  # before the first centre
            [5.01, 2, 2],  # beyond the last
            [np.nan, 1, 1],
            [2.5, 3.5, 1.2],
        ]
    )
    np.testing.assert_array_equal(
        valid_coordinates(coords, shape), [True, True, False, False, False, False, False, True]
    )


def test_voxels_from_index_round_trip(nsd, grid):
    fx, _ = nsd
    shape, voxels = grid
    keep = fx.general[SUBJ] == 1
    np.testing.assert_array_equal(voxels_from_index(volume_index(keep), shape), voxels)


# -- the planted voxel ----------------------------------------------------------------------
def test_planted_voxel_lands_on_expected_subject_and_fsaverage_vertices(nsd, grid, projection):
    _, tf = nsd
    t = _planted(nsd, grid)
    values = np.zeros(projection.n_targets)
    values[t] = 1.0
    surf = projection.to_surface(values)
    fsavg = projection.to_fsaverage(values)
    for hemi in HEMIS:
        lit = np.flatnonzero(np.nan_to_num(surf[hemi]) != 0)
        # vertex 0 samples the voxel in all three layers, vertex 1 in B1 and B2 (B3 invalid)
        np.testing.assert_array_equal(lit, tf.anchors[hemi])
        np.testing.assert_allclose(surf[hemi][lit], 1.0)
        expected_fs = np.flatnonzero(np.isin(tf.fs_index[hemi] - 1, tf.anchors[hemi]))
        assert {0, 5} <= set(expected_fs.tolist())  # written to take subject vertex 0
        np.testing.assert_array_equal(np.flatnonzero(np.nan_to_num(fsavg[hemi]) != 0), expected_fs)
        assert fsavg[hemi].shape == (N_VERTICES,)


def test_planted_value_alone_is_finite_only_there(nsd, grid, projection):
    _, tf = nsd
    t = _planted(nsd, grid)
    values = np.full(projection.n_targets, np.nan)
    values[t] = 5.0
    surf = projection.to_surface(values)
    for hemi in HEMIS:
        np.testing.assert_array_equal(np.flatnonzero(np.isfinite(surf[hemi])), tf.anchors[hemi])
        np.testing.assert_allclose(surf[hemi][tf.anchors[hemi]], 5.0)


def test_invalid_coordinates_give_nan(nsd, projection):
    _, tf = nsd
    surf = projection.to_surface(np.ones(projection.n_targets))
    fsavg = projection.to_fsaverage(np.ones(projection.n_targets))
    for hemi in HEMIS:
        assert np.isnan(surf[hemi][tf.invalid[hemi]]).all()  # 9999, negative, beyond the volume
        assert np.isnan(fsavg[hemi][1])  # fsaverage vertex 1 takes the all-9999 subject vertex
        assert projection.surface[hemi][tf.invalid[hemi]].nnz == 0


def test_labels_winner_take_all(nsd, grid, projection):
    _, tf = nsd
    t = _planted(nsd, grid)
    labels = np.full(projection.n_targets, -1)
    labels[t] = 4
    out = projection.labels_to_fsaverage(labels)
    for hemi in HEMIS:
        expected = np.isin(tf.fs_index[hemi] - 1, tf.anchors[hemi])
        np.testing.assert_array_equal(out[hemi] == 4, expected)
        assert set(np.unique(out[hemi])) <= {-1, 4}


# -- the sparse matrix against a direct loop --------------------------------------------------
def _direct(coords, voxels, shape, interp, min_weight):
    """Per vertex: trilinear (or rounded) weights over target voxels, pooled over valid layers."""
    col = {tuple(int(a) for a in v): i for i, v in enumerate(voxels)}
    out = np.zeros((coords.shape[0], len(voxels)))
    for v in range(coords.shape[0]):
        n_valid, row = 0, np.zeros(len(voxels))
        for k in range(coords.shape[1]):
            c = coords[v, k]
            if c[0] == 9999 or not all(1 <= c[a] <= shape[a] for a in range(3)):
                continue
            n_valid += 1
            c0 = c - 1
            if interp == "nearest":
                key = tuple(int(np.floor(x + 0.5)) for x in c0)
                if key in col:
                    row[col[key]] += 1
                continue
            for dx in (0, 1):
                for dy in (0, 1):
                    for dz in (0, 1):
                        w, key = 1.0, []
                        for a, d in enumerate((dx, dy, dz)):
                            i0 = int(np.floor(c0[a]))
                            f = c0[a] - i0
                            w *= f if d else 1 - f
                            key.append(i0 + d)
                        if w > 0 and tuple(key) in col:
                            row[col[tuple(key)]] += w
        if n_valid and row.sum() / n_valid >= min_weight:
            out[v] = row / row.sum()
    return out


@pytest.mark.parametrize(
    ("interp", "min_weight"), [("linear", 0.5), ("nearest", 0.5), ("linear", 0.1)]
)
def test_sparse_matrix_equals_direct_loop(nsd, layout, grid, interp, min_weight):
    _, tf = nsd
    shape, voxels = grid
    proj = build_projection(layout, SUBJ, voxels, shape, interp=interp, min_weight=min_weight)
    for hemi in HEMIS:
        expected = _direct(tf.coords[hemi], voxels, shape, interp, min_weight)
        np.testing.assert_allclose(proj.surface[hemi].toarray(), expected, atol=1e-5)
        np.testing.assert_allclose(
            proj.fsaverage[hemi].toarray(), expected[tf.fs_index[hemi] - 1], atol=1e-5
        )
    # fractional coordinates exist, so linear weights really are spread over neighbours
    if interp == "linear":
        assert any((proj.surface[h].data < 1 - 1e-6).any() for h in HEMIS)


def test_values_are_weighted_means(nsd, projection):
    rng = np.random.default_rng(0)
    values = rng.normal(size=projection.n_targets)
    for hemi in HEMIS:
        dense = projection.fsaverage[hemi].toarray()
        out = projection.to_fsaverage(values)[hemi]
        has = dense.sum(axis=1) > 0
        np.testing.assert_allclose(out[has], dense[has] @ values)
        assert np.isnan(out[~has]).all()


# -- missing and malformed files ------------------------------------------------------------
def test_missing_files_are_named(nsd, nsd_copy, grid):
    _, tf = nsd
    shape, voxels = grid
    lay = NsdLayout(nsd_copy)
    gone = [lay.volume_to_surface(SUBJ, "rh", "layerB3"), lay.surface_to_fsaverage(SUBJ, "lh")]
    for p in gone:
        p.unlink()
    assert missing_transforms(lay, SUBJ) == sorted(gone, key=lay.projection_transforms(SUBJ).index)
    with pytest.raises(DatasetError) as err:
        require_transforms(lay, SUBJ)
    for p in gone:
        assert str(p) in str(err.value)
    with pytest.raises(DatasetError, match="rh.func1pt8-to-layerB3.mgz"):
        build_projection(lay, SUBJ, voxels, shape)
    assert missing_transforms(NsdLayout(nsd[0].root), SUBJ) == []


def test_malformed_files_are_named(nsd_copy, grid):
    import nibabel as nib

    shape, voxels = grid
    lay = NsdLayout(nsd_copy)
    path = lay.volume_to_surface(SUBJ, "lh", "layerB2")
    nib.save(nib.MGHImage(np.ones((7, 1, 1, 3), np.float32), np.eye(4)), path)
    with pytest.raises(DatasetError, match="lh.func1pt8-to-layerB2.mgz.*vertices like the other"):
        build_projection(lay, SUBJ, voxels, shape)
    nib.save(nib.MGHImage(np.ones((SUBJECT_VERTICES["lh"], 1, 1, 2), np.float32), np.eye(4)), path)
    with pytest.raises(DatasetError, match="layerB2.mgz.*shape"):
        build_projection(lay, SUBJ, voxels, shape)
    with pytest.warns(UserWarning, match="lh.func1pt8-to-layerB2.mgz"):
        data = open_nsd("nsd-proj-bad", nsd_copy, sessions=[1], cache=False).subject(SUBJ)
    assert data.targets.geometry is None
    fs = lay.surface_to_fsaverage(SUBJ, "rh")
    nib.save(nib.MGHImage(np.full((N_VERTICES, 1, 1), 999, np.int32), np.eye(4)), fs)
    with pytest.raises(DatasetError, match="rh.white-to-fsaverage.mgz.*indices 1..33"):
        read_surface_to_fsaverage(fs, SUBJECT_VERTICES["rh"])


# -- the cache --------------------------------------------------------------------------------
def test_cache_round_trip_and_key(nsd_copy, grid, tmp_path, monkeypatch):
    import core.data.nsd_projection as mod

    shape, voxels = grid
    lay = NsdLayout(nsd_copy)
    first = load_projection(lay, SUBJ, voxels, shape, cache_dir=tmp_path / "proj")
    files = list((tmp_path / "proj").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as d:  # no pickled member
        assert "lh_fsaverage_data" in d.files

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(mod, "build_projection", no_build)
    again = load_projection(lay, SUBJ, voxels, shape, cache_dir=tmp_path / "proj")
    for hemi in HEMIS:
        assert (again.fsaverage[hemi] != first.fsaverage[hemi]).nnz == 0
        assert (again.surface[hemi] != first.surface[hemi]).nnz == 0
        np.testing.assert_array_equal(again.positions[hemi], first.positions[hemi])
    np.testing.assert_array_equal(again.voxels, first.voxels)
    monkeypatch.undo()
    # a changed transform file is a new key (and a new file)
    import nibabel as nib

    path = lay.surface_to_fsaverage(SUBJ, "lh")
    img = nib.load(path)
    nib.save(nib.MGHImage(np.asarray(img.dataobj)[::-1].copy(), np.eye(4)), path)
    load_projection(lay, SUBJ, voxels, shape, cache_dir=tmp_path / "proj")
    assert len(list((tmp_path / "proj").glob("*.npz"))) == 2


# -- geometry for the existing views ------------------------------------------------------------
def test_geometry_places_planted_voxel_on_its_vertices(nsd, grid, projection):
    _, tf = nsd
    t = _planted(nsd, grid)
    hemi, vertex, dist = projection.placement()
    assert dist[t] == pytest.approx(0.0)
    name = HEMIS[int(hemi[t])]
    assert tf.fs_index[name][vertex[t]] - 1 in tf.anchors[name]
    assert vertex.shape == (projection.n_targets,) and (vertex < N_VERTICES).all()
    only = {"lh": np.arange(N_VERTICES) < 3, "rh": np.zeros(N_VERTICES, bool)}
    h2, v2, _ = projection.placement(only)
    assert (h2 == 0).all() and set(v2.tolist()) <= {0, 1, 2}
    geo = projection.geometry("nilearn:fsaverage", only)
    np.testing.assert_array_equal(geo.vertex, v2)


def test_open_nsd_func1pt8mm_gets_geometry_with_transforms(nsd, nsd_copy):
    ds = open_nsd("nsd-proj", nsd_copy, sessions=[1], cache=False)
    data = ds.subject(SUBJ)
    geo = data.targets.geometry
    assert geo is not None and geo.surface == "nilearn:fsaverage"
    assert geo.vertex.shape == (data.n_targets,) and (geo.vertex < N_VERTICES).all()
    # a cached load gets the same geometry, and caches the projection
    cached = open_nsd("nsd-proj-c", nsd_copy, sessions=[1]).subject(SUBJ)
    np.testing.assert_array_equal(cached.targets.geometry.vertex, geo.vertex)
    proj = volume_projection(NsdLayout(nsd_copy), SUBJ)
    assert proj.n_targets == data.n_targets


def test_open_nsd_without_transforms_has_no_geometry_and_names_partial(nsd_copy):
    lay = NsdLayout(nsd_copy)
    lay.surface_to_fsaverage(SUBJ, "rh").unlink()
    with pytest.warns(UserWarning, match="rh.white-to-fsaverage.mgz"):
        data = open_nsd("nsd-proj-p", nsd_copy, sessions=[1], cache=False).subject(SUBJ)
    assert data.targets.geometry is None
    shutil.rmtree(lay.transforms_dir(SUBJ))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no transforms at all: silently no geometry
        data = open_nsd("nsd-proj-n", nsd_copy, sessions=[1], cache=False).subject(SUBJ)
    assert data.targets.geometry is None


def test_dataset_helpers(nsd, nsd_copy, grid):
    fx, tf = nsd
    shape, voxels = grid
    ds = open_nsd("nsd-proj-h", nsd_copy, sessions=[1], cache=False)
    assert missing_transforms_of(ds, SUBJ) == []
    proj = volume_projection_of(ds, SUBJ)
    assert list(projection_cache_dir("nsd-proj-h", SUBJ).glob("*.npz"))  # cached there
    t = _planted(nsd, grid)
    values = np.zeros(proj.n_targets)
    values[t] = 2.0
    surf, fsavg = project_volume_values(NsdLayout(nsd_copy), SUBJ, values, voxels, shape)
    for hemi in HEMIS:
        np.testing.assert_array_equal(surf[hemi], proj.to_surface(values)[hemi])
        np.testing.assert_array_equal(fsavg[hemi], proj.to_fsaverage(values)[hemi])
    # the volume slice view's image: values back on the grid, NaN outside the targets
    img = volume_image_of(ds, SUBJ, values)
    vol = np.asarray(img.dataobj)
    assert vol.shape == shape and vol[tf.planted] == 2.0
    assert np.isnan(vol[fx.general[SUBJ] != 1]).all()
    np.testing.assert_allclose(img.affine, np.diag([1.8, 1.8, 1.8, 1.0]))
    NsdLayout(nsd_copy).surface_to_fsaverage(SUBJ, "lh").unlink()
    assert missing_transforms_of(ds, SUBJ) == [NsdLayout(nsd_copy).surface_to_fsaverage(SUBJ, "lh")]
    fs_ds = open_nsd("nsd-proj-fs", nsd_copy, space="fsaverage", sessions=[1], cache=False)
    with pytest.raises(DatasetError, match="not NSD in func1pt8mm"):
        volume_projection_of(fs_ds, SUBJ)


# -- datasets check ---------------------------------------------------------------------------
def test_validate_reports_transforms_as_optional(nsd, nsd_copy):
    report = validate_nsd(nsd[0].root, space="func1pt8mm")
    by_path = {c.path: c for c in report.checks}
    for hemi in HEMIS:
        for layer in DEPTH_LAYERS:
            c = by_path[f"nsddata/ppdata/subj01/transforms/{hemi}.func1pt8-to-{layer}.mgz"]
            assert c.status == OK and not c.required
        c = by_path[f"nsddata/ppdata/subj01/transforms/{hemi}.white-to-fsaverage.mgz"]
        assert c.status == OK and not c.required
    assert report.ok
    lay = NsdLayout(nsd_copy)
    lay.volume_to_surface(SUBJ, "lh", "layerB1").unlink()
    import nibabel as nib

    nib.save(
        nib.MGHImage(np.ones((5, 1, 1, 2), np.float32), np.eye(4)),
        lay.volume_to_surface(SUBJ, "rh", "layerB1"),
    )
    report = validate_nsd(nsd_copy, space="func1pt8mm")
    by_path = {c.path: c for c in report.checks}
    assert by_path["nsddata/ppdata/subj01/transforms/lh.func1pt8-to-layerB1.mgz"].status == (
        OPTIONAL_MISSING
    )
    assert by_path["nsddata/ppdata/subj01/transforms/rh.func1pt8-to-layerB1.mgz"].status == SKIPPED
    assert report.ok
