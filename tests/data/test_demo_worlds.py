"""The demo's negative-control worlds (issue 21): ``demo build --world null|uniform``.

Both keep the planted world's stimuli, targets, SNR map and noise structure and change only the
signal: ``null`` makes it follow other images (a derangement shared by all targets and
subjects), ``uniform`` makes it the same in every area. Each is its own registered dataset, the
world is recorded in dataset.json, truth.npz and the subjects' content keys, and the planted
build does not change.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from core.data.demo.build import build_demo, null_signal_source, world_root
from core.data.demo.controls import cv_best_share, planted_instruction_sets
from core.data.demo.store import demo_world, load_truth, open_demo
from core.data.demo.subjects import DRIVER_GROUPS, GROUPS, UNIFORM_MIX, group_features
from core.data.demo.truth import load_planted_inputs
from core.data.registry import open_dataset
from core.storage import read_json


def _digest(paths):
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _tree(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def null_root(demo_small_root):
    build_demo(size="small", seed=0, world="null", progress=False)
    return world_root("demo-null")


@pytest.fixture(scope="module")
def uniform_root(demo_small_root):
    build_demo(size="small", seed=0, world="uniform", progress=False)
    return world_root("demo-uniform")


def test_planted_world_is_the_default_and_byte_identical(demo_small_root, tmp_path):
    again = tmp_path / "demo"
    build_demo(root=again, size="small", seed=0, progress=False, world="planted")
    rel = [p.relative_to(demo_small_root) for p in _tree(demo_small_root)]
    assert [p.relative_to(again) for p in _tree(again)] == rel
    assert _digest(again / r for r in rel) == _digest(demo_small_root / r for r in rel)
    info = read_json(demo_small_root / "dataset.json")
    assert "world" not in info and demo_world(info) == "planted"


def test_control_worlds_are_their_own_registered_datasets(demo_small_root, null_root, uniform_root):
    assert null_root != demo_small_root and uniform_root != demo_small_root
    for name, world in (("demo-null", "null"), ("demo-uniform", "uniform")):
        ds = open_dataset(name)
        assert ds.kind == "demo" and ds.simulated
        assert ds.metadata["name"] == name and demo_world(ds.metadata) == world
        assert "NEGATIVE CONTROL" in ds.metadata["description"]
        assert ds.metadata["planted_drivers"] == {}
    # the default demo is untouched
    assert demo_world(open_dataset("demo").metadata) == "planted"


def test_same_stimuli_targets_and_repeats_as_the_planted_world(
    demo_small_root, null_root, uniform_root
):
    for root in (null_root, uniform_root):
        for sub in ("stimuli/images", "stimuli/attributes.parquet", "stimuli/answers.parquet"):
            assert _digest(_tree(root / sub) if (root / sub).is_dir() else [root / sub]) == (
                _digest(
                    _tree(demo_small_root / sub)
                    if (demo_small_root / sub).is_dir()
                    else [demo_small_root / sub]
                )
            )
    planted, null, uniform = (open_demo(path=r) for r in (demo_small_root, null_root, uniform_root))
    assert planted.stimulus_identity == null.stimulus_identity == uniform.stimulus_identity
    for name in planted.subject_names:
        p, n, u = planted.subject(name), null.subject(name), uniform.subject(name)
        for other in (n, u):
            assert np.array_equal(other.stimulus_ids, p.stimulus_ids)
            assert np.array_equal(other.n_repeats, p.n_repeats)
            assert other.targets.digest() == p.targets.digest()
            assert not np.allclose(other.responses, p.responses)
            # world folded into the content key: artifacts of different worlds never mix
            assert other.digest() != p.digest()
        assert n.digest() != u.digest()


def test_noise_ceilings_stay_realistic(demo_small_root, null_root, uniform_root):
    """The controls keep the SNR map: median noise ceilings within 3 points of the planted
    world's (sampling error of ncsnr from 3 repeats of ~270 images is about 0.05)."""
    ref = read_json(demo_small_root / "dataset.json")["subjects_summary"]
    for root in (null_root, uniform_root):
        got = read_json(root / "dataset.json")["subjects_summary"]
        for name, s in ref.items():
            assert abs(got[name]["median_nc"] - s["median_nc"]) < 3.0, (root, name)


