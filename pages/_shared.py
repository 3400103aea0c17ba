"""Layout helpers shared by the pages: cached loaders (keyed by strings), the dataset picker, the
simulated-data badge, empty states, background-job panels, download buttons, deep links (the
page's selections in the URL, a copy-link button), the map tools (flat maps, the 3D brain, the
target inspector) and the figure export for slides.

Everything computed comes from ``core``; this module only arranges it on the page.
"""

from __future__ import annotations

import time

import streamlit as st

from core.dashboard import stored_encoders
from core.data.dataset import DatasetError
from core.data.registry import configured, open_dataset
from core.data.rois import GENERAL, roi_masks
from core.pipeline.jobs import job_status, start_job
from core.results import views as result_views
from core.results.tables import results_stamp
from core.storage import ArtifactError
from core.viz import views
from core.viz.maps import BrainMap

DATASET_KEY = "dataset"
ROI_KEY_SUFFIX = "_roi"
#: Session keys already seeded from the URL (each widget takes the URL's value once per session).
_URL_SEEDED = "_url_seeded"
#: URL parameters the current run wrote (the others are dropped at the end of the run).
_URL_WRITTEN = "_url_written"


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
    from core.results.tables import load_roi_table

    return load_roi_table(name, get_dataset(name))  # only rows of the open dataset's content


@st.cache_data(show_spinner=False, max_entries=8)
def get_partition_table(name: str, stamp: str):
    from core.results.partition import load_partition_table

    return load_partition_table(name, get_dataset(name))


@st.cache_data(show_spinner=False, max_entries=8)
def get_encoder_table(name: str, stamp: str):
    return stored_encoders.encoder_table(name)


@st.cache_data(show_spinner=False, max_entries=256)
def get_target_scores(name: str, subject: str, model: str, instruction: str, layer: int, stamp: str):
    return result_views.target_scores(name, subject, model, instruction, layer,
                                      ds=get_dataset(name))  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=64)
def get_bootstrap_intervals(
    name: str, stamp: str, model: str, layer: int, instructions: tuple[str, ...],
    subjects: tuple[str, ...],
):  # fmt: skip
    return result_views.bootstrap_intervals(name, model, layer, list(instructions),
                                            list(subjects), ds=get_dataset(name))  # fmt: skip


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
    return result_views.best_instruction_labels(name, subject, model, layer, list(instructions),
                                                ds=get_dataset(name))  # fmt: skip


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


@st.cache_data(show_spinner=False, max_entries=64)
def render_map(
    cache_key: str, name: str, subject: str, highlight: str | None, simulated: bool, _m: BrainMap
) -> bytes:
    """PNG of a :class:`BrainMap`'s flat view; cached by ``cache_key`` (which must identify the
    map: its key, colour limits and title)."""
    return views.png(
        _m.figure(get_raster(name, subject), get_masks(name, subject), highlight, simulated)
    )


@st.cache_resource(show_spinner="Preparing the 3D surfaces…", max_entries=4)
def get_brain_mesh(surface: str):
    from core.viz.brain3d import load_brain_mesh

    return load_brain_mesh(surface)


@st.cache_resource(show_spinner=False, max_entries=8)
def get_vertex_targets(name: str, subject: str):
    from core.viz.brain3d import vertex_targets

    targets = get_subject(name, subject).targets
    return vertex_targets(get_brain_mesh(targets.geometry.surface), targets)


@st.cache_data(show_spinner=False, max_entries=16)
def render_brain3d(
    cache_key: str, name: str, subject: str, highlight: str | None, simulated: bool, _m: BrainMap
) -> str:
    """The 3D view's HTML of a map; cached by ``cache_key``."""
    from core.viz.brain3d import brain_html

    targets = get_subject(name, subject).targets
    return brain_html(
        get_brain_mesh(targets.geometry.surface), get_vertex_targets(name, subject), _m,
        get_masks(name, subject), highlight, simulated=simulated,
        file_stem=f"brain3d_{subject}",
    )  # fmt: skip


@st.cache_resource(show_spinner="Loading every instruction and layer of this model…",
                   max_entries=8)  # fmt: skip
