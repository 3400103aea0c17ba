"""The page frame: charts, the dataset picker, headers and badges, background-job buttons and logs, empty states."""

from __future__ import annotations

import time

import streamlit as st

from core.data.dataset import DatasetError
from core.data.registry import configured
from core.models.roles import model_label  # noqa: F401  (the pages' menus use ui.model_label)
from core.pipeline.jobs import job_status, start_job
from core.storage import ArtifactError
from core.viz import views
from pages.ui.links import DATASET_KEY, ROI_KEY_SUFFIX, from_url, link
from pages.ui.loaders import ROI_VIEW_KEY, get_dataset, get_subject


@st.cache_data(show_spinner=False, max_entries=256)
def _chart_spec(fn_path: str, args: tuple, kwargs: dict, without_data: bool) -> dict:
    import importlib

    import altair as alt

    module, _, name = fn_path.rpartition(".")
    fn = getattr(importlib.import_module(module), name)
    with alt.data_transformers.enable("default", max_rows=None):
        spec = fn(*args, **kwargs).to_dict()
    if without_data:
        spec.pop("datasets", None)
        spec.pop("data", None)
    return spec


def chart(where, fn, *args, data=None, key=None, on_select="ignore", width="stretch",
          height="content", **kwargs):  # fmt: skip
    """Draw the Altair chart ``fn(*args, **kwargs)`` (a chart function of ``core.viz``).

    Its Vega-Lite spec is cached by the arguments (Altair builds and validates a spec in tens of
    milliseconds per chart, which reruns would otherwise pay every time); ``data`` (a large
    table) is sent beside the spec as Arrow instead of inside it.
    """
    spec = _chart_spec(f"{fn.__module__}.{fn.__qualname__}", args, kwargs, data is not None)
    return where.vega_lite_chart(data, spec, key=key, on_select=on_select, width=width,
                                 height=height)  # fmt: skip


def dataset_picker() -> str:
    """The dataset selector in the sidebar (shared by every page)."""
    names = list(configured())
    from_url(DATASET_KEY, "dataset", names)
    if st.session_state.get(DATASET_KEY) not in names:
        st.session_state[DATASET_KEY] = names[0]
    choice = st.sidebar.selectbox(
        "Dataset", names, key=DATASET_KEY, help="Add NSD or Algonauts with `python -m core datasets add`"
    )
    link(dataset=choice)
    return choice


def simulated_badge() -> None:
    st.badge("SIMULATED data", icon=":material/science:", color="red")


def page_header(title: str, caption: str):
    """Title, the dataset (opened, cached) and its simulated-data badge.

    When the demo is not built yet, shows the build progress (starting the build in the
    background) and stops the page; a real dataset that fails to open shows its error.
    """
    _ensure_router()
    name = st.session_state.get(DATASET_KEY, "demo")
    st.title(title)
    try:
        ds = get_dataset(name)
    except (DatasetError, ArtifactError) as exc:
        if name == "demo":
            simulated_badge()
            _demo_build_state()
        else:
            st.error(f"The dataset **{name}** cannot be opened: {exc}")
        st.stop()
    if ds.simulated:
        simulated_badge()
    st.caption(caption)
    first_load_state(ds)
    roi_view_toggle(ds)
    return ds


def first_load_state(ds) -> None:
    """A dataset whose subjects are not cached yet is loaded by a background job (its first load
    reads every session: minutes for NSD), never inside the page: start it, say so, show its
    progress and stop the page; the page reruns by itself when the job is done."""
    from core.dashboard.dashboard_jobs import load_job_args, load_job_name
    from core.data.nsd_cache import pending_subjects

    pending = pending_subjects(ds)
    if not pending:
        return
    job = load_job_name(ds.name)
    status = job_status(job)
    if status.state == "failed":
        st.error(f"The first load of **{ds.name}** failed (see its log below).")
        if st.button("Retry the first load", key=f"retry_{job}"):
            status = start_job(job, load_job_args(ds.name))
    elif not status.running:
        status = start_job(job, load_job_args(ds.name))
    if status.running:
        st.session_state[f"_job_{job}"] = "running"
    st.info(
        f"**{ds.name}** is loading in the background for the first time (subjects "
        f"{', '.join(pending)}): each chosen session is read once and the subject is cached, "
        "so later openings take seconds. This page refreshes by itself when it is done.",
        icon=":material/hourglass_top:",
    )  # fmt: skip
    job_log(job, finished_rerun=True)
    st.stop()


def roi_view_toggle(ds) -> None:
    """The sidebar's "ROIs: paper groups | NSD fine labels" toggle (kept in the URL as
    ``rois=fine``), shown for a finely labelled dataset only (NSD, Algonauts); the loaders read
    it (:func:`pages.ui.loaders.roi_view`)."""
    from core.data.rois import DEFAULT_VIEW, VIEW_LABELS, VIEWS, is_fine_labelled

    names = get_subject(ds.name, ds.subject_names[0]).targets.roi_names()
    if not is_fine_labelled(names):
        st.session_state.pop(ROI_VIEW_KEY, None)
        return
    from_url(ROI_VIEW_KEY, "rois", list(VIEWS))
    view = st.sidebar.radio(
        "ROIs", list(VIEWS), format_func=VIEW_LABELS.get, key=ROI_VIEW_KEY, horizontal=True,
        help="paper groups: the paper's ROIs (V1 = V1v + V1d, FFA = FFA-1 + FFA-2, ...) under "
        "their groups (early visual, bodies, faces, places, words); NSD fine labels: every "
        "label of the dataset (streams included).",
    )  # fmt: skip
    link(rois=None if view == DEFAULT_VIEW else view)


