"""The embedded demo world: determinism, shapes and splits, the planted model (smooth tuning,
retinotopy, a contiguous general mask, subject variation, content no instruction names), bad
input."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from core.data.dataset import DatasetError
from core.data.demo import cortex
from core.data.demo.build import build_demo
from core.data.demo.scenes import INSTRUCTION_IDS, draw_scene
from core.data.demo.store import load_truth, open_demo
from core.data.demo.subjects import GROUPS, PLANTED_DRIVERS, group_features
from core.data.demo.truth import (
    early_targets,
    load_planted_inputs,
    mesh_autocorrelation,
    roi_preferences,
)
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


def test_reference_answers_do_not_depend_on_the_order_items_were_sampled_in():
    """Every answer key is a function of what the picture shows: reordering the scene's items
    (which no image reveals) never changes an answer (VR once listed interactions in sampling
    order, an error no model could avoid)."""
    from dataclasses import replace

    from core.data.demo.answers import answer
    from core.models.demo_vlm.tasks import ANSWER_KEYS

    rng = np.random.default_rng(0)
    checked = 0
    for i in range(300):
        content = draw_scene(0, "heldout", i, size=64).content
        if len(content.items) < 2:
            continue
        order = rng.permutation(len(content.items))
        shuffled = replace(content, items=[content.items[k] for k in order])
        for key in ANSWER_KEYS:
            assert answer(shuffled, key) == answer(content, key), (i, key)
        checked += 1
    assert checked > 200


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


def _ridge_r(x, y, train, test, alpha=10.0):
    x1 = np.hstack([x, np.ones((x.shape[0], 1))])
    w = np.linalg.solve(
        x1[train].T @ x1[train] + alpha * np.eye(x1.shape[1]), x1[train].T @ y[train]
    )
    pred = x1[test] @ w
    yc, pc = y[test] - y[test].mean(0), pred - pred.mean(0)
    return (yc * pc).sum(0) / np.sqrt((yc**2).sum(0) * (pc**2).sum(0) + 1e-12)


@pytest.fixture(scope="module")
def planted_inputs(demo_small_root):
    return load_planted_inputs(demo_small_root)


def test_planted_driver_of_each_roi_is_recoverable_from_ground_truth(demo_small, planted_inputs):
    """A sanity check of the simulation: the planted group's drives predict each ROI best."""
    s = demo_small.subject("subj01")
    groups = group_features(planted_inputs.subset(s.stimulus_ids))
    train, test = s.split()
    for roi, driver in PLANTED_DRIVERS.items():
        y = s.responses[:, s.targets.roi_mask(roi)]
        scores = {name: float(np.mean(_ridge_r(x, y, train, test))) for name, x in groups.items()}
        assert max(scores, key=scores.get) == driver, (roi, scores)


def test_planted_inputs_are_recomputed_exactly_as_built(demo_small, planted_inputs):
    """The drives recomputed from the stored pictures and content reproduce the build: simulating
    subj01 again from them gives its stored responses (up to the int8 storage)."""
    from core.data.demo.build import SIZES, subject_draw
    from core.data.demo.subjects import simulate_subject

    ids = demo_small.stimuli.ids
    is_test = np.isin(ids, demo_small.shared_test_ids())
    seen, density, seed = subject_draw(0, 0, is_test, SIZES["small"])
    data, _ = simulate_subject(
        "subj01", ids[seen], is_test[seen], planted_inputs.subset(np.flatnonzero(seen)),
        density, seed,
    )  # fmt: skip
    stored = demo_small.subject("subj01")
    assert np.array_equal(data.stimulus_ids, stored.stimulus_ids)
    scale = np.abs(data.responses).max(0) / 127
    assert np.all(np.abs(data.responses - stored.responses) <= scale * 0.51 + 1e-6)


