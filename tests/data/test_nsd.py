"""NSD reader against tiny fixtures in the exact on-disk formats, with hand-computed expectations."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import scipy.io
from fixtures_nsd import FAMILIES, N1, N2, N3, N_SHARED_POOL, write_flat_surfaces, write_nsd

from core.data.dataset import DatasetError
from core.data.nsd import open_nsd, read_nsd_subject
from core.data.nsd_files import read_ctab, read_expdesign
from core.data.nsd_layout import NsdLayout
from core.data.nsd_validate import INVALID, MISSING, OK, validate_nsd

SUBJ = "subj01"


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    return write_nsd(tmp_path_factory.mktemp("nsd") / "nsd")


@pytest.fixture(scope="module")
def subj01(nsd):
    return read_nsd_subject(nsd.root, SUBJ)


@pytest.fixture
def nsd_copy(nsd, tmp_path):
    dst = tmp_path / "nsd"
    shutil.copytree(nsd.root, dst)
    return dst


def _expected(nsd, subject, voxel, sessions=(1, 2, 3), zscore=True):
    """Per image: the mean over its trials of one voxel's z-scored (within session) int16/300."""
    per_image: dict[int, list[float]] = {}
    for s in sessions:
        raw = nsd.volume_betas[(subject, s)][tuple(voxel)].astype(np.float64) / 300.0
        values = (raw - raw.mean()) / raw.std() if zscore else raw
        for img, v in zip(nsd.trial_ids(subject, s), values, strict=True):
            per_image.setdefault(int(img), []).append(v)
    return {k: (np.mean(v), len(v)) for k, v in per_image.items()}


# -- experiment design ----------------------------------------------------------------------
def test_expdesign_one_based_conventions_by_hand(tmp_path):
    mo = np.ones((1, 30000))
    mo[0, 0], mo[0, 1] = 3, 10000
    subjectim = np.ones((8, 10000))
    subjectim[0, 2] = 11  # 1-based 73k id 11 -> 0-based 10
    subjectim[0, 9999] = 73000
    subjectim[1, 2] = 5
    sharedix = np.arange(1, 1001)[None, :] * 7.0
    path = tmp_path / "nsd_expdesign.mat"
    scipy.io.savemat(path, {"masterordering": mo, "subjectim": subjectim, "sharedix": sharedix})
    d = read_expdesign(path)
    assert d.trial_ids("subj01", 1)[:3].tolist() == [10, 72999, 0]
    assert d.trial_ids("subj02", 1)[0] == 4
    assert d.shared_ids()[:3].tolist() == [6, 13, 20]
    assert d.n_sessions == 40


def test_expdesign_matches_fixture_formula(nsd):
    d = read_expdesign(NsdLayout(nsd.root).expdesign)
    for s in (1, 3, 40):
        np.testing.assert_array_equal(d.trial_ids(SUBJ, s), nsd.trial_ids(SUBJ, s))
    np.testing.assert_array_equal(d.shared_ids(), np.sort(nsd.sharedix - 1))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"masterordering": np.ones((1, 100))}, "masterordering of shape (30000,)"),
        ({"masterordering": np.zeros((1, 30000))}, "1-based indices in 1..10000"),
        ({"sharedix": None}, "a field 'sharedix'"),
    ],
)
def test_expdesign_wrong_file_names_file_and_expectation(tmp_path, fields, message):
    good = {
        "masterordering": np.ones((1, 30000)),
        "subjectim": np.ones((8, 10000)),
        "sharedix": np.ones((1, 1000)),
    }
    good.update(fields)
    path = tmp_path / "nsd_expdesign.mat"
    scipy.io.savemat(path, {k: v for k, v in good.items() if v is not None})
    with pytest.raises(DatasetError, match="nsd_expdesign.mat") as err:
        read_expdesign(path)
    assert message in str(err.value)


def test_truncated_or_missing_expdesign(tmp_path, nsd):
    with pytest.raises(DatasetError, match="nsd_expdesign.mat.*no file"):
        read_expdesign(tmp_path / "nsd_expdesign.mat")
    bad = tmp_path / "nsd_expdesign.mat"
    bad.write_bytes(NsdLayout(nsd.root).expdesign.read_bytes()[:5000])
    with pytest.raises(DatasetError, match="nsd_expdesign.mat"):
        read_expdesign(bad)


