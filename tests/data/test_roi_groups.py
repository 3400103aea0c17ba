"""Paper-level ROIs and groups from NSD's fine labels: unions of labels, inside nsdgeneral only."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_nsd import FAMILIES, write_nsd

from core.data.dataset import RoiFamily, TargetSet
from core.data.nsd import read_nsd_subject
from core.data.nsd_layout import NSD_ROI_FAMILIES
from core.data.roi_groups import (
    PAPER_ROIS,
    ROI_GROUPS,
    group_of,
    level_masks,
    paper_name,
    roi_catalog,
)

SUBJ = "subj01"


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    return write_nsd(tmp_path_factory.mktemp("nsd") / "nsd", subjects=(SUBJ,), sessions=(1,))


@pytest.fixture(scope="module")
def brain(nsd):
    """Every brain voxel as a target (nsdgeneral and not), with the truth per target."""
    data = read_nsd_subject(nsd.root, SUBJ, sessions=[1], targets="brain")
    voxels = tuple(np.argwhere(nsd.general[SUBJ] >= 0).T)
    labels = {f: nsd.rois[SUBJ][f][voxels] for f in FAMILIES}
    return data.targets, labels, nsd.general[SUBJ][voxels] == 1


def test_v1_is_v1v_or_v1d_inside_nsdgeneral(brain):
    targets, labels, general = brain
    masks = level_masks(targets, "paper")
    prf = labels["prf-visualrois"]
    np.testing.assert_array_equal(masks["V1"], np.isin(prf, [1, 2]) & general)
    np.testing.assert_array_equal(masks["hV4"], (prf == 7) & general)
    assert (np.isin(prf, [1, 2]) & ~general).any()  # labelled voxels outside are left out
    faces = labels["floc-faces"]
    np.testing.assert_array_equal(masks["FFA"], np.isin(faces, [2, 3]) & general)
    np.testing.assert_array_equal(masks["OFA"], (faces == 1) & general)
    np.testing.assert_array_equal(masks["VWFA"], np.isin(labels["floc-words"], [2, 3]) & general)
    np.testing.assert_array_equal(masks["FBA"], np.isin(labels["floc-bodies"], [2, 3]) & general)


@pytest.mark.parametrize(
    ("group", "family"),
    [
        ("early visual", "prf-visualrois"),
        ("bodies", "floc-bodies"),
        ("faces", "floc-faces"),
        ("places", "floc-places"),
        ("words", "floc-words"),
    ],
)
def test_groups_are_whole_families_inside_nsdgeneral(brain, group, family):
    targets, labels, general = brain
    masks = level_masks(targets, "group")
    np.testing.assert_array_equal(masks[group], (labels[family] > 0) & general)


def test_fine_labels_stay_available(brain):
    targets, labels, general = brain
    fine = level_masks(targets, "fine", drop_empty=False)
    assert set(fine) == {n for names in FAMILIES.values() for n in names.values()}
    np.testing.assert_array_equal(fine["FFA-2"], (labels["floc-faces"] == 3) & general)
    np.testing.assert_array_equal(fine["midventral"], (labels["streams"] == 2) & general)
    entries = {(e.level, e.name): e for e in roi_catalog(targets)}
    assert entries[("paper", "FFA")].members == ("FFA-1", "FFA-2")
    assert entries[("paper", "FFA")].group == "faces"
    assert entries[("fine", "V1d")].group == "early visual"
    assert entries[("fine", "early")].group is None  # streams belong to no group
    assert entries[("group", "words")].members == (
        "OWFA",
        "VWFA-1",
        "VWFA-2",
        "mfs-words",
        "mTL-words",
    )


def test_fsaverage_and_func1pt8mm_names_agree(nsd):
    surface = read_nsd_subject(nsd.root, SUBJ, space="fsaverage", sessions=[1]).targets
    volume = read_nsd_subject(nsd.root, SUBJ, sessions=[1]).targets
    for targets in (surface, volume):
        assert list(level_masks(targets, "paper", drop_empty=False)) == list(PAPER_ROIS)
        assert list(level_masks(targets, "group", drop_empty=False)) == list(ROI_GROUPS)
        for name, mask in level_masks(targets, "paper").items():
            assert mask.any() and not (mask & ~targets.general_mask).any(), name


def test_every_nsd_label_has_its_place():
    for family, names in NSD_ROI_FAMILIES.items():
        for name in names.values():
            if family == "streams":
                assert paper_name(name) is None and group_of(name) is None
            else:
                assert paper_name(name) in PAPER_ROIS
                assert group_of(name) in ROI_GROUPS
    assert paper_name("V1v") == "V1" and group_of("FFA-1") == "faces"
    assert group_of("PPA") == "places" and paper_name("VWFA-2") == "VWFA"


def test_empty_rois_are_left_out_by_default():
    targets = TargetSet(
        roi_families={
            "floc-faces": RoiFamily("floc-faces", np.array([2, 0, 5]), FAMILIES["floc-faces"])
        },
        general_mask=np.array([True, True, False]),
    )
    assert list(level_masks(targets)) == ["FFA"]  # aTL-faces lies outside the general mask
    assert "aTL-faces" in level_masks(targets, drop_empty=False)


def test_paper_level_labels_count_as_themselves():
    """A dataset labelled at the paper's level (the demo: V1, FFA, ...) keeps its ROIs."""
    labels = np.array([1, 2, 3, 0, 1, 2])
    targets = TargetSet(
        roi_families={"visual": RoiFamily("visual", labels, {1: "V1", 2: "V2", 3: "V3"})},
        general_mask=np.array([True, True, True, True, False, True]),
    )
    paper = level_masks(targets, "paper")
    assert list(paper) == ["V1", "V2", "V3"]
    np.testing.assert_array_equal(paper["V1"], [True, False, False, False, False, False])
    np.testing.assert_array_equal(
        level_masks(targets, "group")["early visual"], [True, True, True, False, False, True]
    )
    with pytest.raises(ValueError, match="unknown ROI level"):
        level_masks(targets, "coarse")


