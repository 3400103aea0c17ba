"""The embedded demo world: determinism, shapes and splits, planted structure, bad input."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from core.data.dataset import DatasetError
from core.data.demo.build import build_demo
from core.data.demo.scenes import INSTRUCTION_IDS, draw_scene
from core.data.demo.store import load_truth, open_demo
from core.data.demo.subjects import PLANTED_DRIVERS, scene_features
from core.storage import ArtifactError


def _tree_digest(root):
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_identical_bytes(demo_small_root, tmp_path):
    again = tmp_path / "demo"
    build_demo(root=again, size="small", seed=0, progress=False)
    assert _tree_digest(again) == _tree_digest(demo_small_root)


def test_different_seed_gives_different_scenes():
    a = draw_scene(0, "stimuli", 3).image.tobytes()
    b = draw_scene(1, "stimuli", 3).image.tobytes()
    assert a != b


def test_training_stream_is_disjoint_from_stimuli():
    stim = {draw_scene(0, "stimuli", i).image.tobytes() for i in range(30)}
    train = {draw_scene(0, "train", i).image.tobytes() for i in range(30)}
    assert not stim & train


def test_small_build_sizes_and_flag(demo_small):
    assert demo_small.simulated is True
    assert "SIMULATED" in demo_small.metadata["description"]
    assert len(demo_small.stimuli.ids) == 300
    assert demo_small.subject_names == ["subj01", "subj02"]


def test_responses_shapes_dtype_and_repeats(demo_small):
    s = demo_small.subject("subj01")
    assert s.responses.dtype == np.float32
    assert s.responses.shape == (s.stimulus_ids.size, s.targets.n_targets)
    assert np.isfinite(s.responses).all()
    assert set(np.unique(s.n_repeats)) <= {1, 2, 3}
    assert (s.n_repeats[s.is_test] == 3).all()


def test_test_split_is_shared_by_all_subjects(demo_small):
    shared = demo_small.shared_test_ids()
    assert shared.size == 60
    for name in demo_small.subject_names:
        s = demo_small.subject(name)
        assert np.array_equal(np.sort(s.test_ids), shared)
        assert not np.intersect1d(s.train_ids, shared).size


def test_subjects_see_different_train_images(demo_small):
    a = demo_small.subject("subj01").train_ids
    b = demo_small.subject("subj02").train_ids
    assert not np.array_equal(a, b)


def test_every_instruction_has_a_reference_answer(demo_small):
    answers = demo_small.stimuli.answers()
    per_image = answers.groupby("stimulus_id")["instruction_id"].apply(set)
    assert all(v == set(INSTRUCTION_IDS) for v in per_image)
    assert (answers["answer"].str.len() > 0).all()


def test_dense_labels_cover_every_image(demo_small):
    labels = demo_small.stimuli.dense_labels()
    assert labels.shape == (300, 16, 16)
    assert labels.dtype == np.uint8


def test_images_load_lazily_as_rgb(demo_small):
    im = demo_small.stimuli.load_image(7)
    assert im.mode == "RGB" and im.size == (256, 256)


def test_roi_masks_are_non_empty_and_inside_general_mask(demo_small):
    t = demo_small.subject("subj01").targets
    assert set(PLANTED_DRIVERS) <= set(t.roi_names())
    for roi in PLANTED_DRIVERS:
        mask = t.roi_mask(roi)
        assert mask.sum() > 0, roi
        assert not (mask & ~t.general_mask).any()


def test_roi_mask_is_label_and_general_mask(demo_small):
    t = demo_small.subject("subj01").targets
    labelled = t.roi_mask("IPS", within_general=False)
    masked = t.roi_mask("IPS")
    assert masked.sum() < labelled.sum()  # the anterior part of IPS is outside the mask
    assert np.array_equal(masked, labelled & t.general_mask)


def test_estimated_ncsnr_recovers_planted_snr(demo_small, demo_small_root):
    est = demo_small.subject("subj01").targets.ncsnr
    planted = load_truth(demo_small_root, "subj01")["planted_ncsnr"]
    signal = planted > 0
    # tolerance: 3 repeats over ~270 images gives a sampling error of about 0.05 in ncsnr
    assert np.corrcoef(est[signal], planted[signal])[0, 1] > 0.9
    assert np.median(np.abs(est[signal] - planted[signal])) < 0.1
    assert np.median(est[~signal]) < 0.1


def test_planted_driver_of_each_roi_is_recoverable_from_ground_truth(demo_small):
    """A sanity check of the simulation: the planted feature group predicts each ROI best."""
    s = demo_small.subject("subj01")
    attrs = demo_small.stimuli.attributes().loc[s.stimulus_ids]
    low = demo_small.stimuli.low_level()[s.stimulus_ids]
    groups = scene_features(attrs, low)
    train, test = s.split()
    for roi, driver in PLANTED_DRIVERS.items():
        y = s.responses[:, s.targets.roi_mask(roi)]
        scores = {}
        for name, x in groups.items():
            x1 = np.hstack([x, np.ones((x.shape[0], 1))])
            w = np.linalg.solve(
                x1[train].T @ x1[train] + 1.0 * np.eye(x1.shape[1]), x1[train].T @ y[train]
            )
            pred = x1[test] @ w
            yc, pc = y[test] - y[test].mean(0), pred - pred.mean(0)
            r = (yc * pc).sum(0) / np.sqrt((yc**2).sum(0) * (pc**2).sum(0) + 1e-12)
            scores[name] = float(np.mean(r))
        assert max(scores, key=scores.get) == driver, (roi, scores)


def test_unknown_subject_is_a_clear_error(demo_small):
    with pytest.raises(DatasetError, match="unknown subject 'subj99'.*subj01"):
        demo_small.subject("subj99")


def test_unknown_size_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown demo size 'huge'"):
        build_demo(root=tmp_path / "d", size="huge")


def test_missing_demo_folder_says_how_to_build(tmp_path):
    with pytest.raises(DatasetError, match="demo build"):
        open_demo(path=tmp_path / "nothing-here")


def test_corrupt_responses_file_is_named(demo_small_root, tmp_path):
    broken = tmp_path / "demo"
    shutil.copytree(demo_small_root, broken)
    target = broken / "subjects" / "subj01" / "responses.npy"
    target.write_bytes(target.read_bytes()[:100])
    ds = open_demo(path=broken)
    with pytest.raises(ArtifactError, match="responses.npy"):
        ds.subject("subj01")


def test_corrupt_image_is_named(demo_small_root, tmp_path):
    broken = tmp_path / "demo"
    shutil.copytree(demo_small_root, broken)
    (broken / "stimuli" / "images" / "00003.png").write_bytes(b"not a png")
    with pytest.raises(ArtifactError, match="00003.png"):
        open_demo(path=broken).stimuli.load_image(3)


def test_unknown_stimulus_id_is_a_clear_error(demo_small):
    with pytest.raises(DatasetError, match="unknown demo stimulus id"):
        demo_small.stimuli.load_image(10_000)
