"""Cached loaders: datasets, subjects, results tables, per-target scores and rendered maps (st.cache_*)."""

from __future__ import annotations

import streamlit as st

from core.dashboard import stored_encoders
from core.dashboard.gallery import thumbnail_png
from core.data.registry import open_dataset
from core.data.rois import first_roi_labels, roi_masks_only
from core.results import views as result_views
from core.results.tables import results_stamp
from core.viz import views
from core.viz.maps import BrainMap


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
    return roi_masks_only(get_subject(name, subject))


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
    return thumbnail_png(get_dataset(name), stimulus_id, size)


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
    return first_roi_labels(get_masks(name, subject), get_subject(name, subject).targets.n_targets)


def stamp(name: str) -> str:
    """Changes whenever the dataset's results change (part of every results cache key)."""
    return results_stamp(name)


@st.cache_data(show_spinner="Normalising…", max_entries=16)
def get_model_comparison(name: str, stamp: str, models: tuple[str, ...], layer_mode: str,
                         instruction_mode: str, ceiling: str):  # fmt: skip
    table = get_roi_table(name, stamp)
    return result_views.model_comparison(table[table["model"].isin(models)], layer_mode,
                                         instruction_mode, ceiling, get_dataset(name))  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=32)
def get_roi_winners(name: str, stamp: str, model: str, layer: int, subjects: tuple[str, ...]):
    table = get_roi_table(name, stamp)
    table = table[table["subject"].isin(subjects)]
    return result_views.roi_winners(table, model, layer, ds=get_dataset(name))