# -- wired into the masks every fit scores, and the two views a page shows -----------------------
@pytest.fixture(scope="module")
def surface_subject(nsd):
    return read_nsd_subject(nsd.root, SUBJ, space="fsaverage", sessions=[1])


def test_fits_score_fine_labels_paper_rois_and_groups(surface_subject):
    from core.data.rois import GENERAL, roi_masks

    t = surface_subject.targets
    masks = roi_masks(surface_subject)
    fine = [n for names in FAMILIES.values() for n in names.values()]
    assert set(fine) | set(PAPER_ROIS) | set(ROI_GROUPS) | {GENERAL} == set(masks)
    np.testing.assert_array_equal(masks["V1"], masks["V1v"] | masks["V1d"])
    np.testing.assert_array_equal(masks["FFA"], masks["FFA-1"] | masks["FFA-2"])
    np.testing.assert_array_equal(
        masks["faces"], masks["OFA"] | masks["FFA"] | masks["mTL-faces"] | masks["aTL-faces"]
    )
    np.testing.assert_array_equal(masks["EBA"], t.roi_mask("EBA"))  # one label: itself


def test_default_view_is_the_papers_rois_under_their_groups(surface_subject):
    from core.data.rois import DEFAULT_VIEW, GENERAL, map_rois, roi_masks, view_rois

    names = list(roi_masks(surface_subject))
    assert DEFAULT_VIEW == "paper"
    shown = view_rois(names)
    assert shown[:6] == [GENERAL, "early visual", "V1", "V2", "V3", "hV4"]
    assert shown == [GENERAL] + [n for g, rois in ROI_GROUPS.items() for n in (g, *rois)]
    assert not {"V1v", "FFA-1", "early", "midventral"} & set(shown)  # no fine label, no stream
    assert map_rois(names) == list(PAPER_ROIS)  # maps outline the 18 paper ROIs, not the groups


def test_fine_view_gives_the_31_nsd_labels(surface_subject):
    from core.data.rois import GENERAL, map_rois, roi_masks, view_rois

    names = list(roi_masks(surface_subject))
    fine = [n for names_ in FAMILIES.values() for n in names_.values()]
    assert len(fine) == 31
    assert view_rois(names, "fine") == [GENERAL, *fine]
    assert map_rois(names, "fine") == fine
    with pytest.raises(ValueError, match="unknown ROI view"):
        view_rois(names, "coarse")


def test_select_view_filters_and_orders_table_rows(surface_subject):
    import pandas as pd

    from core.data.rois import roi_masks, select_view

    names = list(roi_masks(surface_subject))
    n = len(names)
    table = pd.DataFrame({"roi": names * 2, "instruction": ["IC"] * n + ["IU1"] * n})
    paper = select_view(table)
    assert list(dict.fromkeys(paper["roi"]))[:3] == ["general", "early visual", "V1"]
    assert len(paper) == 2 * (1 + len(PAPER_ROIS) + len(ROI_GROUPS))
    assert list(paper.loc[paper["roi"] == "V1", "instruction"]) == ["IC", "IU1"]  # stable
    assert len(select_view(table, "fine")) == 2 * 32
    # a table scored before the paper's ROIs existed shows its fine labels in either view
    old = table[table["roi"].isin(["general", "V1v", "V1d", "EBA"])]
    for view in ("paper", "fine"):
        shown = select_view(old, view)
        assert len(shown) == len(old)
        assert list(dict.fromkeys(shown["roi"])) == ["general", "V1v", "V1d", "EBA"]


def test_paper_level_datasets_are_unaffected():
    """The demo's labels (V1, FFA, LOC, ...) get no added ROI, and both views are its labels."""
    import pandas as pd

    from core.data.dataset import SubjectData
    from core.data.rois import map_rois, roi_masks, select_view, view_rois

    labels = np.array([1, 2, 3, 4, 0, 1])
    targets = TargetSet(
        roi_families={
            "visual": RoiFamily("visual", labels, {1: "V1", 2: "FFA", 3: "LOC", 4: "V2"})
        },
        general_mask=np.ones(6, bool),
    )
    subject = SubjectData(
        subject="S1", stimulus_ids=np.arange(3), responses=np.zeros((3, 6), np.float32),
        n_repeats=np.ones(3, np.int16), is_test=np.array([False, False, True]), targets=targets,
    )  # fmt: skip
    masks = roi_masks(subject)
    assert list(masks) == ["general", "V1", "FFA", "LOC", "V2"]
    for view in ("paper", "fine"):
        assert view_rois(masks, view) == list(masks)
        assert map_rois(masks, view) == ["V1", "FFA", "LOC", "V2"]
    table = pd.DataFrame({"roi": ["general", "V2", "V1", "LOC"]})
    assert select_view(table) is table