def test_null_signal_source_is_a_derangement():
    src = null_signal_source(0, 300)
    assert np.array_equal(np.sort(src), np.arange(300))
    assert not (src == np.arange(300)).any()
    assert np.array_equal(src, null_signal_source(0, 300))
    assert not np.array_equal(src, null_signal_source(1, 300))


def _roi_r(subject, features, roi, folds=5):
    """Cross-validated r (5 folds over every image the subject saw) of a small ridge from
    planted group features to an ROI's mean response."""
    y = subject.responses[:, subject.targets.roi_mask(roi)].mean(1)
    x = np.hstack([features, np.ones((features.shape[0], 1))])
    pred = np.empty_like(y)
    fold = np.arange(y.size) % folds
    for k in range(folds):
        tr, te = fold != k, fold == k
        w = np.linalg.solve(x[tr].T @ x[tr] + 10.0 * np.eye(x.shape[1]), x[tr].T @ y[tr])
        pred[te] = x[te] @ w
    return float(np.corrcoef(pred, y)[0, 1])


ROI_GROUP = {"V1": "low_level", "FFA": "faces", "PPA": "places", "IPS": "numerosity"}


def test_null_responses_follow_other_images_only(demo_small_root, null_root):
    """The planted drivers of the images shown predict the planted world's ROIs and not the
    null world's; the drivers of the images the null signal was drawn from do predict it (the
    signal is real and repeatable, only unrelated to what was shown)."""
    inputs = load_planted_inputs(demo_small_root)
    src = np.load(null_root / "stimuli" / "null_signal_source.npy")
    planted, null = open_demo(path=demo_small_root), open_demo(path=null_root)
    shown_r, source_r, planted_r = [], [], []
    for name in planted.subject_names:
        ids = planted.subject(name).stimulus_ids
        shown = group_features(inputs.subset(ids))
        source = group_features(inputs.subset(src[ids]))
        for roi, group in ROI_GROUP.items():
            planted_r.append(_roi_r(planted.subject(name), shown[group], roi))
            shown_r.append(_roi_r(null.subject(name), shown[group], roi))
            source_r.append(_roi_r(null.subject(name), source[group], roi))
    # ~270 images: the r of an unrelated predictor has SD ~0.06 (the subjects share the signal,
    # so the 8 cells are ~4 independent draws): mean within 2.5 SD, every cell within 5 SD
    assert np.mean(planted_r) > 0.5 and min(planted_r) > 0.3, planted_r
    assert abs(np.mean(shown_r)) < 0.15 and max(np.abs(shown_r)) < 0.3, shown_r
    assert np.mean(source_r) > 0.5, source_r


def test_null_truth_plants_nothing(demo_small_root, null_root):
    for name in ("subj01", "subj02"):
        planted, truth = load_truth(demo_small_root, name), load_truth(null_root, name)
        assert str(truth["world"]) == "null"
        assert (truth["driver"] == DRIVER_GROUPS.index("none")).all()
        assert not truth["driver_weights"].any()
        assert (truth["unnamed_share"] == 1).all()
        assert np.isnan(truth["prf_ecc"]).all() and (truth["environment_pref"] == -1).all()
        assert np.array_equal(truth["planted_world_driver"], planted["driver"])
        assert np.array_equal(truth["planted_ncsnr"], planted["planted_ncsnr"])


def test_uniform_truth_is_the_same_everywhere(demo_small_root, uniform_root):
    for name in ("subj01", "subj02"):
        planted, truth = load_truth(demo_small_root, name), load_truth(uniform_root, name)
        assert str(truth["world"]) == "uniform"
        noise = planted["driver"] == DRIVER_GROUPS.index("none")
        assert (truth["driver"][~noise] == DRIVER_GROUPS.index("mixed")).all()
        assert (truth["driver"][noise] == DRIVER_GROUPS.index("none")).all()
        w = truth["driver_weights"]
        assert np.allclose(w[:, : len(GROUPS)], UNIFORM_MIX) and not w[:, -1].any()
        assert np.unique(truth["unnamed_share"]).size == 1
        assert np.isnan(truth["prf_ecc"]).all()
        assert np.array_equal(truth["planted_world_driver"], planted["driver"])