# -- responses ------------------------------------------------------------------------------
def test_ids_counts_and_split(nsd, subj01):
    # sessions 1-3 show N3 images x3, N2 x2, N1 x1 (the fixture's design)
    assert subj01.responses.shape == (N3 + N2 + N1, int((nsd.general[SUBJ] == 1).sum()))
    assert np.bincount(subj01.n_repeats).tolist() == [0, N1, N2, N3]
    shared = set((nsd.sharedix - 1).tolist())
    assert subj01.is_test.tolist() == [i in shared for i in subj01.stimulus_ids]
    assert subj01.is_test.sum() == N_SHARED_POOL
    own = set((nsd.subjectim[0, 1000:] - 1).tolist())
    assert set(subj01.train_ids.tolist()) <= own
    assert np.all(np.diff(subj01.stimulus_ids) > 0)


def test_zscored_repeat_average_by_hand(nsd, subj01):
    voxels = np.argwhere(nsd.general[SUBJ] == 1)
    for t in (0, 5, len(voxels) - 1):
        expected = _expected(nsd, SUBJ, voxels[t])
        for rep in (1, 2, 3):
            img = next(k for k, (_, n) in expected.items() if n == rep)
            row = subj01.rows_for([img])[0]
            assert subj01.n_repeats[row] == rep
            assert subj01.responses[row, t] == pytest.approx(expected[img][0], abs=1e-5)


def test_int16_over_300_scaling_without_zscore(nsd):
    data = read_nsd_subject(nsd.root, SUBJ, sessions=[1], zscore=False)
    voxel = np.argwhere(nsd.general[SUBJ] == 1)[2]
    raw = nsd.volume_betas[(SUBJ, 1)][tuple(voxel)]
    trials = nsd.trial_ids(SUBJ, 1)
    once = [i for i in np.unique(trials) if (trials == i).sum() == 1][0]
    row = data.rows_for([once])[0]
    assert data.responses[row, 2] == pytest.approx(raw[trials == once][0] / 300.0, rel=1e-6)


def test_hdf5_betas_equal_nifti(nsd, subj01):
    # the fixture's HDF5 is chunked like NSD's (one voxel's 750 trials per chunk)
    h5 = read_nsd_subject(nsd.root, SUBJ, fmt="hdf5")
    np.testing.assert_array_equal(h5.stimulus_ids, subj01.stimulus_ids)
    np.testing.assert_array_equal(h5.responses, subj01.responses)


def test_session_subset(nsd):
    data = read_nsd_subject(nsd.root, SUBJ, sessions=[1, 3])
    trials = np.concatenate([nsd.trial_ids(SUBJ, 1), nsd.trial_ids(SUBJ, 3)])
    ids, counts = np.unique(trials, return_counts=True)
    np.testing.assert_array_equal(data.stimulus_ids, ids)
    np.testing.assert_array_equal(data.n_repeats, counts)
    voxel = np.argwhere(nsd.general[SUBJ] == 1)[1]
    expected = _expected(nsd, SUBJ, voxel, sessions=(1, 3))
    img = int(ids[counts == 2][0])
    assert data.responses[data.rows_for([img])[0], 1] == pytest.approx(expected[img][0], abs=1e-5)
    with pytest.raises(DatasetError, match="betas_session05.nii.gz"):
        read_nsd_subject(nsd.root, SUBJ, sessions=[1, 5])


# -- targets: masks, ROIs, noise ceiling ----------------------------------------------------
def test_nsdgeneral_mask_and_roi_labels(nsd, subj01):
    general = nsd.general[SUBJ]
    voxels = np.argwhere(general == 1)
    t = subj01.targets
    assert t.general_mask.all() and t.n_targets == len(voxels)
    assert set(t.roi_families) == set(FAMILIES)
    for family, names in FAMILIES.items():
        fam = t.roi_families[family]
        np.testing.assert_array_equal(fam.labels, nsd.rois[SUBJ][family][tuple(voxels.T)])
        assert fam.names == names
    v1v = nsd.rois[SUBJ]["prf-visualrois"][tuple(voxels.T)] == 1
    np.testing.assert_array_equal(t.roi_mask("V1v"), v1v)
    ppa = nsd.rois[SUBJ]["floc-places"][tuple(voxels.T)] == 2
    np.testing.assert_array_equal(t.roi_mask("PPA"), ppa)