def test_general_mask_is_one_contiguous_region_per_hemisphere():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from core.data.surfaces import load_flat_mesh

    for hemi, name in zip(cortex.template(), ("lh", "rh"), strict=True):
        faces = load_flat_mesh(cortex.SURFACE, name).faces
        idx = np.flatnonzero(hemi.general)
        lut = np.full(hemi.coords.shape[0], -1)
        lut[idx] = np.arange(idx.size)
        e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        a, b = lut[e[:, 0]], lut[e[:, 1]]
        ok = (a >= 0) & (b >= 0)
        graph = coo_matrix((np.ones(ok.sum()), (a[ok], b[ok])), shape=(idx.size, idx.size))
        _, comp = connected_components(graph, directed=False)
        assert np.bincount(comp).max() / idx.size > 0.99, name
        # it covers posterior cortex well beyond the ROIs
        assert hemi.general.sum() > 3 * np.isin(hemi.roi, np.arange(1, 11)).sum() / 2, name


def test_targets_fill_the_mask_beyond_the_named_rois(demo_small):
    t = demo_small.subject("subj01").targets
    named = np.zeros(t.n_targets, bool)
    for roi in PLANTED_DRIVERS:
        named |= t.roi_mask(roi, within_general=False)
    unnamed_in_mask = t.general_mask & ~named
    assert unnamed_in_mask.sum() > 0.3 * t.general_mask.sum()
    assert (~t.general_mask).sum() > 0  # and a rim outside it


def test_mesh_autocorrelation_tells_smooth_from_salt_and_pepper(demo_small, rng):
    geo = demo_small.subject("subj01").targets.geometry
    truth = load_truth(demo_small.stimuli.root, "subj01")
    smooth = mesh_autocorrelation(truth["unnamed_share"], geo)
    noise = mesh_autocorrelation(rng.standard_normal(geo.vertex.size), geo)
    assert smooth.n_pairs > 200
    assert smooth.r > 0.9
    assert abs(noise.r) < 0.15


def test_planted_tuning_and_responses_are_spatially_smooth(demo_small):
    s = demo_small.subject("subj01")
    t = s.targets
    truth = load_truth(demo_small.stimuli.root, "subj01")
    for key in ("prf_ecc", "hue_pref", "numerosity_pref", "planted_ncsnr", "unnamed_share"):
        assert mesh_autocorrelation(truth[key], t.geometry).r > 0.7, key
    # neighbouring targets' responses correlate (shared tuning, shared BOLD point-spread)
    from core.data.surfaces import load_flat_mesh

    sel = np.flatnonzero((t.geometry.hemi == 0) & t.general_mask)
    lut = np.full(load_flat_mesh(cortex.SURFACE, "lh").n_vertices, -1)
    lut[t.geometry.vertex[sel]] = sel
    f = load_flat_mesh(cortex.SURFACE, "lh").faces
    a, b = lut[f[:, 0]], lut[f[:, 1]]
    ok = (a >= 0) & (b >= 0)
    y = s.responses - s.responses.mean(0)
    y /= y.std(0)
    near = np.mean((y[:, a[ok]] * y[:, b[ok]]).mean(0))
    far = np.mean((y[:, a[ok]] * y[:, np.roll(b[ok], 97)]).mean(0))
    assert near > 0.3 and near > far + 0.2, (near, far)


def test_retinotopy_of_v1_to_v3(demo_small):
    s = demo_small.subject("subj01")
    truth = load_truth(demo_small.stimuli.root, "subj01")
    t = s.targets
    ecc, size = truth["prf_ecc"], truth["prf_size"]
    slopes = []
    for roi in ("V1", "V2", "V3"):
        m = t.roi_mask(roi) & np.isfinite(ecc)
        assert ecc[m].min() < 0.5 and ecc[m].max() > 5.0, roi  # fovea to periphery
        assert np.corrcoef(ecc[m], size[m])[0, 1] > 0.9, roi  # size grows with eccentricity
        slopes.append(np.polyfit(ecc[m], size[m], 1)[0])
    assert slopes[0] < slopes[1] < slopes[2]  # and from V1 to V3
    # each hemisphere maps the contralateral visual field
    early = early_targets(truth, t)
    lh = early & (t.geometry.hemi == 0)
    rh = early & (t.geometry.hemi == 1)
    assert (truth["prf_x"][lh] >= -1e-6).all() and (truth["prf_x"][rh] <= 1e-6).all()
    assert (truth["prf_y"][early] > 0).mean() == pytest.approx(0.5, abs=0.15)


