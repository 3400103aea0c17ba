"""AppTest: the demo features of every results page: the 3D brain, the target inspector (one
target, a box, an ROI), deep links (the URL holds the selections; opening it restores them),
the copy-link box, the figures for slides, and the volume-only message."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app.apptools import page, texts
from tests.app.conftest import APP

# page, its widget-key prefix
RESULT_PAGES = [("pages/instructions.py", "ci"), ("pages/models.py", "mb"),
                ("pages/partitions.py", "vp")]  # fmt: skip


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def _iframes(at):
    return [e for e in at.get("iframe")]


def _brain(at):
    return [e for e in _iframes(at) if 'data-testid="brain3d"' in str(e.proto.srcdoc)]


@pytest.mark.parametrize(("path", "key"), RESULT_PAGES, ids=[p[1] for p in RESULT_PAGES])
def test_3d_view_and_inspector_on_every_results_page(app, path, key):
    at = page(app, path)
    _ok(at)
    assert not _brain(at)  # flat maps only by default: nothing heavy drawn
    at.radio(key=f"{key}_tool").set_value("3D brain").run()
    _ok(at)
    brain = _brain(at)
    assert len(brain) == 1
    html = str(brain[0].proto.srcdoc)
    assert "DecompressionStream" in html and "SIMULATED data" in html
    assert "pycortex subject S1" in texts(at)  # what the surface is
    if len(at.selectbox(key=f"{key}_map").options) > 1:
        at.selectbox(key=f"{key}_map").set_value(1).run()
        _ok(at)
        assert str(_brain(at)[0].proto.srcdoc) != html  # another map
    at.radio(key=f"{key}_tool").set_value("Inspect targets").run()
    _ok(at)
    at.number_input(key=f"{key}_target").set_value(5).run()
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert {"Noise ceiling", "Best instruction", "Selected alpha"} <= set(metrics)
    assert "Target 5" in texts(at)
    assert "Planted ground truth (simulated demo)" in texts(at)
    assert at.query_params["target"] == "5" and at.query_params["tool"] == "inspect"
    at.radio(key=f"{key}_inspect").set_value("an ROI").run()
    _ok(at)
    at.selectbox(key=f"{key}_inspect_roi").set_value("V1").run()
    _ok(at)
    assert "targets selected" in texts(at)
    assert {"Median noise ceiling", "Mean alignment", "Median alpha"} <= {m.label for m in at.metric}
    at.radio(key=f"{key}_inspect").set_value("a box of targets (drag)").run()
    _ok(at)
    assert "drag a box" in texts(at)


def test_inspector_card_matches_the_stored_scores(app, tiny_grid):
    from core.dashboard import inspector
    from core.data.registry import open_dataset
    from core.results.tables import load_roi_table

    ds = open_dataset("demo")
    table = load_roi_table("demo", ds)
    cube = inspector.alignment_cube("demo", "subj01", "tiny-llava", table)
    assert set(cube.instructions) == {"IU1", "IC"} and len(cube.layers) >= 1
    targets = ds.subject("subj01").targets
    t = int(np.flatnonzero(np.isfinite(cube.nalign[0, -1]))[0])
    card = inspector.target_card(cube, targets, t, "IC", cube.layers[-1])
    i, j = cube.index("IC", cube.layers[-1])
    assert card["nalign"] == pytest.approx(float(cube.nalign[i, j, t]))
    assert card["best instruction"] in cube.instructions
    assert card["hemisphere"] in ("left", "right")
    prof = inspector.target_profile(cube, t)
    assert len(prof) == len(cube.instructions) * len(cube.layers)
    idx = np.flatnonzero(targets.roi_mask("V1"))
    frames = inspector.selection_frames(cube, targets, idx, "IC", cube.layers[-1])
    assert len(frames["values"]) == idx.size and frames["rois"]["targets"].sum() == idx.size
    assert set(frames["profile"]["instruction"]) == set(cube.instructions)
    truth = inspector.planted_truth(ds, "subj01")
    assert truth is not None and truth["planted_ncsnr"].shape == (targets.n_targets,)
    card = inspector.truth_card(truth, t)
    assert "planted_ncsnr" in card and "driver_name" in card


def test_deep_link_reopens_the_view(app):
    from streamlit.testing.v1 import AppTest

    at = page(app, "pages/instructions.py")
    at.selectbox(key="ci_a").set_value("IC").run()
    at.selectbox(key="ci_b").set_value("IU1").run()
    at.selectbox(key="ci_roi").set_value("FFA").run()
    at.selectbox(key="ci_metric").set_value("r_mean").run()
    at.radio(key="ci_tool").set_value("3D brain").run()
    _ok(at)
    params = dict(at.query_params)
    assert params["a"] == "IC" and params["b"] == "IU1" and params["roi"] == "FFA"
    assert params["measure"] == "r_mean" and params["tool"] == "3d"
    assert params["dataset"] == "demo" and "model" in params and "layer" in params
    fresh = AppTest.from_file(APP, default_timeout=120)  # a new browser opening the link
    for k, v in params.items():
        fresh.query_params[k] = v
    fresh.switch_page("pages/instructions.py").run()
    _ok(fresh)
    assert fresh.selectbox(key="ci_a").value == "IC"
    assert fresh.selectbox(key="ci_b").value == "IU1"
    assert fresh.selectbox(key="ci_roi").value == "FFA"
    assert fresh.selectbox(key="ci_metric").value == "r_mean"
    assert fresh.radio(key="ci_tool").value == "3D brain" and _brain(fresh)
    # the sidebar's copy-link button and the link itself
    assert any("Copy link to this view" in str(e.proto.srcdoc) for e in _iframes(fresh))
    link = [c.value for c in fresh.code if "a=IC" in c.value]
    assert link and "b=IU1" in link[0] and "roi=FFA" in link[0]


def test_deep_link_on_explore_runs_the_prediction(app):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in {"model": "tiny-llava", "instruction": "IC", "stimulus": "3", "run": "1",
                 "roi": "V1", "tool": "3d", "map": "1"}.items():  # fmt: skip
        at.query_params[k] = v
    at.run()
    _ok(at)
    assert at.selectbox(key="ex_model").value == "tiny-llava"
    assert at.selectbox(key="ex_instruction").value.startswith("IC ")
    assert at.selectbox(key="ex_stimulus").value == 3
    assert {"Inference time", "Tokens"} <= {m.label for m in at.metric}  # ran by itself
    assert at.selectbox(key="ex_roi").value == "V1"
    assert _brain(at) and "Measured" in str(_brain(at)[0].proto.srcdoc)  # map 1: measured
    assert at.query_params["run"] == "1"


@pytest.mark.parametrize(("path", "key"), [*RESULT_PAGES, ("pages/explore.py", "ex")],
                         ids=["ci", "mb", "vp", "ex"])  # fmt: skip
def test_figures_for_slides(app, path, key):
    at = page(app, path)
    if key == "ex":
        at.selectbox(key="ex_model").set_value("tiny-llava").run()
        at.button(key="ex_run").click().run()
    _ok(at)
    labels = {b.label for b in at.get("download_button")}
    assert {"⬇ All figures (ZIP with captions)", "PNG", "SVG", "PDF"} <= labels
    picker = at.selectbox(key=f"{key}_export_pick")
    assert len(picker.options) >= 2
    picker.set_value(len(picker.options) - 1).run()
    _ok(at)


def test_volume_data_says_why_there_is_no_surface(app, monkeypatch):
    import core.viz.brain3d as brain3d

    monkeypatch.setattr(brain3d, "surface_problem",
                        lambda targets: "No 3D surface view: these targets are voxels")  # fmt: skip
    at = page(app, "pages/models.py")
    at.radio(key="mb_tool").set_value("3D brain").run()
    _ok(at)
    assert "No 3D surface view" in texts(at)
    assert not _brain(at)