def _ensure_router() -> None:
    """Make sure a session's first page runs inside ``app.py``'s navigation.

    Streamlit decides once per server process whether an app uses the legacy ``pages/`` folder:
    until ``st.navigation`` has run, a request for a page's URL (a deep link opened on a fresh
    server) runs the page file alone, without the router's sidebar, dataset picker and links,
    and with a navigation of the raw files. Then switch to the router and rerun: the same URL
    (page and query) opens through ``app.py``. (Only a session's first run is rerouted: a rerun
    would drop a button click of a later run.)
    """
    if "_page_path" in st.session_state:
        return
    attempts = st.session_state.get("_route_attempts", 0)
    if attempts >= 2:  # not started through app.py at all (e.g. `streamlit run pages/x.py`)
        return
    st.session_state["_route_attempts"] = attempts + 1
    try:
        from streamlit.runtime.pages_manager import PagesManager

        PagesManager.uses_pages_directory = False
    except ImportError:  # a future streamlit without the legacy mode
        return
    st.rerun()


def _demo_build_state() -> None:
    status = job_status("demo-build")
    if status.state in ("absent", "done") or (
        status.state == "failed" and st.button("Retry building the demo")
    ):
        status = start_job("demo-build", ["demo", "ensure", "--quiet"])
    st.info(
        "Building the **simulated** demo world for the first time (about a minute). "
        "This page refreshes by itself."
    )
    job_log("demo-build", finished_rerun=True)


@st.fragment(run_every=2.0)
def _job_log_fragment(name: str, finished_rerun: bool) -> None:
    status = job_status(name)
    if status.running:
        elapsed = time.time() - (status.started or time.time())
        st.caption(f"⏳ `{name}` running for {elapsed:.0f} s")
    elif status.state == "done":
        st.caption(f"✅ `{name}` finished")
    elif status.state == "failed":
        st.error(f"`{name}` failed (return code {status.returncode}); see the log below.")
    tail = status.log_tail(1500).strip()
    if tail:
        st.code(tail, language=None)
    if not status.running and finished_rerun and st.session_state.get(f"_job_{name}") == "running":
        st.session_state[f"_job_{name}"] = status.state
        get_dataset.clear()
        st.rerun(scope="app")
    st.session_state[f"_job_{name}"] = status.state


def job_log(name: str, finished_rerun: bool = True) -> None:
    """The job's state and log tail; refreshes every 2 s (and the whole page once it ends)."""
    status = job_status(name)
    if status.running:
        _job_log_fragment(name, finished_rerun)
    elif status.state != "absent":
        with st.expander(f"Last run of `{name}`: {status.state}", expanded=status.state == "failed"):
            st.code(status.log_tail(3000).strip() or "(no output)", language=None)


def job_button(name: str, args: list[str], label: str, help: str | None = None, key=None) -> None:
    """A button that starts ``python -m core <args>`` in the background (or shows it running)."""
    status = job_status(name)
    if status.running:
        job_log(name)
        return
    if st.button(label, help=help, key=key or f"start_{name}", type="primary"):
        start_job(name, args)
        st.session_state[f"_job_{name}"] = "running"
        st.rerun()
    if status.state != "absent":
        job_log(name)


def no_results_state(name: str) -> None:
    """Empty state when the grid has not run on this dataset."""
    st.info(
        f"No results yet for **{name}**: the encoding grid has not run. It extracts response "
        "embeddings, fits voxelwise encoders and scores them, in the background."
    )
    from core.dashboard.dashboard_jobs import grid_job_name

    job_button(
        grid_job_name(name),
        ["run", "--dataset", name],
        "Run the grid in the background",
        help=f"python -m core run --dataset {name} (resumable; configure it on the Pipeline page)",
    )


def roi_highlight(key: str, rois: list[str], event=None) -> str | None:
    """The highlighted ROI of a page: set by a chart click (``roi_pick``) or the selectbox.

    Call after the chart is drawn with its selection event, and before drawing flatmaps.
    """
    state_key = f"{key}{ROI_KEY_SUFFIX}"
    from_url(state_key, "roi", rois)
    picked = views.selected_roi(event, rois) if event is not None else None
    last = st.session_state.get(f"_{state_key}_last")
    if picked != last:
        st.session_state[f"_{state_key}_last"] = picked
        if picked is not None:
            st.session_state[state_key] = picked
    options = ["(none)", *rois]
    if st.session_state.get(state_key) not in options:
        st.session_state[state_key] = "(none)"
    col, _ = st.columns([1, 2])
    choice = col.selectbox(
        "Highlighted ROI (or click a bar)", options, key=state_key,
        help="Click an ROI in the chart to outline it on the flatmaps; double-click clears.",
    )  # fmt: skip
    link(roi=None if choice == "(none)" else choice)
    return None if choice == "(none)" else choice


def mllm_rows(name: str, stamp: str):
    """The results table's instruction-prompted rows of the open dataset; the page stops with
    the right empty state when there are none (no results yet, or image-only baselines only)."""
    from core.results.fit import IMAGE
    from pages.ui.loaders import get_roi_table

    table = get_roi_table(name, stamp)
    if table.empty:
        no_results_state(name)
        st.stop()
    mllm = table[table["instruction"] != IMAGE]
    if mllm.empty:
        st.info("The results contain no instruction-prompted model yet (only image-only "
                "baselines).")  # fmt: skip
        st.stop()
    return mllm