def get_alignment_cube(name: str, subject: str, model: str, stamp: str):
    from core.dashboard.inspector import alignment_cube

    return alignment_cube(name, subject, model, get_roi_table(name, stamp), ds=get_dataset(name))


@st.cache_resource(show_spinner=False, max_entries=8)
def get_truth(name: str, subject: str):
    from core.dashboard.inspector import planted_truth

    return planted_truth(get_dataset(name), subject)


@st.cache_data(show_spinner=False, max_entries=16)
def get_target_frame(cache_key: str, name: str, subject: str, _m: BrainMap):
    from core.viz.targets import target_frame

    return target_frame(get_raster(name, subject).target_xy, _m, get_roi_names(name, subject))


@st.cache_resource(show_spinner=False, max_entries=8)
def get_roi_names(name: str, subject: str):
    """The first ROI name of each target ('' for none), for tooltips."""
    import numpy as np

    masks = get_masks(name, subject)
    n = get_subject(name, subject).targets.n_targets
    out = np.full(n, "", dtype=object)
    for roi, mask in reversed(list(masks.items())):
        out[mask] = roi
    return out


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


def stamp(name: str) -> str:
    """Changes whenever the dataset's results change (part of every results cache key)."""
    return results_stamp(name)


# --------------------------------------------------------------------------- page frame


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
    return ds


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


# --------------------------------------------------------------------------- deep links


def from_url(key: str, param: str, options=None, multi: bool = False, aliases=None) -> None:
    """Seed the widget state ``key`` from the URL's ``?param=`` (once per session and key).

    Call right before the widget is created. Values are matched against ``options`` by their
    text (so ``layer=4`` finds the option ``4``); ``aliases`` maps URL values to options (e.g.
    an instruction id to its label). Unknown values are ignored.
    """
    seeded = st.session_state.setdefault(_URL_SEEDED, set())
    if key in seeded:
        return
    seeded.add(key)
    if param not in st.query_params:
        return
    raw = st.query_params.get_all(param) if multi else [st.query_params.get(param)]
    if multi and len(raw) == 1 and "," in str(raw[0]):
        raw = str(raw[0]).split(",")
    chosen = []
    for value in raw:
        value = (aliases or {}).get(value, value)
        if options is None:
            chosen.append(value)
            continue
        match = next((o for o in options if str(o) == str(value)), None)
        if match is not None:
            chosen.append(match)
    if not chosen:
        return
    st.session_state[key] = chosen if multi else chosen[0]


def url_value(param: str, default=None):
    """A URL parameter's value as first opened in this session (``default`` when absent or
    already used)."""
    seeded = st.session_state.setdefault(_URL_SEEDED, set())
    key = f"_url:{param}"
    if key in seeded:
        return default
    seeded.add(key)
    return st.query_params.get(param, default)


def begin_links() -> None:
    """Start a run: parameters not written again by this run are dropped by :func:`end_links`
    (so that one page's selections never leak into another page's URL)."""
    st.session_state[_URL_WRITTEN] = set()


def end_links() -> None:
    written = st.session_state.get(_URL_WRITTEN)
    if written is None:
        return
    kept = {p: st.query_params.get_all(p) for p in st.query_params if p in written}
    # written as a whole once per run: the browser's URL then always matches the page, even
    # after a rerun that the frontend did not see start (a deep link's first load)
    st.query_params.from_dict({p: v if len(v) > 1 else v[0] for p, v in kept.items()})


def link(**params) -> None:
    """Write the page's selections into the URL (``None`` removes a parameter; lists become
    repeated parameters), so that a copied URL reopens the same view."""
    st.session_state.setdefault(_URL_WRITTEN, set()).update(params)
    for param, value in params.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            if param in st.query_params:
                del st.query_params[param]
            continue
        if isinstance(value, (list, tuple)):
            new = [str(v) for v in value]
            if st.query_params.get_all(param) != new:
                st.query_params[param] = new
        elif st.query_params.get(param) != str(value):
            st.query_params[param] = str(value)


def link_url() -> str:
    """The URL of the current view (relative when the app's address is unknown, e.g. in
    tests)."""
    from urllib.parse import urlencode, urlsplit

    query = urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])
    base = ""
    try:
        url = st.context.url or ""
    except Exception:
        url = ""
    if url:
        parts = urlsplit(url)
        path = st.session_state.get("_page_path", "")
        base = f"{parts.scheme}://{parts.netloc}/{path}"
    return f"{base}?{query}" if query else (base or "?")


