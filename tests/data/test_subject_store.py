"""The one on-disk layout of a subject's data."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import DatasetError, RoiFamily, SubjectData, TargetGeometry, TargetSet
from core.data.store import load_subject, save_subject


def _subject(rng, n_img=12, n_t=7):
    labels = np.array([0, 1, 1, 2, 0, 2, -1], dtype=np.int16)
    targets = TargetSet(
        roi_families={"floc-faces": RoiFamily("floc-faces", labels, {1: "OFA", 2: "FFA-1"})},
        general_mask=np.array([1, 1, 0, 1, 1, 1, 0], bool),
        ncsnr=rng.random(n_t).astype(np.float32),
        geometry=TargetGeometry(
            "pycortex:S1", np.zeros(n_t, np.int8), np.arange(n_t, dtype=np.int32)
        ),
    )
    return SubjectData(
        subject="subj01",
        stimulus_ids=np.arange(n_img, dtype=np.int64) * 5,
        responses=rng.standard_normal((n_img, n_t)).astype(np.float32),
        n_repeats=np.full(n_img, 3, np.int16),
        is_test=np.arange(n_img) >= 9,
        targets=targets,
    )


@pytest.mark.parametrize(
    ("encoding", "atol"), [("float32", 0), ("float16", 2e-3), ("int8-scaled", 0.03)]
)
def test_round_trip(tmp_path, rng, encoding, atol):
    data = _subject(rng)
    save_subject(tmp_path / "s", data, encoding=encoding)
    back = load_subject(tmp_path / "s")
    assert back.responses.dtype == np.float32
    np.testing.assert_allclose(back.responses, data.responses, atol=atol)
    assert np.array_equal(back.stimulus_ids, data.stimulus_ids)
    assert np.array_equal(back.targets.roi_mask("FFA-1"), data.targets.roi_mask("FFA-1"))
    assert back.targets.geometry.surface == "pycortex:S1"


def test_roi_mask_requires_general_mask(rng):
    t = _subject(rng).targets
    assert t.roi_mask("OFA").tolist() == [False, True, False, False, False, False, False]
    assert t.roi_mask("OFA", within_general=False).sum() == 2


def test_unknown_roi_lists_known_ones(rng):
    with pytest.raises(DatasetError, match="unknown ROI 'V9'.*OFA"):
        _subject(rng).targets.roi_mask("V9")


def test_mismatched_shapes_are_rejected(rng):
    data = _subject(rng)
    with pytest.raises(DatasetError, match="response rows"):
        SubjectData(
            "s",
            data.stimulus_ids[:-1],
            data.responses,
            data.n_repeats[:-1],
            data.is_test[:-1],
            data.targets,
        )


def test_rows_for_unknown_ids_is_an_error(rng):
    with pytest.raises(DatasetError, match="not seen"):
        _subject(rng).rows_for(np.array([1]))


def test_target_set_digest_changes_with_masks(rng):
    a = _subject(rng).targets
    b = TargetSet(a.roi_families, ~a.general_mask, a.ncsnr, a.geometry)
    assert a.digest() != b.digest()
    assert (
        a.digest() == _subject(np.random.default_rng(1)).targets.digest()
    )  # ncsnr is not part of it


@pytest.mark.parametrize("encoding", ["float32", "int8-scaled"])
def test_test_repeats_round_trip_with_missing_slots_read_back_as_nan(tmp_path, rng, encoding):
    data = _subject(rng)
    data.n_repeats[9:] = [3, 2, 3]  # the second test image has 2 repeats
    repeats = rng.standard_normal((3, 3, data.n_targets)).astype(np.float32)
    repeats[2, 1] = np.nan
    data.test_repeats = repeats
    save_subject(tmp_path / "s", data, encoding=encoding)
    back = load_subject(tmp_path / "s")
    assert callable(back.test_repeats)  # read on first use, not with the responses
    got = back.test_repeat_responses()
    assert got.shape == (3, 3, data.n_targets)
    assert np.isnan(got[2, 1]).all() and np.isfinite(np.delete(got.reshape(9, -1), 7, 0)).all()
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(repeats), atol=0.03)


def test_a_subject_without_repeats_says_so(tmp_path, rng):
    save_subject(tmp_path / "s", _subject(rng))
    assert load_subject(tmp_path / "s").test_repeat_responses() is None


def test_repeats_that_do_not_match_the_test_rows_are_rejected(rng):
    data = _subject(rng)
    data.test_repeats = np.zeros((3, 4, data.n_targets), np.float32)  # 3 test rows, not 4
    with pytest.raises(DatasetError, match="test repeats"):
        data.test_repeat_responses()


def test_two_first_loads_of_one_subject_build_it_once(rng):
    """The compact cache is written under a lock: a second load asking while the first is
    building waits and reads the first's entry instead of building (and writing) it again."""
    import threading
    import time

    from core.data.nsd_cache import cached_subject

    data = _subject(rng)
    builds = []

    def build():
        builds.append(1)
        time.sleep(0.5)
        return data

    out = [None, None]

    def load(i):
        out[i] = cached_subject("lock-test", "subj01", [], {"k": 1}, build)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    np.testing.assert_array_equal(out[0].responses, out[1].responses)
