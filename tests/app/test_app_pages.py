"""AppTest: every page loads on the demo with a tiny grid, shows the simulated badge, and its main
interaction works."""

from __future__ import annotations

import shutil

import pytest

from tests.app.apptools import page, texts
from tests.app.conftest import PAGES


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_loads_with_badge(app, path):
    at = page(app, path)
    _ok(at)
    assert at.title, "page has no title"
    assert "SIMULATED data" in texts(at)


@pytest.mark.parametrize("path", [PAGES[0], "pages/paper.py"])
def test_the_glossary_is_in_every_pages_sidebar(app, path):
    """The router draws the glossary in the sidebar, whatever the page (checked on a page's
    first run: AppTest drops the sidebar's elements from its tree on later runs)."""
    app.switch_page(path)
    app.run()
    _ok(app)
    glossary = next(e for e in app.expander if e.label.startswith("Glossary"))
    shown = "\n".join(m.value for m in glossary.markdown)
    for term in ("Response embedding", "Stored encoder", "Noise ceiling (NC)",
                 "Normalized alignment", "Training z units", "CV-best layer", "ROI", "Target"):
        assert f"**{term}**" in shown, term


def test_explore_runs_inference_and_prediction(app):
    at = page(app, PAGES[0])
    at.selectbox(key="ex_model").set_value("tiny-llava")
    at.selectbox(key="ex_instruction").set_value(
        next(o for o in at.selectbox(key="ex_instruction").options if o.startswith("IC "))
    )
    at.run()
    at.button(key="ex_run").click().run()
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) >= {"Inference time", "From cache", "Tokens"}
    assert at.info, "no response shown"
    # predicted and measured maps (dataset image) and the ROI chart
    assert len(at.image) >= 1
    assert "prediction vs measurement" in texts(at)
    # ROI highlight (what a chart click sets) redraws the maps
    at.selectbox(key="ex_roi").set_value("FFA").run()
    _ok(at)
    # second click: from the cache
    at.button(key="ex_run").click().run()
    assert {m.label: m.value for m in at.metric}["From cache"] == "yes"
    assert len(at.get("download_button")) >= 2


def test_explore_free_text_offers_to_compute_encoder(app):
    at = page(app, PAGES[0])
    at.selectbox(key="ex_model").set_value("tiny-llava").run()
    at.selectbox(key="ex_instruction").set_value("✏️ Free text…").run()
    at.text_input(key="ex_free").set_value("Is it raining?").run()
    _ok(at)
    assert "No stored encoder" in texts(at)
    assert any("Compute the encoder" in b.label for b in at.button)
    at.button(key="ex_run").click().run()  # the response still runs
    _ok(at)
    assert {m.label for m in at.metric} >= {"Inference time"}


def test_explore_missing_demo_model_is_an_empty_state(app):
    from core.models.registry import ModelError, resolve

    try:
        resolve("demo-vlm")
        pytest.skip("the demo model is installed")
    except ModelError:
        pass
    at = page(app, PAGES[0])
    at.selectbox(key="ex_model").set_value("demo-vlm").run()
    at.button(key="ex_run").click().run()
    _ok(at)
    assert "Model not available" in texts(at)


@pytest.mark.parametrize("path", [PAGES[0], "pages/instructions.py", "pages/ground_truth.py"])
def test_a_layer_link_shows_that_layer_without_a_widget_warning(app, path, monkeypatch):
    """``layer=L`` opens layer L (on Explore even where no encoder is stored there yet: it offers
    to fit one), and no widget gets both a default and a session-state value (Streamlit's
    warning)."""
    from streamlit.elements.lib import policies

    from core.results.selection import best_layers
    from pages import ui

    warned = []
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies._LOGGER, "warning", lambda msg, *a, **k: warned.append(msg % a))
    table = ui.get_roi_table("demo", ui.stamp("demo"))
    other = next(x for x in sorted(table[table["model"] == "tiny-llava"]["layer"].unique())
                 if x != best_layers(table)["tiny-llava"])  # fmt: skip
    for k, v in {"model": "tiny-llava", "instruction": "IC", "layer": str(other)}.items():
        app.query_params[k] = v
    app.switch_page(path)
    at = app.run()
    _ok(at)
    key = {PAGES[0]: "ex_layer_tiny-llava_IC_subj01", "pages/instructions.py":
           "ci_layer_tiny-llava"}.get(path, "gt_layer_tiny-llava")  # fmt: skip
    assert at.selectbox(key=key).value == other
    assert at.query_params.get("layer") in (str(other), [str(other)])
    if path == PAGES[0]:  # the grid kept the CV-best layer's encoders only
        assert any(f"Compute the encoder (layer {other})" in b.label for b in at.button)
    at.run()
    assert not warned, warned


