"""The first start on a page: on a home with the demo and no results the app starts the grid by
itself (the encoders of the view Explore opens on first), shows its progress in the sidebar of
every page, and reruns the page when results land."""

from __future__ import annotations

import time

import streamlit as st

from core.dashboard import dashboard_jobs, first_start
from core.pipeline.jobs import JobStatus, job_status, start_job
from pages.ui.loaders import get_dataset

_SEEN = "_first_start_seen"


def auto_start(name: str) -> None:
    """Start the first start of dataset ``name`` in the background when it is due (see
    :func:`core.dashboard.first_start.due`); the router calls it on every page. A dataset that
    does not open yet (the demo being built) is left to the page header."""
    try:
        ds = get_dataset(name)
    except Exception:  # noqa: BLE001 - the page header shows why (or builds the demo)
        return
    job = dashboard_jobs.grid_job_name(name)
    if first_start.due(ds, job_status(job).state):
        start_job(job, dashboard_jobs.first_start_args(name))
        st.session_state[f"_job_{job}"] = "running"


def status(name: str) -> JobStatus | None:
    """The running first start of dataset ``name`` (None when none runs)."""
    current = job_status(dashboard_jobs.grid_job_name(name))
    if current.running and current.argv[:1] == ["first-start"]:
        return current
    return None


def progress_panel(name: str) -> None:
    """While a first start runs: its step, progress bar and elapsed time (refreshed every 2 s),
    and a rerun of the page whenever results land. Call inside the sidebar."""
    if status(name) is None and not st.session_state.get(_SEEN):
        return
    _panel(name, first_start.landed_stamp(name))


@st.fragment(run_every=2.0)
def _panel(name: str, shown: str) -> None:
    current = status(name)
    if current is None:  # finished since the page was drawn: show the final results once
        if st.session_state.pop(_SEEN, False):
            st.rerun(scope="app")
        return
    st.session_state[_SEEN] = True
    st.markdown("**Computing the first results**")
    p = first_start.progress(current.log_tail(4000))
    st.progress(min(1.0, p.fraction or 0.0) if p else 0.0, text=describe(current, p))
    st.caption(
        "Started by itself on a home with no results: the brain map Explore opens on first "
        "(about a minute), then every model, instruction and layer (about 10 minutes on 2 cores). "
        "Pages fill in as results land."
    )
    if first_start.landed_stamp(name) != shown:
        st.rerun(scope="app")


def describe(current: JobStatus, p: first_start.FirstStartProgress | None) -> str:
    """One line: the first start's step, what its progress bar counts, and the elapsed time."""
    elapsed = max(0.0, time.time() - (current.started or time.time()))
    if p is None:
        return f"starting… ({elapsed:.0f} s)"
    return f"Step {p.step} of {p.steps}: {p.text}" + (f" · {p.detail}" if p.detail else "") + (
        f" ({elapsed:.0f} s)")  # fmt: skip