def test_brain_targets_keep_rois_within_nsdgeneral(nsd):
    data = read_nsd_subject(nsd.root, SUBJ, sessions=[1], targets="brain")
    general = nsd.general[SUBJ]
    voxels = np.argwhere(general >= 0)
    assert data.n_targets == len(voxels)
    np.testing.assert_array_equal(data.targets.general_mask, general[tuple(voxels.T)] == 1)
    labels = nsd.rois[SUBJ]["floc-faces"][tuple(voxels.T)]
    ffa = data.targets.roi_mask("FFA-1")
    np.testing.assert_array_equal(ffa, (labels == 2) & (general[tuple(voxels.T)] == 1))
    assert (labels == 2).sum() > ffa.sum()  # labelled voxels outside nsdgeneral are excluded


def test_noise_ceiling_mixed_repetitions(nsd, subj01):
    voxels = np.argwhere(nsd.general[SUBJ] == 1)
    ncsnr = nsd.ncsnr[SUBJ][tuple(voxels.T)]
    np.testing.assert_allclose(subj01.targets.ncsnr, ncsnr)
    test = subj01.is_test
    a, b, c = ((subj01.n_repeats[test] == k).sum() for k in (3, 2, 1))
    inv = (a / 3 + b / 2 + c) / (a + b + c)
    expected = ncsnr.astype(np.float64) ** 2 / (ncsnr.astype(np.float64) ** 2 + inv)
    np.testing.assert_allclose(subj01.noise_ceiling(), expected, rtol=1e-5)


def test_ctab_parsing(tmp_path):
    p = tmp_path / "x.mgz.ctab"
    p.write_text("0 Unknown\n1 OPA 0 0 255 0\n\n2 PPA\n3 RSC\n")
    assert read_ctab(p) == {1: "OPA", 2: "PPA", 3: "RSC"}
    p.write_text("one OPA\n")
    with pytest.raises(DatasetError, match="x.mgz.ctab.*'index name' lines"):
        read_ctab(p)


# -- fsaverage and flatmaps -----------------------------------------------------------------
def test_fsaverage_subject(nsd):
    from core.data.surfaces import load_flat_mesh

    data = read_nsd_subject(nsd.root, SUBJ, space="fsaverage", sessions=[1, 2])
    lh = np.flatnonzero(nsd.surface_general["lh"] == 1)
    rh = np.flatnonzero(nsd.surface_general["rh"] == 1)
    g = data.targets.geometry
    assert g.surface == "nilearn:fsaverage"
    np.testing.assert_array_equal(g.vertex, np.concatenate([lh, rh]))
    np.testing.assert_array_equal(g.hemi, np.r_[np.zeros(lh.size), np.ones(rh.size)])
    # one right-hemisphere vertex by hand
    v = rh[0]
    per_image: dict[int, list[float]] = {}
    for s in (1, 2):
        raw = nsd.surface_betas[(SUBJ, s, "rh")][v].astype(np.float64)
        z = (raw - raw.mean()) / raw.std()
        for img, val in zip(nsd.trial_ids(SUBJ, s), z, strict=True):
            per_image.setdefault(int(img), []).append(val)
    img = next(k for k, vals in per_image.items() if len(vals) == 2)
    row = data.rows_for([img])[0]
    assert data.responses[row, lh.size] == pytest.approx(np.mean(per_image[img]), abs=1e-5)
    np.testing.assert_array_equal(
        data.targets.roi_families["streams"].labels,
        np.concatenate(
            [nsd.surface_rois["lh"]["streams"][lh], nsd.surface_rois["rh"]["streams"][rh]]
        ),
    )
    np.testing.assert_allclose(
        data.targets.ncsnr,
        np.concatenate([nsd.surface_ncsnr[(SUBJ, "lh")][lh], nsd.surface_ncsnr[(SUBJ, "rh")][rh]]),
    )
    mesh = load_flat_mesh(g.surface, "rh")
    assert mesh.n_vertices == 163842 and mesh.faces.max() < 10242
    assert np.isfinite(mesh.coords[g.vertex[g.hemi == 1]]).all()


