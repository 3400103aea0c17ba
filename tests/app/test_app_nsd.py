"""AppTest on an NSD-format dataset (the tiny fsaverage fixture of tests/data, registered with
``datasets add`` and fitted with the tiny vision tower): the paper's ROIs and groups as the
default view, NSD's fine labels one click away (kept in the URL)."""

from __future__ import annotations

import pytest

from core.data.roi_groups import PAPER_ROIS, ROI_GROUPS
from tests.data.fixtures_nsd import FAMILIES, write_nsd

NAME = "nsd-app"


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture(scope="module")
def nsd_results(tiny_grid, tmp_path_factory):
    """The fixture folder registered in fsaverage as ``nsd-app`` with the vision tower's fits."""
    from core.data.registry import unregister
    from core.pipeline.cli import main
    from core.pipeline.grid import GridConfig, run_grid
    from core.results.fit import FitSettings

    fixture = write_nsd(tmp_path_factory.mktemp("nsd-app") / "nsd", subjects=("subj01",),
                        sessions=(1,), volume_formats=("nifti",))  # fmt: skip
    assert main(["datasets", "add", "nsd", str(fixture.root), "--name", NAME,
                 "--space", "fsaverage"]) == 0  # fmt: skip
    config = GridConfig(dataset=NAME, models=["vision:tiny-llava"], instructions=["IC"],
                        settings=FitSettings(p_values="none", n_boot=0), pairs=[],
                        extract_batch_size=16, jobs=1)  # fmt: skip
    run_grid(config, progress=False)
    yield fixture
    unregister(NAME, purge=True)


def _models_page(app, **params):
    """The Models page opened through a link (AppTest keeps sidebar widgets for one run only, so
    each view is opened as a link would open it)."""
    for k, v in {"dataset": NAME, **params}.items():
        app.query_params[k] = v
    at = app.switch_page("pages/models.py").run()
    _ok(at)
    return at


def test_default_view_is_the_papers_rois_and_groups(app, nsd_results):
    at = _models_page(app, tool="inspect", select="roi")
    toggle = at.radio(key="roi_view")
    assert toggle.value == "paper"
    assert toggle.options == ["paper groups", "NSD fine labels"]
    shown = at.multiselect(key="mb_curve_rois").options
    expected = ["general"] + [n for g, rois in ROI_GROUPS.items() for n in (g, *rois)]
    assert shown == expected
    assert not {"V1v", "FFA-1", "early"} & set(shown)
    assert "rois" not in at.query_params  # the default view leaves the URL alone
    assert at.selectbox(key="mb_inspect_roi").options == list(PAPER_ROIS)  # maps: paper ROIs


def test_fine_toggle_gives_the_31_labels_and_goes_into_the_url(app, nsd_results):
    at = _models_page(app)
    at.radio(key="roi_view").set_value("fine").run()
    _ok(at)
    fine = [n for names in FAMILIES.values() for n in names.values()]
    assert len(fine) == 31
    assert at.multiselect(key="mb_curve_rois").options == ["general", *fine]
    assert at.query_params.get("rois") == "fine"


def test_link_with_fine_labels_reopens_them(app, nsd_results):
    at = _models_page(app, rois="fine", tool="inspect", select="roi")
    assert at.radio(key="roi_view").value == "fine"
    fine = [n for names in FAMILIES.values() for n in names.values()]
    assert at.selectbox(key="mb_inspect_roi").options == fine  # maps: every fine label


def test_demo_has_no_roi_toggle(app, nsd_results):
    at = app.switch_page("pages/models.py").run()
    _ok(at)
    assert not [r for r in at.radio if r.key == "roi_view"]
    assert "V1" in at.multiselect(key="mb_curve_rois").options


def test_first_load_runs_in_the_background(app, tmp_path):
    """An uncached NSD dataset: the page starts its first load as a background job, says so and
    returns without reading a beta; once the job is done the dataset opens from its cache."""
    import time

    from core.data.nsd_cache import pending_subjects
    from core.data.registry import open_dataset, unregister
    from core.pipeline.cli import main
    from core.pipeline.jobs import job_status
    from pages.ui.loaders import get_dataset
    from tests.app.apptools import texts

    name = "nsd-first"
    fixture = write_nsd(tmp_path / "nsd", subjects=("subj01",), sessions=(1, 2),
                        volume_formats=("nifti",))  # fmt: skip
    assert main(["datasets", "add", "nsd", str(fixture.root), "--name", name]) == 0
    try:
        assert pending_subjects(open_dataset(name)) == ["subj01"]
        app.query_params["dataset"] = name
        at = app.switch_page("pages/instructions.py").run()
        _ok(at)
        assert "loading in the background" in texts(at)
        assert not get_dataset(name)._subjects  # the page read no subject
        job = job_status(f"load-{name}")
        assert job.state in ("running", "done") and job.argv == ["datasets", "load", name]
        deadline = time.time() + 180
        while job_status(f"load-{name}").running and time.time() < deadline:
            time.sleep(0.5)
        done = job_status(f"load-{name}")
        assert done.state == "done", done.log_tail()
        assert "subj01: loaded and cached" in done.log_tail()
        assert pending_subjects(open_dataset(name)) == []
        get_dataset.clear()
        at = app.switch_page("pages/instructions.py").run()
        _ok(at)
        assert "loading in the background" not in texts(at)
        assert "No results yet" in texts(at)  # the dataset is open: its empty results state
        assert get_dataset(name).subject("subj01").n_targets > 0
    finally:
        unregister(name, purge=True)


@pytest.fixture(scope="module")
def nsd_volume_results(nsd_results):
    """The same folder registered in func1pt8mm (no transform files) as ``nsd-vol``, fitted on
    the embeddings the fsaverage registration extracted (shared by stimulus content)."""
    from core.data.registry import unregister
    from core.pipeline.cli import main
    from core.pipeline.grid import GridConfig, run_grid
    from core.results.fit import FitSettings

    assert main(["datasets", "add", "nsd", str(nsd_results.root), "--name", "nsd-vol"]) == 0
    run_grid(GridConfig(dataset="nsd-vol", models=["vision:tiny-llava"], instructions=["IC"],
                        settings=FitSettings(p_values="none", n_boot=0), pairs=[],
                        extract_batch_size=16, jobs=1), progress=False)  # fmt: skip
    yield "nsd-vol"
    unregister("nsd-vol", purge=True)


def test_volume_without_transforms_shows_slices_and_names_the_files(app, nsd_volume_results):
    from tests.app.apptools import texts

    app.query_params["dataset"] = nsd_volume_results
    app.query_params["tool"] = "3d"
    at = app.switch_page("pages/models.py").run()
    _ok(at)
    shown = texts(at)
    assert "No flat map" not in shown
    assert at.image, "the map is drawn (on volume slices)"
    assert "8 of NSD's transform files missing in nsddata/ppdata/subj01/transforms/" in shown
    assert "lh.func1pt8-to-layerB1.mgz" in shown and "drawn on volume slices" in shown
    assert "No 3D surface view" in shown  # the 3D tool says why, naming the files too
    labels = {b.label for b in at.get("download_button")}
    assert "⬇ All figures (ZIP with captions)" in labels
