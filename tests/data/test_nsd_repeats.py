"""NSD's reader keeps the shared test images' single trials (``SubjectData.test_repeats``, the
demo's layout) in both spaces and formats and through the compact cache, their mean is the
averaged response, and the RSA noise-ceiling analog gives a number on NSD (not on Algonauts)."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_nsd import write_algonauts, write_nsd

from core.data.nsd import average_repetitions, open_nsd, read_nsd_subject
from core.results import rsa_ceiling as rc

SUBJ = "subj01"


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    return write_nsd(tmp_path_factory.mktemp("nsd-repeats") / "nsd")


def _check_layout(data):
    """The demo's layout: (max repeats, n_test, n_targets) float32 in test-row order, image i's
    trials in its first n_repeats slots, NaN after; the mean of the slots is the response."""
    repeats = data.test_repeat_responses()
    test = data.split()[1]
    counts = data.n_repeats[test]
    assert repeats.dtype == np.float32
    assert repeats.shape == (counts.max(), test.size, data.n_targets)
    filled = ~np.isnan(repeats).all(axis=2)  # (n_rep, n_test)
    np.testing.assert_array_equal(filled, np.arange(repeats.shape[0])[:, None] < counts[None, :])
    assert not np.isnan(repeats[filled]).any()
    full = counts == repeats.shape[0]
    assert full.sum() > 10 and (counts < repeats.shape[0]).any()  # the fixture mixes 3/2/1
    np.testing.assert_allclose(repeats[:, full].mean(0), data.responses[test[full]], atol=1e-5)
    np.testing.assert_allclose(np.nanmean(repeats, 0), data.responses[test], atol=1e-5)
    return repeats


def _by_hand(nsd, voxel, img, sessions=(1, 2, 3)):
    """One voxel's z-scored trials of one image, in session and trial order."""
    out = []
    for s in sessions:
        raw = nsd.volume_betas[(SUBJ, s)][tuple(voxel)].astype(np.float64) / 300.0
        z = (raw - raw.mean()) / raw.std()
        out += [v for i, v in zip(nsd.trial_ids(SUBJ, s), z, strict=True) if i == img]
    return np.array(out)


@pytest.mark.parametrize("fmt", ["nifti", "hdf5"])
def test_func1pt8mm_keeps_the_test_repeats_in_trial_order(nsd, fmt):
    data = read_nsd_subject(nsd.root, SUBJ, fmt=fmt)
    repeats = _check_layout(data)
    voxel = np.argwhere(nsd.general[SUBJ] == 1)[0]  # the first target
    test = data.split()[1]
    for j in (0, 1, 2, test.size - 1):
        expect = _by_hand(nsd, voxel, int(data.stimulus_ids[test[j]]))
        got = repeats[: expect.size, j, 0]
        np.testing.assert_allclose(got, expect, atol=1e-5)


def test_fsaverage_keeps_the_test_repeats(nsd):
    data = read_nsd_subject(nsd.root, SUBJ, space="fsaverage")
    _check_layout(data)


def test_the_averaged_responses_are_unchanged_by_keeping_repeats(rng):
    ids = [rng.integers(0, 20, 40), rng.integers(0, 20, 40)]
    betas = [rng.standard_normal((40, 7)).astype(np.float32) for _ in ids]
    plain = average_repetitions(ids, iter(betas), 7)
    kept = average_repetitions(ids, iter(betas), 7, keep_ids=np.arange(0, 20, 3))
    assert plain[3] is None
    for a, b in zip(plain[:3], kept[:3], strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit
    rows = np.flatnonzero(np.isin(plain[0], np.arange(0, 20, 3)))
    assert kept[3].shape == (plain[2][rows].max(), rows.size, 7)
    np.testing.assert_allclose(np.nanmean(kept[3], 0), plain[1][rows], atol=1e-6)


def test_the_cache_keeps_the_repeats(nsd):
    first = open_nsd("nsd-repeats", nsd.root, sessions=[1, 2]).subject(SUBJ)
    again = open_nsd("nsd-repeats", nsd.root, sessions=[1, 2]).subject(SUBJ)  # from the cache
    assert callable(again.test_repeats)  # read lazily from the cache entry
    np.testing.assert_array_equal(again.test_repeat_responses(), first.test_repeat_responses())


def test_rsa_ceiling_gives_a_number_on_nsd(nsd):
    ds = open_nsd("nsd-rsa", nsd.root, subjects=[SUBJ])
    assert rc.unavailable_reason(ds) == ""
    c = rc.rdm_ceiling(ds, SUBJ)
    assert c is not None and not c.empty
    assert np.isfinite(c["ceiling"]).any()
    assert (c["n_images"] > 10).all()


def test_algonauts_still_reports_the_reason(nsd, tmp_path):
    shared = np.sort(nsd.sharedix - 1)[:10]
    own = nsd.subjectim[0, 1000:] - 1
    alg = write_algonauts(tmp_path / "alg", {SUBJ: np.concatenate([own[:20], shared])},
                          {SUBJ: own[100:104]})  # fmt: skip
    from core.data.algonauts import open_algonauts

    ds = open_algonauts("alg-repeats", alg.root, nsd_root=nsd.root, cache=False)
    assert ds.subject(SUBJ).test_repeat_responses() is None
    assert "repeat-averaged" in rc.unavailable_reason(ds)


def test_an_entry_cached_before_the_repeats_is_not_read(nsd, monkeypatch):
    import core.data.nsd as nsd_module

    key = open_nsd("nsd-key", nsd.root, cache=True).subject_key(SUBJ)
    monkeypatch.setattr(nsd_module, "NSD_READER_VERSION", 1)  # the reader that kept no repeats
    assert open_nsd("nsd-key", nsd.root, cache=True).subject_key(SUBJ) != key