def test_explore_gallery_filters(app):
    at = page(app, PAGES[0])
    at.multiselect(key="ex_f_environment").set_value(["street"]).run()
    _ok(at)
    n_street = int(next(c.value for c in at.caption if "images match" in c.value).split()[0])
    at.text_input(key="ex_ids").set_value("0-9").run()
    n_ids = int(next(c.value for c in at.caption if "images match" in c.value).split()[0])
    assert 0 < n_ids <= min(10, n_street)


def test_compare_instructions_interactions(app):
    at = page(app, PAGES[1])
    _ok(at)
    at.radio(key="ci_across").set_value("targets").run()
    at.selectbox(key="ci_ref").set_value("IU1").run()
    at.selectbox(key="ci_metric").set_value("r_mean").run()
    at.selectbox(key="ci_roi").set_value("V1").run()
    _ok(at)
    assert len(at.image) >= 3  # A, B, difference
    assert len(at.get("download_button")) >= 4


def test_compare_instructions_says_how_to_fit_the_controls_and_plots_answer_length(app):
    at = page(app, PAGES[1])
    _ok(at)
    shown = texts(at)
    assert "Is it the image, the words or the length?" in shown
    assert "--models tiny-llava text:tiny-llava length:tiny-llava" in shown  # not fitted here
    assert "Do longer answers align better?" in shown  # the answers' lengths are stored


def test_models_page_interactions(app):
    at = page(app, PAGES[2])
    _ok(at)
    at.radio(key="mb_layer").set_value("last").run()
    at.selectbox(key="mb_ins").set_value("best instruction per ROI").run()
    at.selectbox(key="mb_roi").set_value("V2").run()
    _ok(at)
    assert "noise ceiling" in texts(at)
    assert "V2" in at.multiselect(key="mb_curve_rois").value  # the picked ROI gets its curve


def test_partitions_page_interactions(app):
    at = page(app, PAGES[3])
    _ok(at)
    n_all = len(at.image)
    at.selectbox(key="vp_roi").set_value("V1").run()
    _ok(at)
    assert len(at.image) < n_all  # one Venn figure instead of one per ROI


def test_pipeline_page_clears_inference_cache(app):
    from core.dashboard.home_status import inference_cache_entries

    at = page(app, PAGES[4])
    _ok(at)
    assert at.dataframe, "no tables"
    at.checkbox(key="pl_confirm").check().run()
    at.button(key="pl_clear").click().run()
    _ok(at)
    assert any("Removed" in s.value for s in at.success)
    assert inference_cache_entries() == 0


def test_empty_states_offer_background_jobs(app, tmp_path, monkeypatch, demo_small_root):
    """A home with the demo but no results: the app starts the first start by itself (and
    every results page still offers to start the grid); a home without the demo starts
    building it."""
    import pages.ui.first_start as first  # where the app starts a first start by itself
    import pages.ui.frame as shared  # where the job buttons start jobs

    started = []

    def fake_start(name, args):
        started.append((name, args))
        from core.pipeline.jobs import JobStatus

        return JobStatus(name=name, state="absent", argv=args)

    monkeypatch.setattr(shared, "start_job", fake_start)
    monkeypatch.setattr(first, "start_job", fake_start)
    home = tmp_path / "home"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "demo").symlink_to(demo_small_root)
    monkeypatch.setenv("BRAINPROMPT_HOME", str(home))
    at = page(app, PAGES[1])
    _ok(at)
    assert "No results yet" in texts(at)
    assert started[0] == ("grid-demo", ["first-start", "--dataset", "demo"])  # no button
    at.button(key="start_grid-demo").click().run()
    assert started and started[-1] == ("grid-demo", ["run", "--dataset", "demo"])

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("BRAINPROMPT_HOME", str(empty))
    import streamlit as st

    st.cache_resource.clear()
    at2 = page(app, PAGES[0])
    assert "Building the **simulated** demo world" in texts(at2)
    assert started[-1] == ("demo-build", ["demo", "ensure", "--quiet"])


