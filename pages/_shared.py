"""Layout helpers shared by the pages: cached loaders (keyed by strings), the dataset picker, the
simulated-data badge, empty states, background-job panels and download buttons.

Everything computed comes from ``core``; this module only arranges it on the page.
"""

from __future__ import annotations

import time

import streamlit as st

from core.data.dataset import DatasetError
from core.data.registry import configured, open_dataset
from core.pipeline import result_views, stored_encoders
from core.pipeline.fits import GENERAL, roi_masks
from core.pipeline.grid import results_stamp
from core.pipeline.jobs import job_status, start_job
from core.storage import ArtifactError
from core.viz import views

DATASET_KEY = "dataset"
ROI_KEY_SUFFIX = "_roi"


# --------------------------------------------------------------------------- cached loaders


@st.cache_resource(show_spinner=False, max_entries=4)
def get_dataset(name: str):
    return open_dataset(name)


@st.cache_resource(show_spinner=False, max_entries=8)
def get_subject(name: str, subject: str):
    return get_dataset(name).subject(subject)


@st.cache_resource(show_spinner="Preparing the flatmap…", max_entries=8)
def get_raster(name: str, subject: str):
    from core.viz.flatmap import build_raster

    return build_raster(get_subject(name, subject).targets)


@st.cache_resource(show_spinner=False, max_entries=8)
def get_masks(name: str, subject: str) -> dict:
    """ROI masks (without the whole general mask) for outlines and ROI means."""
    return {k: v for k, v in roi_masks(get_subject(name, subject)).items() if k != GENERAL}


@st.cache_resource(show_spinner=False, max_entries=32)
def get_encoder(key: str):
    from core.encoding.store import load_encoder

    return load_encoder(key)


@st.cache_data(show_spinner=False, max_entries=8)
def get_attributes(name: str):
    attrs = get_dataset(name).stimuli.attributes()
    return attrs


@st.cache_data(show_spinner=False, max_entries=8)
def get_answers(name: str):
    stimuli = get_dataset(name).stimuli
    return stimuli.answers() if hasattr(stimuli, "answers") else None


@st.cache_data(show_spinner=False, max_entries=256)
def get_thumbnail(name: str, stimulus_id: int, size: int = 160) -> bytes:
    import io

    img = get_dataset(name).stimuli.load_image(int(stimulus_id)).copy()
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=8)
def get_roi_table(name: str, stamp: str):
    from core.pipeline.grid import load_roi_table

    return load_roi_table(name, get_dataset(name))  # only rows of the open dataset's content


@st.cache_data(show_spinner=False, max_entries=8)
def get_partition_table(name: str, stamp: str):
    from core.pipeline.partitions import load_partition_table

    return load_partition_table(name, get_dataset(name))


@st.cache_data(show_spinner=False, max_entries=8)
def get_encoder_table(name: str, stamp: str):
    return stored_encoders.encoder_table(name)


@st.cache_data(show_spinner=False, max_entries=256)
def get_target_scores(name: str, subject: str, model: str, instruction: str, layer: int, stamp: str):
    return result_views.target_scores(name, subject, model, instruction, layer)


@st.cache_data(show_spinner=False, max_entries=64)
def get_instruction_stars(
    name: str, stamp: str, model: str, layer: int, reference: str, value: str, across: str,
    subjects: tuple[str, ...],
):  # fmt: skip
    table = get_roi_table(name, stamp)
    return result_views.instruction_stars(
        table, model, layer, reference, value=value, across=across, dataset=name,
        subjects=list(subjects),
    )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=32)
def get_best_instruction(
    name: str, subject: str, model: str, layer: int, instructions: tuple[str, ...], stamp: str
):
    return result_views.best_instruction_labels(name, subject, model, layer, list(instructions))


@st.cache_data(show_spinner=False, max_entries=64)
def render_value_map(
    cache_key: str,
    name: str,
    subject: str,
    highlight: str | None,
    label: str,
    title: str | None,
    symmetric: bool,
    simulated: bool,
    _values,
    limits: tuple[float, float] | None = None,
    cmap: str | None = None,
) -> bytes:
    """PNG of a value flatmap; cached by ``cache_key`` (which must identify ``_values``)."""
    fig = views.value_map(
        get_raster(name, subject),
        _values,
        label=label,
        title=title,
        rois=get_masks(name, subject),
        highlight=highlight,
        symmetric=symmetric,
        limits=limits,
        cmap=cmap,
        simulated=simulated,
    )
    return views.png(fig)


@st.cache_data(show_spinner=False, max_entries=32)
def render_category_map(
    cache_key: str,
    name: str,
    subject: str,
    highlight: str | None,
    title: str | None,
    names: tuple[str, ...],
    simulated: bool,
    _labels,
) -> bytes:
    fig = views.category_map(
        get_raster(name, subject),
        _labels,
        list(names),
        title=title,
        rois=get_masks(name, subject),
        highlight=highlight,
        simulated=simulated,
    )
    return views.png(fig)


def stamp(name: str) -> str:
    """Changes whenever the dataset's results change (part of every results cache key)."""
    return results_stamp(name)


# --------------------------------------------------------------------------- page frame


def dataset_picker() -> str:
    """The dataset selector in the sidebar (shared by every page)."""
    names = list(configured())
    if st.session_state.get(DATASET_KEY) not in names:
        st.session_state[DATASET_KEY] = names[0]
    return st.sidebar.selectbox(
        "Dataset", names, key=DATASET_KEY, help="Add NSD or Algonauts with `python -m core datasets add`"
    )


def simulated_badge() -> None:
    st.badge("SIMULATED data", icon=":material/science:", color="red")


def page_header(title: str, caption: str):
    """Title, the dataset (opened, cached) and its simulated-data badge.

    When the demo is not built yet, shows the build progress (starting the build in the
    background) and stops the page; a real dataset that fails to open shows its error.
    """
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
    return ds


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
    job_button(
        f"grid-{name}",
        ["run", "--dataset", name],
        "Run the grid in the background",
        help=f"python -m core run --dataset {name} (resumable; configure it on the Pipeline page)",
    )


def downloads(df, stem: str, key: str) -> None:
    """CSV and Parquet download buttons for a table."""
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button(
        "⬇ CSV", views.table_bytes(df, "csv"), f"{stem}.csv", "text/csv", key=f"{key}_csv"
    )
    c2.download_button(
        "⬇ Parquet",
        views.table_bytes(df, "parquet"),
        f"{stem}.parquet",
        "application/octet-stream",
        key=f"{key}_pq",
    )


def map_downloads(png: bytes, arrays: dict, stem: str, key: str) -> None:
    """PNG and NPZ download buttons for a map."""
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("⬇ PNG", png, f"{stem}.png", "image/png", key=f"{key}_png")
    c2.download_button(
        "⬇ NPZ",
        views.npz_bytes(**arrays),
        f"{stem}.npz",
        "application/octet-stream",
        key=f"{key}_npz",
    )


def roi_highlight(key: str, rois: list[str], event=None) -> str | None:
    """The highlighted ROI of a page: set by a chart click (``roi_pick``) or the selectbox.

    Call after the chart is drawn with its selection event, and before drawing flatmaps.
    """
    state_key = f"{key}{ROI_KEY_SUFFIX}"
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
    return None if choice == "(none)" else choice


def model_label(model: str) -> str:
    from core.models.registry import ModelError
    from core.pipeline.grid import model_role

    try:
        role = model_role(model)
    except ModelError:
        return f"{model}  ·  not installed"
    except Exception:
        return model
    return f"{model}  ·  {role}"
