"""AppTest: the Ground truth page shows the planted model beside what the pipeline recovered,
labelled simulated; it refuses measured datasets."""

from __future__ import annotations

import pytest

from tests.app.apptools import page, texts

PATH = "pages/ground_truth.py"


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture
def gt(app):
    at = page(app, PATH)
    _ok(at)
    return at


def test_page_is_labelled_simulated_and_shows_the_planted_driver_map(gt):
    text = texts(gt)
    assert "SIMULATED" in text
    assert "Ground truth" in gt.title[0].value
    assert len(gt.image) >= 1  # the planted driver map
    # each ROI's planted preference, with the instruction that names its driver
    prefs = gt.dataframe[0].value
    assert {"V1", "FFA", "PPA", "IPS"} <= set(prefs["roi"])
    assert dict(zip(prefs["roi"], prefs["instruction"], strict=True))["IPS"] == "IU3"


def test_planted_maps_can_be_switched(gt):
    n_before = len(gt.image)
    gt.selectbox(key="gt_map").set_value("prf_ecc").run()
    _ok(gt)
    assert len(gt.image) == n_before
    assert "pRF eccentricity" in gt.selectbox(key="gt_map").format_func("prf_ecc")
    gt.selectbox(key="gt_map").set_value("numerosity_pref").run()
    _ok(gt)


def test_recovered_best_instruction_beside_planted(gt):
    # the tiny grid ran IU1 and IC only: the table compares planted and recovered per ROI
    recovery = gt.dataframe[1].value
    assert {"roi", "subject", "planted", "recovered best", "planted rank", "match"} <= set(
        recovery.columns
    )
    assert set(recovery["recovered best"]) <= {"IU1", "IC"}
    assert any("ranks first" in m.label for m in gt.metric)
    # planted driver map and recovered best-instruction map side by side
    assert len(gt.image) >= 3


def test_eccentricity_comparison_runs_on_demand(gt):
    gt.selectbox(key="gt_ecc_model").set_value("tiny-llava").run()
    gt.button(key="gt_ecc_run").click().run()
    _ok(gt)
    labels = [m.label for m in gt.metric]
    assert any("Spearman" in label for label in labels), labels
    assert len(gt.image) >= 5  # planted and recovered eccentricity maps


def test_measured_dataset_has_no_ground_truth(gt, monkeypatch):
    from pages import ui

    ds = ui.get_dataset("demo")
    monkeypatch.setattr(ds, "simulated", False)
    gt.run()
    _ok(gt)
    assert "no planted ground truth" in texts(gt)
    assert not gt.dataframe


def test_selections_live_in_the_url(app):
    """A link reopens the page's selections (subject, planted map, model, layer, eccentricity
    encoder and instruction) and the page writes them back into the URL."""
    from core.results.selection import best_layers
    from pages import ui

    table = ui.get_roi_table("demo", ui.stamp("demo"))
    layers = sorted(table[table["model"] == "tiny-llava"]["layer"].unique())
    other = next(x for x in layers if x != best_layers(table)["tiny-llava"])
    params = {"subject": "subj02", "planted": "prf_ecc", "model": "tiny-llava",
              "layer": str(other), "ecc_model": "tiny-llava", "ecc_instruction": "IC"}
    for k, v in params.items():
        app.query_params[k] = v
    app.switch_page(PATH)  # opened directly (another page's run would drop these params)
    at = app.run()
    _ok(at)
    assert at.selectbox(key="gt_subject").value == "subj02"
    assert at.selectbox(key="gt_map").value == "prf_ecc"
    assert at.selectbox(key="gt_layer_tiny-llava").value == other
    assert at.selectbox(key="gt_ecc_ins").value == "IC"
    for k, v in params.items():
        assert at.query_params.get(k) in (v, [v]), (k, at.query_params)