def copy_link_button():
    """A "copy link" button (it copies the browser's current URL, which holds every selection);
    returns a placeholder for :func:`show_link`."""
    st.iframe(_COPY_LINK_HTML, height=44)
    return st.empty()


def show_link(box) -> None:
    """The link to the current view, written into ``box`` once the page has run."""
    try:
        with box.container():
            with st.expander("Link to this view"):
                st.code(link_url(), language=None, wrap_lines=True)
                st.caption("Opening it reproduces the page's selections (dataset, subject, "
                           "model, instructions, layer, ROI, stimulus, map).")  # fmt: skip
    except Exception:  # never let the link box hide the page's own error
        pass


_COPY_LINK_HTML = """
<button id="copy" title="Copy a link that reopens this view with the same selections"
 style="font:14px 'Source Sans Pro',sans-serif;padding:6px 12px;border:1px solid #d6d6d9;
 border-radius:8px;background:white;cursor:pointer;width:100%">🔗 Copy link to this view</button>
<script>
const b = document.getElementById('copy');
b.onclick = async () => {
  const url = window.parent.location.href;
  let ok = false;
  try { await navigator.clipboard.writeText(url); ok = true; } catch (e) {
    const t = document.createElement('textarea'); t.value = url; document.body.appendChild(t);
    t.select(); try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    t.remove();
  }
  b.textContent = ok ? '✅ Link copied' : '⚠ Copy failed: use the link below';
  b.dataset.copied = url;
  setTimeout(() => { b.textContent = '🔗 Copy link to this view'; }, 2500);
};
</script>
"""


# --------------------------------------------------------------------------- maps


def surface_problem(name: str, subject: str) -> str | None:
    """Why this subject's maps cannot be drawn on a surface (volume data), else None."""
    from core.viz.brain3d import surface_problem as problem

    return problem(get_subject(name, subject).targets)


def show_map(where, m: BrainMap, name: str, subject: str, highlight: str | None,
             simulated: bool) -> bytes | None:  # fmt: skip
    """Draw a map's flat view in ``where`` (a column or container); returns its PNG (None for
    volume data, where it says why there is no flat map)."""
    if get_subject(name, subject).targets.geometry is None:
        where.info("No flat map: these targets are voxels of a volume with no surface mapping.")
        return None
    png = render_map(_map_key(m), name, subject, highlight, simulated, m)
    where.image(png, width="stretch")
    return png


def _map_key(m: BrainMap) -> str:
    return f"{m.key}|{m.title}|{m.label}|{m.cmap}|{m.limits}|{','.join(m.names)}"


TOOLS = ["Flat maps only", "3D brain", "Inspect targets"]


def map_tools(
    page: str, maps: list[BrainMap], name: str, subject: str, highlight: str | None,
    simulated: bool, inspect: dict | None = None,
) -> None:  # fmt: skip
    """The 3D brain and the target inspector for the page's maps (one at a time).

    ``inspect``: ``model``, ``instruction``, ``layer`` (and ``stamp``) of the page, for the
    inspector's alignment of every instruction and layer; None hides the alignment part.
    """
    if not maps:
        return
    tool_key, map_key = f"{page}_tool", f"{page}_map"
    from_url(tool_key, "tool", TOOLS, aliases={"3d": "3D brain", "inspect": "Inspect targets",
                                               "flat": "Flat maps only"})  # fmt: skip
    titles = [m.title for m in maps]
    from_url(map_key, "map", list(range(len(maps))))
    c1, c2 = st.columns([3, 4])
    tool = c1.radio("Show", TOOLS, horizontal=True, key=tool_key,
                    help="3D brain: the map on both hemispheres' inflated and pial surfaces. "
                    "Inspect targets: click (or box-select) targets on the flat map.")  # fmt: skip
    if st.session_state.get(map_key, 0) not in range(len(maps)):
        st.session_state[map_key] = 0
    index = c2.selectbox("Map", range(len(maps)), format_func=titles.__getitem__, key=map_key,
                         disabled=tool == TOOLS[0])  # fmt: skip
    link(tool={"3D brain": "3d", "Inspect targets": "inspect"}.get(tool),
         map=index if tool != TOOLS[0] and index else None)  # fmt: skip
    if tool == TOOLS[0]:
        return
    m = maps[index]
    problem = surface_problem(name, subject)
    if problem:
        st.info(problem, icon=":material/deployed_code:")
        return
    if tool == "3D brain":
        brain_3d(m, name, subject, highlight, simulated)
    else:
        target_inspector(page, m, name, subject, highlight, inspect)