def test_uniform_areas_share_one_signal(demo_small_root, uniform_root):
    """Averaged over an ROI's targets (noise averages out), every area responds alike in the
    uniform world (test-image correlation of ROI means > 0.8 for every pair), unlike the
    planted world, where early visual and face areas differ."""
    rois = ["V1", "V3", "FFA", "EBA", "PPA", "IPS"]

    def roi_means(root):
        s = open_demo(path=root).subject("subj01")
        _, test = s.split()
        return np.array([s.responses[test][:, s.targets.roi_mask(r)].mean(1) for r in rois])

    uni = np.corrcoef(roi_means(uniform_root))
    assert uni[np.triu_indices(len(rois), 1)].min() > 0.8, np.round(uni, 2)
    planted = np.corrcoef(roi_means(demo_small_root))
    assert planted[0, rois.index("FFA")] < 0.5, np.round(planted, 2)


def test_cli_builds_a_named_control_world(demo_small_root):
    from core.pipeline.cli import main

    assert main(["demo", "build", "--size", "small", "--seed", "1", "--world", "uniform",
                 "--name", "demo-uniform-s1", "--quiet"]) == 0  # fmt: skip
    ds = open_dataset("demo-uniform-s1")
    assert ds.metadata["seed"] == 1 and demo_world(ds.metadata) == "uniform"
    assert world_root("demo-uniform-s1").is_dir()
    assert demo_world(open_dataset("demo").metadata) == "planted"


def test_bad_world_and_reserved_name_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown demo world"):
        build_demo(root=tmp_path / "x", size="small", world="flat", progress=False)
    with pytest.raises(ValueError, match="planted demo"):
        build_demo(root=tmp_path / "x", size="small", world="null", name="demo", progress=False)


def test_cv_best_share_counts_planted_instruction_wins():
    mixed = DRIVER_GROUPS.index("mixed")
    # low, low, places, places, numerosity, mixed, none
    driver = np.array([1, 1, 4, 4, 5, mixed, 0], np.int8)
    sets = planted_instruction_sets(driver)
    assert sets[0] == {"IU1"} and sets[2] == {"CR", "SR"} and sets[5] == frozenset()
    ins = ["IU1", "CR", "SR", "IU3"]
    scores = np.array(
        [
            [0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9],  # IU1
            [0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1],  # CR
            [0.1, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1],  # SR
            [0.1, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1],  # IU3
        ]
    )
    res = cv_best_share(scores, ins, driver)
    # scored: the 5 targets with a planted instruction; hits: 0 (IU1), 2 (CR), 3 (SR), 4 (IU3)
    assert res.n_targets == 5 and res.share == pytest.approx(4 / 5)
    assert res.chance == pytest.approx((1 + 1 + 2 + 2 + 1) / 5 / 4)
    masked = cv_best_share(scores, ins, sets, mask=np.array([0, 1, 0, 0, 0, 0, 0], bool))
    assert masked.n_targets == 1 and masked.share == 0.0
    with pytest.raises(ValueError):
        cv_best_share(scores[:2], ins, driver)


def test_a_stimulus_seed_keeps_the_images_and_redraws_the_subjects(demo_small_root, tmp_path):
    root = tmp_path / "other"
    build_demo(root=root, size="small", seed=1, stimulus_seed=0, progress=False)
    base, other = read_json(demo_small_root / "dataset.json"), read_json(root / "dataset.json")
    assert other["stimuli_digest"] == base["stimuli_digest"] and other["stimulus_seed"] == 0
    assert "stimulus_seed" not in base  # the default (images from the world seed) is unrecorded
    a = open_demo(path=demo_small_root).subject("subj01").responses
    b = open_demo(path=root).subject("subj01").responses
    assert a.shape != b.shape or not np.allclose(a, b)