def test_freesurfer_flat_patch_loader(tmp_path):
    from core.data.fsaverage import fsaverage_surface_id, read_patch
    from core.data.surfaces import load_flat_mesh

    truth = write_flat_surfaces(tmp_path / "surf", n_vertices=12)
    sid = fsaverage_surface_id(tmp_path / "surf")
    assert sid.startswith("fsaverage:")
    mesh = load_flat_mesh(sid, "lh")
    np.testing.assert_allclose(mesh.coords[:11], truth["lh"]["flat"][:, :2])
    assert np.isnan(mesh.coords[11]).all()  # the cut vertex
    assert (mesh.faces != 11).all() and len(mesh.faces) == 9  # faces touching it are dropped
    np.testing.assert_allclose(mesh.inflated, truth["lh"]["inflated"], atol=1e-5)
    vertices, _ = read_patch(tmp_path / "surf/lh.full.flat.patch.3d")
    assert vertices[0] == 0  # border vertex: negative 1-based number
    patch = tmp_path / "surf/rh.full.flat.patch.3d"
    patch.write_bytes(patch.read_bytes()[:-7])
    with pytest.raises(DatasetError, match="rh.full.flat.patch.3d.*truncated"):
        load_flat_mesh(sid, "rh")
    assert fsaverage_surface_id(tmp_path / "nowhere") == "nilearn:fsaverage"


# -- stimuli --------------------------------------------------------------------------------
def test_stimuli_lazy_reads(nsd):
    ds = open_nsd("nsd-stim", nsd.root, cache=False)
    img_id, pixels = next(iter(nsd.images.items()))
    assert img_id in set(ds.stimuli.ids.tolist())
    img = ds.stimuli.load_image(img_id)
    assert img.size == (425, 425) and img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(img), pixels)
    attrs = ds.stimuli.attributes()
    assert attrs.loc[img_id, "cocoId"] == img_id + 100000
    with pytest.raises(DatasetError, match="outside"):
        ds.stimuli.load_image(73000)


# -- cache ----------------------------------------------------------------------------------
def test_first_load_writes_cache_then_reads_it(nsd, monkeypatch):
    import core.data.nsd as nsd_module

    first = open_nsd("nsd-cache", nsd.root, sessions=[1]).subject(SUBJ)

    def boom(*args, **kwargs):
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(nsd_module, "read_nsd_subject", boom)
    again = open_nsd("nsd-cache", nsd.root, sessions=[1]).subject(SUBJ)
    np.testing.assert_array_equal(again.responses, first.responses)
    np.testing.assert_array_equal(again.n_repeats, first.n_repeats)
    np.testing.assert_array_equal(again.targets.ncsnr, first.targets.ncsnr)
    assert again.targets.roi_families["floc-places"].names == FAMILIES["floc-places"]
    with pytest.raises(AssertionError, match="cache"):  # other options -> another entry
        open_nsd("nsd-cache", nsd.root, sessions=[1, 2]).subject(SUBJ)


# -- wrong, truncated, missing files --------------------------------------------------------
def test_truncated_nifti_session(nsd_copy):
    layout = NsdLayout(nsd_copy)
    path = layout.volume_betas(SUBJ, 2)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match="betas_session02.nii.gz"):
        read_nsd_subject(nsd_copy, SUBJ)
    report = validate_nsd(nsd_copy)
    bad = [c for c in report.checks if c.path.endswith("betas_session02.nii.gz") and SUBJ in c.path]
    assert bad[0].status == INVALID and "(X, Y, Z, 750)" in bad[0].expected
    assert not report.ok