def brain_3d(m: BrainMap, name: str, subject: str, highlight: str | None, simulated: bool) -> None:
    """The 3D view (the project's own WebGL viewer, embedded) of one map."""
    html = render_brain3d(_map_key(m), name, subject, highlight, simulated, m)
    st.iframe(html, height=600)
    mesh = get_brain_mesh(get_subject(name, subject).targets.geometry.surface)
    st.caption(
        f"{mesh.note} Same colours as the flat map; the key under the view shows the colour of "
        "the ROI borders" + (f" and of {highlight}" if highlight else "")
        + ". Drag to turn, scroll to zoom, double-click to fit; Save PNG saves the view."
    )


def target_inspector(page: str, m: BrainMap, name: str, subject: str, highlight: str | None,
                     inspect: dict | None) -> None:  # fmt: skip
    """Click (or box-select) targets on the flat map; the inspector shows the target's ROI labels,
    noise ceiling, alignment for every instruction and layer, best instruction and selected
    alpha (distributions for a selection), and the planted truth on the demo."""
    import numpy as np

    from core.viz import targets as tviz

    mode_key, target_key = f"{page}_inspect", f"{page}_target"
    modes = ["one target (click)", "a box of targets (drag)", "an ROI"]
    from_url(mode_key, "select", modes, aliases={"target": modes[0], "box": modes[1],
                                                 "roi": modes[2]})  # fmt: skip
    mode = st.radio("Select", modes, horizontal=True, key=mode_key)
    link(select={modes[1]: "box", modes[2]: "roi"}.get(mode))
    n = get_subject(name, subject).targets.n_targets
    rois = list(get_masks(name, subject))
    cube = None
    if inspect is not None:
        try:
            cube = get_alignment_cube(name, subject, inspect["model"], inspect["stamp"])
        except ArtifactError as exc:
            st.caption(f"No per-target alignment stored for {inspect['model']}: {exc}")
    truth = get_truth(name, subject)
    left, right = st.columns([3, 2], gap="medium")
    selection = None
    if mode != modes[2]:
        frame = get_target_frame(_map_key(m), name, subject, m)
        raster = get_raster(name, subject)
        box = mode == modes[1]
        with left:
            event = chart(
                st, tviz.target_scatter, frame.iloc[:0], raster.shape, "box" if box else "click",
                data=frame, on_select="rerun", key=f"{page}_targets_{'box' if box else 'click'}",
                width="content",
            )  # fmt: skip
            st.caption(f"{m.title} · " + ("drag a box over targets; double-click clears."
                       if box else "click a target (the nearest one is picked)."))  # fmt: skip
        picked = tviz.picked_targets(event, frame)
        last_key = f"_{page}_picked_last"
        sig = None if picked is None else (int(picked.size), int(picked.sum()))
        if sig != st.session_state.get(last_key):
            st.session_state[last_key] = sig
            if picked is not None and picked.size == 1 and not box:
                st.session_state[target_key] = int(picked[0])
            if box:
                st.session_state[f"_{page}_box"] = picked
        if box:
            selection = st.session_state.get(f"_{page}_box")
    with right:
        if mode == modes[0]:
            from_url(target_key, "target", list(range(n)))
            if st.session_state.get(target_key, 0) not in range(n):
                st.session_state[target_key] = 0
            t = int(st.number_input("Target", 0, n - 1, key=target_key, step=1,
                                    help="Click the flat map, or type a target index."))  # fmt: skip
            link(target=t)
            _target_card(m, name, subject, t, cube, truth, inspect)
            return
        if mode == modes[2]:
            roi_key = f"{page}_inspect_roi"
            from_url(roi_key, "roi", rois)
            if st.session_state.get(roi_key) not in rois and rois:
                st.session_state[roi_key] = highlight if highlight in rois else rois[0]
            roi = st.selectbox("ROI", rois, key=roi_key)
            selection = np.flatnonzero(get_masks(name, subject)[roi]) if roi else None
        if selection is None or len(selection) == 0:
            st.info("Select targets: drag a box on the flat map." if mode == modes[1]
                    else "This ROI has no target.")  # fmt: skip
            return
    _selection_panel(m, name, subject, np.asarray(selection), cube, truth, inspect)