def test_first_screen_predicts_a_held_out_image_by_itself(app, monkeypatch):
    """Explore's first screen runs the default model on a held-out test image and shows its
    predicted maps without Run; while a first start runs, a view without an encoder says so
    (no button) and the sidebar shows the progress."""
    import os
    import time

    import core.models.registry as registry
    from core.pipeline.jobs import job_dir
    from core.storage import write_json

    monkeypatch.setattr(registry, "DEFAULT_MODEL", "tiny-llava")  # the model the grid fitted
    at = page(app, PAGES[0])
    _ok(at)
    stimulus = at.selectbox(key="ex_stimulus").value
    assert "held-out test image" in texts(at), texts(at)
    what = next(e for e in at.expander if e.label == "What am I looking at?")
    assert what.proto.expanded and "response embedding" in what.markdown[0].value
    assert {m.label for m in at.metric} >= {"Inference time"}
    assert len(at.image) >= 3  # stimulus, predicted and measured maps

    # a first start running: a view without an encoder shows its response (run by itself)
    # and says its map is coming; the sidebar shows the progress
    status = job_dir("grid-demo") / "status.json"
    write_json(status, {"name": "grid-demo", "argv": ["first-start", "--dataset", "demo"],
                        "pid": os.getpid(), "state": "running", "started": time.time()})  # fmt: skip
    (status.parent / "log.txt").write_text("[first start 1/2] extracting the responses\n")
    try:
        from streamlit.testing.v1 import AppTest

        from tests.app.conftest import APP

        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params["instruction"] = "VR"  # no encoder for VR
        at.run()
        _ok(at)
        assert "Computing the first results" in texts(at)
        assert "Response" in texts(at) and not at.warning
        assert at.selectbox(key="ex_stimulus").value == stimulus
        assert [p for p in at.get("progress")
                if "Step 1 of 2: extracting the responses" in str(p.proto)]  # fmt: skip
    finally:
        status.unlink()


def test_pipeline_page_shows_a_running_engine_job(app):
    """A grid running anywhere (CLI, a Ray driver) shows its units, rate and ETA."""
    from core.pipeline.engine import Progress, progress_path

    bar = Progress("demo", "extraction", 40, "resp", "ray", show=False)
    bar.update(10)
    try:
        at = page(app, "pages/pipeline.py")
        _ok(at)
        shown = [p for p in at.get("progress") if "extraction on ray: 10/40 resp" in str(p.proto)]
        assert shown, [str(p.proto) for p in at.get("progress")]
    finally:
        progress_path("demo").unlink()


def test_paper_page_without_a_report_shows_the_command(app):
    from core.pipeline.reproduce import report_dir

    shutil.rmtree(report_dir("demo"), ignore_errors=True)
    at = page(app, "pages/paper.py")
    _ok(at)
    assert "python -m core reproduce paper --dataset demo" in texts(at)
    assert any("reproduction" in b.label for b in at.button)


def test_paper_page_shows_the_report_beside_the_paper(app):
    from core.pipeline.grid import GridConfig
    from core.pipeline.reproduce import report_dir, write_report
    from core.results.fit import FitSettings

    config = GridConfig(dataset="demo", models=["tiny-llava", "vision:tiny-llava"],
                        instructions=["IU1", "IC"], subjects=["subj01", "subj02"],
                        settings=FitSettings(n_permutations=50, max_new_tokens=6, n_boot=200))  # fmt: skip
    try:
        write_report("demo", config, {"InstructBLIP": "tiny-llava", "ViT-H": "vision:tiny-llava"})
        at = page(app, "pages/paper.py")
        _ok(at)
        assert "SIMULATED demo analog" in texts(at)
        table = at.dataframe[0].value
        assert {"measured", "paper", "difference"} <= set(table.columns)
        assert set(table["paper"].round(2)) <= {0.67, 0.84, 0.49, 0.55}
        assert len(at.image) >= 2  # the ROI-group figure and the layer curves
    finally:
        shutil.rmtree(report_dir("demo"), ignore_errors=True)