def test_wrong_shape_roi_and_betas(nsd_copy):
    import nibabel as nib

    layout = NsdLayout(nsd_copy)
    nib.save(
        nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)),
        layout.volume_roi(SUBJ, "floc-faces"),
    )
    # an optional ROI file on another grid is skipped with a warning, not fatal
    with pytest.warns(
        UserWarning,
        match=r"floc-faces.nii.gz: skipped \(expected floc-faces ROI labels of shape \(5, 4, 3\)",
    ):
        data = read_nsd_subject(nsd_copy, SUBJ, sessions=[1])
    assert "floc-faces" not in data.targets.roi_families
    assert "floc-places" in data.targets.roi_families
    body = gzip.compress(b"not a nifti")
    layout.volume_betas(SUBJ, 1).write_bytes(body)
    with pytest.raises(DatasetError, match="betas_session01.nii.gz"):
        validate_nsd(nsd_copy).raise_if_failed()


def test_truncated_hdf5_session(nsd_copy):
    layout = NsdLayout(nsd_copy)
    path = layout.volume_betas(SUBJ, 1, "hdf5")
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="betas_session01.hdf5"):
        read_nsd_subject(nsd_copy, SUBJ, fmt="hdf5")


def test_missing_nsdgeneral_and_expdesign(nsd_copy):
    layout = NsdLayout(nsd_copy)
    layout.volume_roi(SUBJ, "nsdgeneral").unlink()
    with pytest.raises(DatasetError, match="nsdgeneral.nii.gz: expected nsdgeneral labels"):
        read_nsd_subject(nsd_copy, SUBJ)
    layout.expdesign.unlink()
    layout.stim_info.unlink()
    report = validate_nsd(nsd_copy)
    by_path = {c.path: c for c in report.checks}
    assert by_path["nsddata/experiments/nsd/nsd_expdesign.mat"].status == MISSING
    assert by_path["nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz"].status == MISSING
    assert by_path["nsddata/experiments/nsd/nsd_stim_info_merged.csv"].status == "optional-missing"
    assert by_path["nsddata/ppdata/subj02/func1pt8mm/roi/nsdgeneral.nii.gz"].status == OK
    with pytest.raises(DatasetError, match="nsd_expdesign.mat"):
        open_nsd("broken", nsd_copy)


# -- validation and CLI ---------------------------------------------------------------------
def test_validation_report_of_a_good_folder(nsd):
    report = validate_nsd(nsd.root)
    assert report.ok
    frame = report.to_frame()
    assert list(frame.columns) == ["path", "status", "required", "expected", "found"]
    paths = set(frame["path"])
    assert "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5" in paths
    assert sum("betas_session" in p for p in paths) == 6  # 2 subjects x 3 sessions
    assert report.summary["subj01 sessions"] == "3 of 40 sessions"
    fs = validate_nsd(nsd.root, space="fsaverage")
    assert fs.ok and fs.summary["subjects"] == "subj01"


def test_check_prints_shapes_as_plain_ints(nsd):
    text = validate_nsd(nsd.root, space="fsaverage").format_text()
    assert "np.int" not in text
    assert "found:    (162, 1, 1, 750) float32" in text
    text = validate_nsd(nsd.root, fmt="hdf5").format_text()
    assert "np.int" not in text and "/betas (750, 3, 4, 5)" in text


def test_cli_add_check_list(nsd, nsd_copy, capsys):
    from core.data.registry import configured, open_dataset
    from core.pipeline.cli import main

    assert (
        main(["datasets", "add", "nsd", str(nsd.root), "--name", "nsdfx", "--space", "fsaverage"])
        == 0
    )
    assert configured()["nsdfx"]["kind"] == "nsd"
    ds = open_dataset("nsdfx", subjects=[SUBJ], sessions=[1], cache=False)
    assert ds.metadata["space"] == "fsaverage"
    assert main(["datasets", "list"]) == 0
    assert "nsdfx" in capsys.readouterr().out
    NsdLayout(nsd_copy).volume_roi(SUBJ, "nsdgeneral").unlink()
    assert main(["datasets", "add", "nsd", str(nsd_copy), "--name", "broken"]) == 1
    out = capsys.readouterr()
    assert "MISSING" in out.out and "nsdgeneral.nii.gz" in out.err
    assert "broken" not in configured()
    assert main(["datasets", "check", "nsd", str(nsd.root)]) == 0