def _target_card(m, name, subject, t, cube, truth, inspect) -> None:
    from core.dashboard import inspector
    from core.viz import targets as tviz

    targets = get_subject(name, subject).targets
    value = m.values[t]
    shown = (m.names[int(value)] if value >= 0 else "none") if m.categorical else (
        f"{float(value):.3f}" if value == value else "no value")  # fmt: skip
    st.markdown(f"**Target {t}** · {m.label}: **{shown}**")
    if cube is not None:
        card = inspector.target_card(cube, targets, t, inspect["instruction"], inspect["layer"])
        c1, c2, c3 = st.columns(3)
        c1.metric("Noise ceiling", f"{100 * card['noise ceiling']:.1f}%")
        c2.metric("Best instruction", card["best instruction"],
                  help=f"Highest test r at layer {inspect['layer']}; "
                  + ("significant (q < 0.05)" if card["best is significant"] else
                     "not significant"))  # fmt: skip
        alpha = card.get("selected alpha")
        c3.metric("Selected alpha", f"{alpha:.3g}" if alpha == alpha and alpha else "—")
        rows = {k: v for k, v in card.items() if k not in ("noise ceiling", "best instruction",
                                                            "selected alpha")}  # fmt: skip
        st.dataframe(_card_frame(rows), hide_index=True, width="stretch")
        prof = inspector.target_profile(cube, t)
        use_r = prof.empty or not prof["nalign"].notna().any()
        what = "test correlation r" if use_r else "normalized alignment"
        chart(st, tviz.profile_chart, prof, inspect["instruction"], inspect["layer"],
              value="r" if use_r else "nalign", title=what, key="insp_profile")  # fmt: skip
        st.caption(f"{what.capitalize()} of target {t} for every instruction and layer of "
                   f"{inspect['model']}; dashed: layer {inspect['layer']}."
                   + (" (Its noise ceiling is below 5% of the variance: no normalized "
                      "alignment.)" if use_r else ""))  # fmt: skip
    else:
        st.dataframe(_card_frame(inspector.target_rois(targets, t)), hide_index=True)
    if truth:
        st.markdown("**Planted ground truth (simulated demo)**")
        st.dataframe(_card_frame(inspector.truth_card(truth, t)), hide_index=True,
                     width="stretch")  # fmt: skip


