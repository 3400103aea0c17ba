"""A first start: the view Explore opens on is fitted first (its model's last layer, then every
other layer), each encoder kept and merged into the results table as it lands; the app starts
it by itself only on a demo home without results."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.results.fit import FitSettings
from tests.pipeline.conftest import populate_home

SETTINGS = FitSettings(n_permutations=50, max_new_tokens=6, n_boot=100)


@pytest.fixture
def own_home(tmp_path, monkeypatch, tiny_llava_folder):
    """A fresh home with the small demo and the tiny LLaVA; the grid's settings recorded as the
    test's (so on-demand fits join the results table, as they do after a first grid)."""
    from core.results.tables import results_dir
    from core.storage import write_json

    monkeypatch.setenv("BRAINPROMPT_HOME", str(tmp_path / "home"))
    populate_home(tmp_path / "home", tiny_llava_folder)
    write_json(results_dir("demo") / "grid.json", {"config": {"settings": SETTINGS.to_dict()}})
    return tmp_path / "home"


def test_first_view_is_explores_first_choice():
    from core.models.instructions import PAPER_INSTRUCTIONS
    from core.models.registry import DEFAULT_MODEL
    from core.pipeline.first_view import first_view, layer_order

    view = first_view(SimpleNamespace(name="demo", subject_names=["subj01", "subj02"]))
    assert (view.subject, view.model, view.instruction) == (
        "subj01", DEFAULT_MODEL, PAPER_INSTRUCTIONS[0].id)
    assert layer_order(5) == [4, 3, 2, 1, 0]  # the last layer first


def test_first_view_fits_every_layer_last_first_and_keeps_the_encoders(own_home):
    from core.dashboard.first_start import due, has_results, landed_stamp
    from core.dashboard.stored_encoders import encoder_table
    from core.pipeline.first_view import FirstView, run_first_view
    from core.results.selection import best_layers
    from core.results.tables import load_roi_table

    ds = SimpleNamespace(name="demo", kind="demo")
    assert not has_results("demo") and due(ds, "absent")
    assert not due(ds, "failed") and not due(SimpleNamespace(name="demo", kind="nsd"), "absent")
    before = landed_stamp("demo")
    said = []
    view = FirstView("demo", "subj01", "tiny-llava", "IU1")
    best = run_first_view(view, SETTINGS, progress=False, say=said.append)
    assert "last layer" in said[0]
    assert [s.rsplit(" ", 1)[-1] for s in said[1:]] == ["1", "0"]  # 3 hidden states: 2, 1, 0
    enc = encoder_table("demo")
    assert sorted(enc["layer"]) == [0, 1, 2] and set(enc["instruction"]) == {"IU1"}
    table = load_roi_table("demo")
    assert sorted(table["layer"].unique()) == [0, 1, 2]
    assert best == best_layers(table)["tiny-llava"]
    assert has_results("demo") and not due(ds, "absent")  # never twice on a home with results
    assert landed_stamp("demo") != before


def test_first_start_progress_reads_its_log():
    from core.dashboard.dashboard_jobs import first_start_args, grid_job_name
    from core.dashboard.first_start import progress

    assert progress("Loading weights: 100%|█| 113/113 [00:00<00:00]") is None
    log = ("[first start 1/2] extracting the responses of demo-vlm to IU1\n"
           "demo-vlm on demo:  41%|████▏     | 497/1200 [00:03<00:04, 167.30resp/s]\n")
    p = progress(log)
    assert (p.step, p.steps, p.detail) == (1, 2, "demo-vlm on demo: 497/1200")
    assert abs(p.fraction - 497 / 1200) < 1e-9
    p = progress(log + "[first start 2/2] the default grid\n")
    assert (p.step, p.text, p.detail, p.fraction) == (2, "the default grid", "", None)
    assert grid_job_name("demo") == "grid-demo"
    assert first_start_args("demo") == ["first-start", "--dataset", "demo"]


def test_the_gallery_opens_on_a_held_out_image():
    import numpy as np

    from core.dashboard.gallery import default_stimulus

    assert default_stimulus(np.arange(10), np.array([7, 3])) == 3
    assert default_stimulus(np.arange(5), np.array([9])) == 0  # no test image among them
    assert default_stimulus(np.array([], int), np.array([1])) is None
