"""Algonauts 2023 reader against a tiny folder in the challenge's layout (npy, png names, masks)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from fixtures_nsd import FAMILIES, write_algonauts, write_nsd

from core.data.algonauts import open_algonauts, validate_algonauts
from core.data.dataset import DatasetError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("algonauts")
    nsd = write_nsd(
        base / "nsd", subjects=("subj01", "subj02"), fsaverage_subjects=("subj01", "subj02")
    )
    shared = np.sort(nsd.sharedix - 1)[:10]
    train, test = {}, {}
    for k, s in enumerate(("subj01", "subj02")):
        own = nsd.subjectim[k, 1000:] - 1
        # rows deliberately not sorted by id: row order comes from the file names
        train[s] = np.concatenate([own[: 20 + 5 * k][::-1], shared])
        test[s] = own[100:104]
    alg = write_algonauts(base / "alg", train, test)
    return nsd, alg


def test_ids_rows_and_responses(world):
    _, alg = world
    ds = open_algonauts("alg-a", alg.root, cache=False)
    data = ds.subject("subj01")
    np.testing.assert_array_equal(data.stimulus_ids, alg.train_ids["subj01"])
    expected = np.hstack([alg.fmri[("subj01", "lh")], alg.fmri[("subj01", "rh")]])
    np.testing.assert_array_equal(data.responses, expected)
    assert data.responses.dtype == np.float32
    assert set(ds.stimuli.ids.tolist()) >= set(alg.test_ids["subj02"].tolist())
    img = ds.stimuli.load_image(int(alg.train_ids["subj01"][0]))
    assert img.mode == "RGB" and np.asarray(img)[0, 0, 0] == alg.train_ids["subj01"][0] % 256


def test_split_from_intersection_without_nsd(world):
    nsd, alg = world
    ds = open_algonauts("alg-b", alg.root, cache=False)
    data = ds.subject("subj02")
    shared = np.sort(nsd.sharedix - 1)[:10]
    np.testing.assert_array_equal(np.sort(data.test_ids), shared)
    assert data.is_test.sum() == 10 and (~data.is_test).sum() == 25
    assert data.targets.ncsnr is None and data.noise_ceiling() is None
    assert "unavailable" in ds.metadata["noise_ceiling"]


def test_one_subject_without_nsd_cannot_rebuild_split(world, tmp_path):
    _, alg = world
    shutil.copytree(alg.root / "subj01", tmp_path / "subj01")
    with pytest.raises(DatasetError, match="NSD root"):
        open_algonauts("alg-c", tmp_path, cache=False)
    assert not validate_algonauts(tmp_path).ok


def test_with_nsd_split_counts_and_noise_ceiling(world):
    nsd, alg = world
    ds = open_algonauts("alg-d", alg.root, nsd_root=nsd.root, cache=False)
    data = ds.subject("subj01")
    np.testing.assert_array_equal(data.is_test, np.isin(data.stimulus_ids, nsd.sharedix - 1))
    # repetition counts: NSD trials of each image in sessions 1..37 (the 3 last sessions held out)
    trials = np.concatenate([nsd.trial_ids("subj01", s) for s in range(1, 38)])
    expected = [max(int((trials == i).sum()), 1) for i in data.stimulus_ids]
    assert data.n_repeats.tolist() == expected
    lh = np.flatnonzero(alg.all_vertices[("subj01", "lh")])
    rh = np.flatnonzero(alg.all_vertices[("subj01", "rh")])
    ncsnr = np.concatenate(
        [nsd.surface_ncsnr[("subj01", "lh")][lh], nsd.surface_ncsnr[("subj01", "rh")][rh]]
    )
    np.testing.assert_allclose(data.targets.ncsnr, ncsnr)
    rows = np.flatnonzero(data.is_test)
    n = data.n_repeats[rows].astype(float)
    inv = np.mean(1.0 / n)
    np.testing.assert_allclose(data.noise_ceiling(), ncsnr**2 / (ncsnr**2 + inv), rtol=1e-5)
    assert "ncsnr" in ds.metadata["noise_ceiling"]


def test_roi_masks_both_spaces_and_geometry(world):
    _, alg = world
    lh = np.flatnonzero(alg.all_vertices[("subj01", "lh")])
    rh = np.flatnonzero(alg.all_vertices[("subj01", "rh")])
    for space in ("challenge", "fsaverage"):
        data = open_algonauts(f"alg-{space}", alg.root, roi_space=space, cache=False).subject(
            "subj01"
        )
        t = data.targets
        assert set(t.roi_families) == set(FAMILIES)
        expected = np.concatenate(
            [alg.challenge_rois[("subj01", h, "floc-bodies")] for h in ("lh", "rh")]
        ).astype(np.int16)
        np.testing.assert_array_equal(t.roi_families["floc-bodies"].labels, expected)
        np.testing.assert_array_equal(t.roi_mask("EBA"), expected == 1)
        assert t.roi_families["floc-bodies"].names == FAMILIES["floc-bodies"]
    g = t.geometry
    assert g.surface == "nilearn:fsaverage"
    np.testing.assert_array_equal(g.vertex, np.concatenate([lh, rh]))
    assert g.hemi.tolist() == [0] * lh.size + [1] * rh.size


def test_cache_roundtrip(world, monkeypatch):
    import core.data.algonauts as module

    nsd, alg = world
    first = open_algonauts("alg-cache", alg.root, nsd_root=nsd.root).subject("subj02")
    monkeypatch.setattr(module, "read_algonauts_subject", lambda *a, **k: 1 / 0)
    again = open_algonauts("alg-cache", alg.root, nsd_root=nsd.root).subject("subj02")
    np.testing.assert_array_equal(again.responses, first.responses)
    np.testing.assert_array_equal(again.is_test, first.is_test)
    np.testing.assert_array_equal(again.targets.geometry.vertex, first.targets.geometry.vertex)


def test_bad_files_name_the_file(world, tmp_path):
    _, alg = world
    root = tmp_path / "alg"
    shutil.copytree(alg.root, root)
    fmri = root / "subj01/training_split/training_fmri/rh_training_fmri.npy"
    np.save(fmri, np.zeros((3, 2), np.float32))
    with pytest.raises(
        DatasetError, match=r"rh_training_fmri.npy: expected shape \(30 training images"
    ):
        open_algonauts("alg-bad", root, cache=False).subject("subj01")
    fmri.write_bytes(fmri.read_bytes()[:100])
    with pytest.raises(DatasetError, match="rh_training_fmri.npy"):
        open_algonauts("alg-bad", root, cache=False).subject("subj01")
    report = validate_algonauts(root)
    assert not report.ok
    assert any(
        c.path.endswith("rh_training_fmri.npy") and c.status == "invalid" for c in report.checks
    )
    images = root / "subj02/training_split/training_images"
    next(images.glob("train-0003_*.png")).unlink()
    with pytest.raises(DatasetError, match=r"training_images: expected rows.*missing rows \[3\]"):
        open_algonauts("alg-bad", root, cache=False)
    (images / "picture.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="picture.png"):
        open_algonauts("alg-bad", root, cache=False)


def test_validation_and_cli(world, capsys):
    from core.data.registry import open_dataset
    from core.pipeline.cli import main

    nsd, alg = world
    report = validate_algonauts(alg.root, nsd_root=nsd.root)
    assert report.ok, report.format_text(only_problems=True)
    mapping = [c for c in report.checks if "mapping_" in c.path]
    assert len(mapping) == 12 and all("not loaded" in c.expected for c in mapping)
    code = main(
        [
            "datasets",
            "add",
            "algonauts",
            str(alg.root),
            "--name",
            "algfx",
            "--nsd-root",
            str(nsd.root),
        ]
    )
    assert code == 0
    ds = open_dataset("algfx", cache=False)
    assert ds.metadata["nsd_root"] == str(nsd.root.resolve())
    assert ds.subject("subj01").targets.ncsnr is not None