def _selection_panel(m, name, subject, idx, cube, truth, inspect) -> None:
    import numpy as np
    import pandas as pd

    from core.dashboard import inspector
    from core.viz import targets as tviz

    targets = get_subject(name, subject).targets
    st.markdown(f"**{idx.size} targets selected**")
    if cube is None:
        st.dataframe(pd.DataFrame({"target": idx}), hide_index=True)
        return
    frames = inspector.selection_frames(cube, targets, idx, inspect["instruction"],
                                        inspect["layer"])  # fmt: skip
    vals = frames["values"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Median noise ceiling", f"{100 * float(np.nanmedian(vals['nc'])):.1f}%")
    c2.metric("Mean alignment", f"{float(np.nanmean(vals['nalign'])):.3f}"
              if vals["nalign"].notna().any() else "—")  # fmt: skip
    c3.metric("Median alpha", f"{float(np.nanmedian(vals['alpha'])):.3g}"
              if vals["alpha"].notna().any() else "—")  # fmt: skip
    a, b = st.columns(2)
    chart(a, tviz.histogram, vals, "nalign", "normalized alignment", key="insp_h_nalign")
    chart(b, tviz.histogram, vals, "alpha", "selected alpha", log=True, key="insp_h_alpha")
    chart(a, tviz.count_bars, frames["best"], "instruction", "best instruction", key="insp_best")
    chart(b, tviz.histogram, vals, "nc", "noise ceiling", key="insp_h_nc")
    prof = frames["profile"]
    chart(st, tviz.profile_chart, prof, inspect["instruction"], inspect["layer"], value="mean",
          title="mean normalized alignment", key="insp_sel_profile")  # fmt: skip
    if truth:
        planted = {k: np.asarray(v)[idx] for k, v in truth.items()
                   if np.asarray(v).ndim == 1 and np.asarray(v).shape[0] == targets.n_targets}
        if "driver_name" in planted:
            counts = (pd.Series(planted["driver_name"]).value_counts()
                      .rename_axis("planted driver").reset_index(name="targets"))  # fmt: skip
            st.markdown("**Planted ground truth (simulated demo)**")
            chart(st, tviz.count_bars, counts, "planted driver", "planted driver",
                  key="insp_truth")  # fmt: skip
    st.download_button("⬇ Selection (CSV)", views.table_bytes(vals, "csv"),
                       "selected_targets.csv", "text/csv", key="insp_csv")  # fmt: skip


def _card_frame(card: dict):
    import pandas as pd

    def fmt(v):
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.4g}" if v == v else "—"
        return str(v) if v != "" else "—"

    return pd.DataFrame({"property": list(card), "value": [fmt(v) for v in card.values()]})


# --------------------------------------------------------------------------- figures for slides


def export_panel(page: str, figures: list, context: dict) -> None:
    """Download the page's figures for slides: each as PNG, SVG or PDF, or all in one ZIP with a
    captions file. Files are drawn only when a button is clicked."""
    from core.viz import export

    if not figures:
        return
    with st.expander(f"Figures for slides ({len(figures)}: PNG, SVG, PDF, or all as ZIP)"):
        st.download_button(
            "⬇ All figures (ZIP with captions)",
            lambda: export.figures_zip(figures, context),
            f"{export.safe_stem(page)}_figures.zip", "application/zip",
            key=f"{page}_export_zip", type="primary", on_click="ignore",
        )  # fmt: skip
        titles = [f.title for f in figures]
        key = f"{page}_export_pick"
        if st.session_state.get(key, 0) not in range(len(figures)):
            st.session_state[key] = 0
        cols = st.columns([4, 1, 1, 1], vertical_alignment="bottom")
        k = cols[0].selectbox("One figure", range(len(figures)), format_func=titles.__getitem__,
                              key=key)  # fmt: skip
        fig = figures[k]
        for col, fmt in zip(cols[1:], export.FORMATS, strict=True):
            col.download_button(
                fmt.upper(), lambda fig=fig, fmt=fmt: export.figure_bytes(fig, fmt),
                f"{fig.stem}.{fmt}", export.FORMATS[fmt], key=f"{page}_export_{fmt}",
                on_click="ignore",
            )  # fmt: skip
        if fig.caption:
            st.caption(fig.caption)


def map_figure(m: BrainMap, name: str, subject: str, highlight: str | None, simulated: bool,
               details: dict):  # fmt: skip
    """An exportable figure of a map's flat view."""
    from core.viz.export import ExportFigure

    def make():
        return m.figure(get_raster(name, subject), get_masks(name, subject), highlight, simulated)

    return ExportFigure(name=f"map_{m.title}"[:80], title=m.title, make=make,
                        details={**details, "colour scale": _scale_text(m)},
                        caption=m.caption)  # fmt: skip


def _scale_text(m: BrainMap) -> str:
    if m.categorical:
        return "categories: " + ", ".join(m.names)
    return f"{m.label}, {m.cmap} from {m.limits[0]:.3g} to {m.limits[1]:.3g}"


def grid_context(name: str) -> dict:
    """The settings of the last grid run on ``name``, for captions."""
    from core.results.tables import grid_settings

    try:
        s = grid_settings(name)
    except Exception:
        return {}
    out = {}
    for key in ("alphas", "cv", "solver", "p_values", "n_permutations", "max_new_tokens"):
        if hasattr(s, key):
            out[{"cv": "cv folds"}.get(key, key.replace("_", " "))] = getattr(s, key)
    return out
