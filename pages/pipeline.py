"""Pipeline: configured datasets, the grid in the background with progress that survives reloads,
cache and artifact status, clearing the inference cache."""

from __future__ import annotations

import streamlit as st

from core.dashboard import dashboard_jobs, home_status
from core.data.registry import configured
from core.models.instructions import PAPER_IDS
from core.models.registry import DEFAULT_MODEL, available
from core.pipeline.engine import progress_line, read_progress
from core.results.tables import grid_settings
from pages import ui

ds = ui.page_header(
    "Pipeline",
    "Run the encoding grid in the background (extraction, fits, scores, partitions); it keeps "
    "running across page switches and browser reloads and resumes where it stopped.",
)
name = ds.name

st.subheader("Datasets")
entries = configured()
st.dataframe(home_status.datasets_frame(entries), hide_index=True, width="stretch")
if len(entries) == 1:
    st.caption(
        "Only the simulated demo is configured. Real datasets (NSD, Algonauts 2023) are added "
        "from the command line: `python -m core datasets add nsd|algonauts PATH`."
    )
real = [n for n, e in entries.items() if e["kind"] != "demo"]
if real:
    which = st.selectbox("Validate a real dataset folder", real, key="pl_validate_which")
    if st.button("Validate", key="pl_validate"):
        with st.spinner("Checking the files…"):
            try:
                st.session_state["pl_report"] = (which, home_status.validation_report(which))
            except Exception as exc:  # a broken folder must not break the page
                st.session_state["pl_report"] = (which, None)
                st.error(f"Validation failed: {exc}")
    report = st.session_state.get("pl_report")
    if report and report[0] == which and report[1] is not None:
        st.dataframe(report[1], hide_index=True, width="stretch")

st.subheader(f"Grid on {name}")
table = ui.get_roi_table(name, ui.stamp(name))
known_models = list(dict.fromkeys([*table.get("model", []), DEFAULT_MODEL,
                                   f"random:{DEFAULT_MODEL}", f"vision:{DEFAULT_MODEL}",
                                   *available()]))  # fmt: skip
default_models = [m for m in dict.fromkeys(table.get("model", []))] or [
    DEFAULT_MODEL, f"random:{DEFAULT_MODEL}", f"vision:{DEFAULT_MODEL}"
]
settings = grid_settings(name)
with st.form("pl_grid"):
    models = st.multiselect("Models", known_models, default=default_models, key="pl_models")
    instructions = st.multiselect("Instructions", PAPER_IDS, default=list(PAPER_IDS),
                                  key="pl_instructions")  # fmt: skip
    c0, c1, c2, c3 = st.columns(4)
    methods = ["analytic", "permutation", "none"]
    p_values = c0.selectbox(
        "P-values", methods, index=methods.index(settings.p_values), key="pl_pvalues",
        help="analytic: exact t null of Pearson r, fine enough for FDR over 40,000 targets; "
        "permutation: smallest p is 1/(permutations + 1); none: shown as not computed",
    )  # fmt: skip
    permutations = c1.number_input("Permutations", 0, 10000, settings.n_permutations, step=50,
                                   disabled=p_values != "permutation")  # fmt: skip
    tokens = c2.number_input("Max new tokens", 1, 512, settings.max_new_tokens)
    subjects = c3.multiselect("Subjects (empty = all)", ds.subject_names, key="pl_subjects")
    submitted = st.form_submit_button("Start the grid in the background", type="primary")
job = dashboard_jobs.grid_job_name(name)
args = dashboard_jobs.grid_job_args(
    name, models, instructions, int(permutations), int(tokens), subjects, p_values
)
st.caption("Command: `python -m core " + " ".join(args) + "`")
if submitted:
    from core.pipeline.jobs import job_status, start_job

    if job_status(job).running:
        st.warning("The grid is already running.")
    elif not models or not instructions:
        st.warning("Choose at least one model and one instruction.")
    else:
        start_job(job, args)
        st.session_state[f"_job_{job}"] = "running"
        st.rerun()
ui.job_log(job)
progress = read_progress(name)
if progress is not None:  # a grid started here or anywhere else (CLI, a Ray cluster driver)
    st.progress(min(1.0, progress["done"] / max(progress["total"], 1)),
                text=progress_line(progress))  # fmt: skip
if not table.empty:
    st.caption(
        f"Results: {len(table)} ROI rows, {table['model'].nunique()} models, "
        f"{table['instruction'].nunique()} instructions, {table['subject'].nunique()} subjects."
    )

st.subheader("Background jobs")
jobs = home_status.jobs_frame()
if jobs.empty:
    st.caption("No job has run yet.")
else:
    st.dataframe(jobs, hide_index=True, width="stretch")

st.subheader("Cache and artifacts")
status = home_status.artifact_status()
st.dataframe(status, hide_index=True, width="stretch")
ui.downloads(status, "artifact_status", "pl_status")
n_cache = home_status.inference_cache_entries()
c4, c5 = st.columns([2, 3])
c4.metric("Cached inferences", n_cache)
with c5:
    confirm = st.checkbox("Yes, delete every cached response", key="pl_confirm")
    if st.button("Clear the inference cache", disabled=not confirm, key="pl_clear"):
        removed = home_status.clear_inference_cache()
        st.session_state.pop("ex_result", None)
        st.success(f"Removed {removed} cached inference(s).")