def test_subject_warps_jitter_roi_size_and_position():
    """Two subjects' warps of the template: the same areas, with different outlines and sizes."""
    hemi = cortex.template()[0]
    idx = np.flatnonzero(hemi.candidate)
    labels = []
    for seed in (1, 2):
        warped = cortex.subject_warp(hemi, hemi.coords[idx], np.random.default_rng(seed))
        labels.append(hemi.roi[cortex.lookup(hemi, warped)])
    xy = hemi.coords[idx]
    size_change = []
    for k, roi in enumerate(cortex.ROI_NAMES, start=1):
        a, b = labels[0] == k, labels[1] == k
        jaccard = (a & b).sum() / (a | b).sum()
        shift = np.linalg.norm(xy[a].mean(0) - xy[b].mean(0))
        assert 0.05 < jaccard < 0.97, (roi, jaccard)
        assert shift < 10.0, (roi, shift)  # mm: the same area, moved a little
        size_change.append(abs(np.log(a.sum() / b.sum())))
    assert np.median(size_change) > 0.03, size_change


def test_subjects_draw_their_own_tuning(demo_small):
    a, b = demo_small.subject("subj01").targets, demo_small.subject("subj02").targets
    ta = load_truth(demo_small.stimuli.root, "subj01")
    tb = load_truth(demo_small.stimuli.root, "subj02")
    key_a = a.geometry.hemi.astype(np.int64) * 10**6 + a.geometry.vertex
    key_b = b.geometry.hemi.astype(np.int64) * 10**6 + b.geometry.vertex
    _, ia, ib = np.intersect1d(key_a, key_b, return_indices=True)
    ok = np.isfinite(ta["hue_pref"][ia]) & np.isfinite(tb["hue_pref"][ib])
    assert ok.sum() > 20
    assert abs(np.corrcoef(ta["hue_pref"][ia][ok], tb["hue_pref"][ib][ok])[0, 1]) < 0.5
    # while the retinotopic maps (anatomy) agree
    assert np.corrcoef(ta["prf_ecc"][ia][ok], tb["prf_ecc"][ib][ok])[0, 1] > 0.8


def test_no_roi_is_planted_at_the_noise_ceiling(demo_small):
    """Every ROI's signal partly follows content no instruction names."""
    s = demo_small.subject("subj01")
    prefs = roi_preferences(load_truth(demo_small.stimuli.root, "subj01"), s.targets)
    assert set(prefs["roi"]) == set(PLANTED_DRIVERS)
    assert prefs["unnamed share"].between(0.2, 0.6).all(), prefs
    assert (prefs["driver weight"] > 0.5).all(), prefs
    assert set(prefs["planted driver"]) == set(GROUPS)


def test_truth_holds_the_planted_maps(demo_small):
    n = demo_small.subject("subj01").targets.n_targets
    truth = load_truth(demo_small.stimuli.root, "subj01")
    for key in ("planted_ncsnr", "driver", "unnamed_share", "prf_ecc", "prf_angle", "prf_size",
                "prf_x", "prf_y", "hue_pref", "numerosity_pref", "environment_pref",
                "object_x_pref", "object_y_pref"):  # fmt: skip
        assert truth[key].shape == (n,), key
    assert truth["driver_weights"].shape == (n, len(GROUPS) + 1)
    np.testing.assert_allclose(truth["driver_weights"].sum(1), 1.0, atol=1e-5)


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


