"""The road to real data: ``datasets add --subjects/--sessions``, session ranges and gaps, optional
files skipped alike by validator and loader, ``datasets remove``/``list``, the NSD root hint.

Every test runs on the tiny NSD/Algonauts folders of :mod:`fixtures_nsd` (the exact on-disk
formats): subj01 and subj02 with sessions 1-3 in func1pt8mm, subj01 in fsaverage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures_nsd import write_algonauts, write_nsd

from core.data.dataset import DatasetError
from core.data.nsd import open_nsd, read_nsd_subject
from core.data.nsd_layout import NsdLayout, check_sessions, parse_sessions
from core.data.nsd_validate import OK, SKIPPED, validate_nsd
from core.pipeline.cli import main

SUBJ = "subj01"


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    return write_nsd(tmp_path_factory.mktemp("nsd-road") / "nsd")


@pytest.fixture
def nsd_copy(nsd, tmp_path):
    dst = tmp_path / "nsd"
    shutil.copytree(nsd.root, dst)
    return dst


def _images(nsd, subject, sessions):
    return np.unique(np.concatenate([nsd.trial_ids(subject, s) for s in sessions]))


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# -- --subjects / --sessions ----------------------------------------------------------------
def test_parse_sessions_ranges():
    assert parse_sessions(["1-5", "7"]) == [1, 2, 3, 4, 5, 7]
    assert parse_sessions(["1-3,9", "2"]) == [1, 2, 3, 9]
    for bad in (["5-1"], ["x"], ["1-"], [""]):
        with pytest.raises(ValueError):
            parse_sessions(bad)


def test_add_with_subjects_and_sessions_then_open(nsd, capsys):
    from core.data.nsd_cache import dataset_options
    from core.data.registry import open_dataset
    from core.pipeline.grid import grid_image_ids

    rc = main(
        ["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-sel"]
        + ["--subjects", "subj01", "--sessions", "1-2"]
    )
    assert rc == 0, capsys.readouterr().err
    assert dataset_options("nsd-sel")["subjects"] == ["subj01"]
    assert dataset_options("nsd-sel")["sessions"] == [1, 2]
    ds = open_dataset("nsd-sel")
    assert ds.subject_names == ["subj01"]  # subj02 has betas too, but was not chosen
    expected = _images(nsd, SUBJ, (1, 2))
    assert expected.size < _images(nsd, SUBJ, (1, 2, 3)).size  # session 3 adds images
    np.testing.assert_array_equal(ds.stimuli.ids, expected)
    data = ds.subject(SUBJ)
    np.testing.assert_array_equal(data.stimulus_ids, expected)
    assert int(data.n_repeats.sum()) == 2 * 750  # the trials of two sessions, no more
    np.testing.assert_array_equal(grid_image_ids(ds, ds.subject_names), expected)
    assert ds.metadata["sessions"] == [1, 2]
    # an explicit argument still overrides the saved choice
    wider = open_dataset("nsd-sel", subjects=["subj01", "subj02"], sessions=[1, 2, 3], cache=False)
    assert wider.subject_names == ["subj01", "subj02"]
    assert set(_images(nsd, "subj02", (1, 2, 3))) <= set(wider.stimuli.ids.tolist())


def test_open_nsd_stimulus_set_follows_sessions(nsd):
    ds = open_nsd("nsd-sess3", nsd.root, sessions=[3], cache=False)
    expected = np.union1d(_images(nsd, "subj01", (3,)), _images(nsd, "subj02", (3,)))
    np.testing.assert_array_equal(ds.stimuli.ids, expected)
    np.testing.assert_array_equal(ds.subject("subj02").stimulus_ids, _images(nsd, "subj02", (3,)))


@pytest.mark.parametrize("session", ["0", "41"])
def test_sessions_out_of_range_are_a_range_error(nsd, session, capsys):
    rc = main(["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-range"])  # baseline ok
    assert rc == 0
    capsys.readouterr()
    rc = main(["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-bad", "--sessions", session])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"sessions are 1-40 for subj01; asked for {session}" in err
    assert "not on disk" not in err and "no file" not in err
    for call in (
        lambda: open_nsd("nsd-range", nsd.root, sessions=[int(session)], cache=False),
        lambda: read_nsd_subject(nsd.root, SUBJ, sessions=[1, int(session)]),
    ):
        with pytest.raises(
            DatasetError, match=f"sessions are 1-40 for subj01; asked for {session}"
        ):
            call()


def test_session_range_per_subject():
    assert check_sessions("subj04", [30, 1]) == [1, 30]
    with pytest.raises(DatasetError, match="sessions are 1-30 for subj04; asked for 31-32"):
        check_sessions("subj04", [1, 31, 32])
    with pytest.raises(DatasetError, match="sessions are 1-32 for subj06; asked for 33"):
        check_sessions("subj06", [33])
    check_sessions("subj07", range(1, 41))


def test_requested_session_not_on_disk_refused_at_add(nsd, capsys):
    rc = main(["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-5", "--sessions", "1", "5"])
    out = capsys.readouterr()
    assert rc == 1 and "betas_session05.nii.gz" in out.err
    from core.data.registry import configured

    assert "nsd-5" not in configured()


def test_gap_between_sessions_warns_at_add_and_at_load(nsd, nsd_copy, capsys):
    NsdLayout(nsd_copy).volume_betas(SUBJ, 2).unlink()  # nifti sessions of subj01: 1, 3
    report = validate_nsd(nsd_copy)
    assert report.ok
    assert any("subj01: session(s) 2 missing" in w for w in report.warnings)
    assert not any("subj02" in w for w in report.warnings)
    assert main(["datasets", "add", "nsd", str(nsd_copy), "--name", "nsd-gap"]) == 0
    assert "warning: subj01: session(s) 2 missing between the sessions on disk (1, 3)" in (
        capsys.readouterr().out
    )
    with pytest.warns(UserWarning, match=r"subj01: session\(s\) 2 missing"):
        ds = open_nsd("nsd-gap", nsd_copy, cache=False)
    np.testing.assert_array_equal(ds.subject(SUBJ).stimulus_ids, _images(nsd, SUBJ, (1, 3)))


# -- optional files: skipped by the validator and the loaders alike --------------------------
def test_wrong_shape_optional_volume_files_skipped_by_validator_and_loader(nsd_copy):
    import nibabel as nib

    layout = NsdLayout(nsd_copy)
    faces = layout.volume_roi(SUBJ, "floc-faces")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), faces)
    ncsnr = layout.volume_ncsnr(SUBJ)
    nib.save(nib.Nifti1Image(np.ones((5, 4, 2), np.float32), np.eye(4)), ncsnr)
    ctab = layout.roi_ctab(SUBJ, "floc-places")
    ctab.write_text("one OPA\n")
    report = validate_nsd(nsd_copy)
    by_path = {c.path: c for c in report.checks}
    for path in (faces, ncsnr, ctab):
        check = by_path[str(path.relative_to(nsd_copy))]
        assert check.status == SKIPPED and not check.required, check
        assert "skipped" in check.found
    assert by_path[str(layout.volume_roi(SUBJ, "floc-bodies").relative_to(nsd_copy))].status == OK
    assert report.ok
    assert (
        "[skipped] nsddata/ppdata/subj01/func1pt8mm/roi/floc-faces.nii.gz" in report.format_text()
    )
    with pytest.warns(UserWarning) as caught:
        data = read_nsd_subject(nsd_copy, SUBJ, sessions=[1])
    messages = [str(w.message) for w in caught]
    assert any("floc-faces.nii.gz: skipped" in m and "(5, 4, 3)" in m for m in messages)
    assert any("ncsnr.nii.gz: skipped" in m for m in messages)
    assert any("floc-places.mgz.ctab: skipped" in m for m in messages)
    assert "floc-faces" not in data.targets.roi_families
    assert data.targets.ncsnr is None
    assert data.targets.roi_families["floc-places"].names == {1: "OPA", 2: "PPA", 3: "RSC"}
    other = read_nsd_subject(nsd_copy, "subj02", sessions=[1])  # its own files are fine
    assert "floc-faces" in other.targets.roi_families and other.targets.ncsnr is not None


def test_wrong_shape_optional_surface_files_skipped(nsd_copy):
    import nibabel as nib

    layout = NsdLayout(nsd_copy)
    path = layout.surface_roi("fsaverage", "streams", "rh")
    nib.save(nib.MGHImage(np.zeros((7, 1, 1), np.int32), np.eye(4)), path)
    report = validate_nsd(nsd_copy, space="fsaverage")
    check = {c.path: c for c in report.checks}[str(path.relative_to(nsd_copy))]
    assert check.status == SKIPPED and report.ok
    with pytest.warns(UserWarning, match="rh.streams.mgz: skipped"):
        data = read_nsd_subject(nsd_copy, SUBJ, space="fsaverage", sessions=[1])
    assert "streams" not in data.targets.roi_families
    assert "floc-faces" in data.targets.roi_families


def test_wrong_shape_optional_algonauts_files_skipped(nsd, tmp_path):
    from core.data.algonauts import images_dir, open_algonauts, roi_path, validate_algonauts

    train = {s: nsd.subjectim[k, 1000:1010] - 1 for k, s in enumerate(("subj01", "subj02"))}
    test = {s: nsd.subjectim[k, 2000:2003] - 1 for k, s in enumerate(("subj01", "subj02"))}
    for s in train:  # a few shared images, for the split rebuilt from the folder
        train[s] = np.concatenate([train[s], np.sort(nsd.sharedix - 1)[:4]])
    alg = write_algonauts(tmp_path / "alg", train, test)
    bad_roi = roi_path(alg.root, SUBJ, "lh", "floc-faces", "challenge")
    np.save(bad_roi, np.zeros(3, np.float32))
    bad_test = images_dir(alg.root, SUBJ, "test") / "not-an-nsd-name.png"
    shutil.copy(next(images_dir(alg.root, SUBJ, "test").iterdir()), bad_test)
    report = validate_algonauts(alg.root)
    by_path = {c.path: c for c in report.checks}
    assert by_path[str(bad_roi.relative_to(alg.root))].status == SKIPPED
    assert by_path[str(images_dir(alg.root, SUBJ, "test").relative_to(alg.root))].status == SKIPPED
    assert report.ok
    with pytest.warns(UserWarning) as caught:
        ds = open_algonauts("alg-skip", alg.root, cache=False)
        data = ds.subject(SUBJ)
    messages = [str(w.message) for w in caught]
    assert any("floc-faces_challenge_space.npy: skipped" in m for m in messages)
    assert any("test_images: skipped" in m for m in messages)
    assert "floc-faces" not in data.targets.roi_families
    assert "floc-bodies" in data.targets.roi_families
    np.testing.assert_array_equal(data.stimulus_ids, alg.train_ids[SUBJ])


def test_algonauts_add_saves_subjects_and_refuses_sessions(nsd, tmp_path, capsys):
    from core.data.registry import open_dataset

    train = {s: nsd.subjectim[k, 1000:1008] - 1 for k, s in enumerate(("subj01", "subj02"))}
    test = {s: nsd.subjectim[k, 2000:2002] - 1 for k, s in enumerate(("subj01", "subj02"))}
    for s in train:
        train[s] = np.concatenate([train[s], np.sort(nsd.sharedix - 1)[:3]])
    alg = write_algonauts(tmp_path / "alg", train, test)
    base = ["datasets", "add", "algonauts", str(alg.root), "--name", "alg-sel"]
    assert main([*base, "--sessions", "1-3"]) == 1
    assert "NSD only" in capsys.readouterr().err
    assert main([*base, "--subjects", "2"]) == 0
    assert open_dataset("alg-sel", cache=False).subject_names == ["subj02"]


# -- remove and list ------------------------------------------------------------------------
def test_remove_keeps_data_folder_and_purge_removes_cache(nsd_copy, capsys):
    from core.config import home
    from core.data.registry import configured, open_dataset

    before = _snapshot(nsd_copy)
    assert (
        main(["datasets", "add", "nsd", str(nsd_copy), "--name", "nsd-rm", "--sessions", "1"]) == 0
    )
    open_dataset("nsd-rm").subject(SUBJ)  # writes the compact cache
    cache = home() / "datasets" / "nsd-rm"
    assert (cache / "options.json").exists() and (cache / SUBJ).is_dir()
    assert main(["datasets", "remove", "nsd-rm"]) == 0
    assert "nsd-rm" not in configured()
    assert not (cache / "options.json").exists()
    assert (cache / SUBJ).is_dir()  # without --purge the cache stays
    assert _snapshot(nsd_copy) == before
    with pytest.raises(DatasetError, match="unknown dataset 'nsd-rm'"):
        open_dataset("nsd-rm")
    capsys.readouterr()
    assert main(["datasets", "remove", "nsd-rm"]) == 1
    assert "unknown dataset 'nsd-rm'" in capsys.readouterr().err

    assert main(["datasets", "add", "nsd", str(nsd_copy), "--name", "nsd-rm"]) == 0
    assert main(["datasets", "remove", "nsd-rm", "--purge"]) == 0
    assert not cache.exists()
    assert "nsd-rm" not in configured()
    assert _snapshot(nsd_copy) == before  # the data folder itself is never touched


def test_demo_cannot_be_removed(capsys):
    from core.data.registry import configured

    assert main(["datasets", "remove", "demo", "--purge"]) == 1
    assert "demo cannot be removed" in capsys.readouterr().err
    assert "demo" in configured()


def test_list_shows_kind_path_space_format_subjects_sessions(nsd, capsys):
    argv = ["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-ls", "--format", "hdf5"]
    assert main([*argv, "--subjects", "subj02", "--sessions", "1", "3"]) == 0
    assert (
        main(["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-fs", "--space", "fsaverage"])
        == 0
    )
    capsys.readouterr()
    assert main(["datasets", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header == ["NAME", "KIND", "SPACE", "FORMAT", "SUBJECTS", "SESSIONS", "PATH", "STATE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    row = rows["nsd-ls"]
    for text in ("nsd", "func1pt8mm", "hdf5", "subj02", "1, 3", str(nsd.root.resolve()), "ok"):
        assert text in row
    for col, text in zip(header, ("nsd-ls", "nsd", "func1pt8mm", "hdf5", "subj02"), strict=False):
        assert row[lines[0].index(col) :].startswith(text)
    assert "fsaverage" in rows["nsd-fs"] and "mgh" in rows["nsd-fs"]
    assert "all on disk" in rows["nsd-fs"]
    assert "demo" in rows and "embedded" in rows["demo"]


# -- the NSD root hint ----------------------------------------------------------------------
def test_parent_folder_gets_a_did_you_mean_hint(nsd, capsys):
    parent = nsd.root.parent
    assert main(["datasets", "add", "nsd", str(parent), "--name", "nsd-parent"]) == 1
    err = capsys.readouterr().err
    assert f"did you mean {nsd.root}?" in err
    with pytest.raises(DatasetError, match="did you mean"):
        open_nsd("nsd-parent", parent, cache=False)


def test_folder_without_nsd_folders_names_the_three(tmp_path, capsys):
    (tmp_path / "nsddata_betas").mkdir()
    assert main(["datasets", "add", "nsd", str(tmp_path), "--name", "nsd-empty"]) == 1
    err = capsys.readouterr().err
    assert "expected a folder holding nsddata/, nsddata_betas/, nsddata_stimuli/" in err
    assert "found nsddata_betas/" in err and "missing nsddata/, nsddata_stimuli/" in err
    assert "did you mean" not in err


# -- first load: what is still to read, and the command the app runs in the background --------
def test_pending_subjects_and_datasets_load(nsd, capsys):
    from core.data.nsd_cache import pending_subjects
    from core.data.registry import open_dataset, unregister

    assert main(["datasets", "add", "nsd", str(nsd.root), "--name", "nsd-load",
                 "--sessions", "1"]) == 0  # fmt: skip
    try:
        assert pending_subjects(open_dataset("nsd-load")) == ["subj01", "subj02"]
        capsys.readouterr()
        assert main(["datasets", "load", "nsd-load", "--subjects", "subj02"]) == 0
        assert "subj02: loaded and cached" in capsys.readouterr().out
        assert pending_subjects(open_dataset("nsd-load")) == ["subj01"]
        assert main(["datasets", "load", "nsd-load"]) == 0
        out = capsys.readouterr().out
        assert "first load of 1 subject(s): subj01" in out and "session 1/1 read" in out
        assert pending_subjects(open_dataset("nsd-load")) == []
        assert main(["datasets", "load", "nsd-load"]) == 0
        assert "cached already" in capsys.readouterr().out
    finally:
        unregister("nsd-load", purge=True)
    from core.data.dataset import Dataset

    simulated = Dataset("demo", "demo", True, None, ["subj01"], loader=None,
                        subject_keyer=lambda s: "k")  # fmt: skip
    assert pending_subjects(simulated) == []  # no compact cache: nothing to load first