def test_loc_is_a_constructed_patch_planted_with_a_driver_only_the_pool_asks_about(demo_small):
    """LOC (empty in pycortex's S1, constructed between V3, OFA and EBA) is planted with the
    largest thing's size and place: no paper instruction names it, pool prompts do; its drive is
    orthogonal to everything the paper's 10 ask about; its targets prefer the contralateral
    half of the image."""
    from core.data.demo.subjects import GROUP_INSTRUCTIONS, planted_label
    from core.data.demo.truth import GROUP_LABELS

    assert PLANTED_DRIVERS["LOC"] == "objects" and "objects" in GROUP_LABELS
    assert not set(GROUP_INSTRUCTIONS["objects"]) & set(INSTRUCTION_IDS)
    assert all(i.startswith("pool:") for i in GROUP_INSTRUCTIONS["objects"])
    for hemi in cortex.template():
        loc = hemi.roi == 1 + cortex.ROI_NAMES.index("LOC")
        assert 300 < loc.sum() < 1000 and hemi.general[loc].all()
    s = demo_small.subject("subj01")
    truth = load_truth(demo_small.stimuli.root, "subj01")
    mask = s.targets.roi_mask("LOC")
    assert mask.sum() > 10
    x = truth["object_x_pref"][mask]
    hemi = s.targets.geometry.hemi[mask]
    assert (x[hemi == 0] > 0).all() and (x[hemi == 1] < 0).all()
    prefs = roi_preferences(truth, s.targets).set_index("roi")
    assert prefs.loc["LOC", "instruction"] == planted_label("objects")
    assert prefs.loc["LOC", "preferred object position"]


def test_loc_drive_is_orthogonal_to_what_the_paper_instructions_ask(planted_inputs):
    from core.data.demo.subjects import _residual

    sc = planted_inputs.scenes
    assert sc.largest_size.max() > 0.9 and sc.largest_size.min() >= 0.0
    drive = _residual(sc.largest_size[:, None], sc.named)
    assert np.abs(sc.named.T @ drive).max() < 1e-8
    assert drive.std() > 0.05  # something is left to discover


def test_loc_planted_prompts_are_every_pool_prompt_naming_where_the_largest_thing_sits():
    """The objects group's planted instructions are exactly the pool prompts whose reference
    answer names the largest thing's place (answer keys largest, largest_quarter, largest_side,
    largest_half): no such prompt is left out, none of another kind is in."""
    from core.data.demo.subjects import GROUP_INSTRUCTIONS
    from core.models.demo_vlm.tasks import answer_key
    from core.models.instructions import pool_instructions

    where_largest = {"largest", "largest_quarter", "largest_side", "largest_half"}
    expected = {i.id for i in pool_instructions() if answer_key(i.text) in where_largest}
    assert set(GROUP_INSTRUCTIONS["objects"]) == expected


def test_planted_label_names_paper_ids_and_counts_pool_prompts():
    from core.data.demo.subjects import GROUP_INSTRUCTIONS, planted_label

    assert planted_label("places") == "CR/SR"
    assert planted_label("numerosity") == "IU3"
    n = len(GROUP_INSTRUCTIONS["objects"])
    assert planted_label("objects") == f"{n} pool prompts: where the largest thing is"
    assert "pool:" not in planted_label("objects")


def test_demo_built_with_older_reference_answers_is_refused(demo_small_root, tmp_path):
    """A demo whose dataset.json records other reference answers (or none: version 1) must be
    rebuilt: its stored answers would contradict what the code and the model now say."""
    import json

    from core.data.demo.answers import ANSWERS_VERSION
    from core.data.demo.store import demo_info

    assert demo_info(demo_small_root)["answers_version"] == ANSWERS_VERSION
    old = tmp_path / "demo"
    shutil.copytree(demo_small_root, old)
    record = json.loads((old / "dataset.json").read_text())
    del record["answers_version"]
    (old / "dataset.json").write_text(json.dumps(record))
    with pytest.raises(DatasetError, match="older reference answers .*demo build"):
        demo_info(old)
