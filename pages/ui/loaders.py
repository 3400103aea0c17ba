"""Cached loaders: datasets, subjects, results tables, per-target scores and rendered maps (st.cache_*).

Results tables and ROI masks come in the page's ROI view (:func:`roi_view`, the sidebar toggle
of a finely labelled dataset: the paper's ROIs and groups, or NSD's fine labels); every cached
function that depends on it takes the view as an argument.
"""

from __future__ import annotations

import streamlit as st

from core.dashboard import stored_encoders
from core.dashboard.gallery import thumbnail_png
from core.data.registry import open_dataset
from core.data.rois import DEFAULT_VIEW, first_roi_labels, roi_masks_only, select_view, view_masks
from core.results import views as result_views
from core.results.tables import results_stamp
from core.viz import views
from core.viz.maps import BrainMap

#: Session key of the ROI view (:data:`core.data.rois.VIEWS`), set by the sidebar toggle.
ROI_VIEW_KEY = "roi_view"


def roi_view() -> str:
    """The ROI view the pages show now: ``"paper"`` (default) or ``"fine"``."""
    return st.session_state.get(ROI_VIEW_KEY, DEFAULT_VIEW)


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
def _all_masks(name: str, subject: str) -> dict:
    return roi_masks_only(get_subject(name, subject))


@st.cache_resource(show_spinner=False, max_entries=16)
def _view_masks(name: str, subject: str, view: str) -> dict:
    return view_masks(_all_masks(name, subject), view)


def outlined_masks(name: str, subject: str, view: str, highlight: str | None) -> dict:
    """The view's map ROIs, plus the highlighted ROI when the view does not outline it (a group
    picked in a chart of the paper view)."""
    masks = get_masks(name, subject, view)
    if highlight and highlight not in masks and highlight in _all_masks(name, subject):
        masks = {**masks, highlight: _all_masks(name, subject)[highlight]}
    return masks


def get_masks(name: str, subject: str, view: str | None = None) -> dict:
    """The masks of the ROIs the view outlines on maps (without the whole general mask; in the
    paper view, the paper's ROIs without their groups)."""
    return _view_masks(name, subject, view or roi_view())


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
def _roi_table(name: str, stamp: str, view: str):
    from core.results.tables import load_roi_table

    # only rows of the open dataset's content, the view's ROIs in its order
    return select_view(load_roi_table(name, get_dataset(name)), view)


def get_roi_table(name: str, stamp: str, view: str | None = None):
    """The results table's current rows of the view's ROIs (default: the page's view)."""
    return _roi_table(name, stamp, view or roi_view())


@st.cache_data(show_spinner=False, max_entries=8)
def _partition_table(name: str, stamp: str, view: str):
    from core.results.partition import load_partition_table

    return select_view(load_partition_table(name, get_dataset(name)), view)


def get_partition_table(name: str, stamp: str, view: str | None = None):
    """The partition table's current rows of the view's ROIs (default: the page's view)."""
    return _partition_table(name, stamp, view or roi_view())


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


def get_instruction_stars(
    name: str, stamp: str, model: str, layer: int, reference: str, value: str, across: str,
    subjects: tuple[str, ...],
):  # fmt: skip
    """Stars against ``reference`` over the view's ROIs (BH over what the chart shows)."""
    return _instruction_stars(name, stamp, model, layer, reference, value, across, subjects,
                              roi_view())  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=64)
def _instruction_stars(
    name: str, stamp: str, model: str, layer: int, reference: str, value: str, across: str,
    subjects: tuple[str, ...], view: str,
):  # fmt: skip
    table = get_roi_table(name, stamp, view)
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


def render_value_map(*args, **kwargs) -> bytes:
    """PNG of a value flatmap (see :func:`_value_map`), the page's ROI view outlined."""
    return _value_map(*args, view=roi_view(), **kwargs)


@st.cache_data(show_spinner=False, max_entries=64)
def _value_map(
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
    view: str = DEFAULT_VIEW,
) -> bytes:
    """PNG of a value flatmap; cached by ``cache_key`` (which must identify ``_values``)."""
    fig = views.value_map(
        get_raster(name, subject),
        _values,
        label=label,
        title=title,
        rois=outlined_masks(name, subject, view, highlight),
        highlight=highlight,
        symmetric=symmetric,
        limits=limits,
        cmap=cmap,
        simulated=simulated,
    )
    return views.png(fig)


def render_category_map(*args, **kwargs) -> bytes:
    """PNG of a category flatmap (see :func:`_category_map`), the page's ROI view outlined."""
    return _category_map(*args, view=roi_view(), **kwargs)


@st.cache_data(show_spinner=False, max_entries=32)
def _category_map(
    cache_key: str,
    name: str,
    subject: str,
    highlight: str | None,
    title: str | None,
    names: tuple[str, ...],
    simulated: bool,
    _labels,
    view: str = DEFAULT_VIEW,
) -> bytes:
    fig = views.category_map(
        get_raster(name, subject),
        _labels,
        list(names),
        title=title,
        rois=outlined_masks(name, subject, view, highlight),
        highlight=highlight,
        simulated=simulated,
    )
    return views.png(fig)


def render_map(
    cache_key: str, name: str, subject: str, highlight: str | None, simulated: bool, _m: BrainMap
) -> bytes:
    """PNG of a :class:`BrainMap`'s flat view, the page's ROI view outlined; cached by
    ``cache_key`` (which must identify the map: its key, colour limits and title)."""
    return _render_map(cache_key, name, subject, highlight, simulated, roi_view(), _m)


@st.cache_data(show_spinner=False, max_entries=64)
def _render_map(cache_key: str, name: str, subject: str, highlight: str | None, simulated: bool,
                view: str, _m: BrainMap) -> bytes:  # fmt: skip
    masks = outlined_masks(name, subject, view, highlight)
    return views.png(_m.figure(get_raster(name, subject), masks, highlight, simulated))


@st.cache_resource(show_spinner=False, max_entries=8)
def get_index_volume(name: str, subject: str):
    """``(index, zooms)`` of a volume subject without surface mapping: the target each voxel
    holds (RAS+, -1 = none) and the voxel size (:func:`core.viz.slices.target_index_volume`);
    None when the dataset has no volume grid to put its targets back in."""
    from core.data.dataset import DatasetError
    from core.viz.slices import target_index_volume

    try:
        return target_index_volume(get_dataset(name), subject)
    except DatasetError:
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def get_surface_note(name: str, subject: str) -> str:
    """Why a volume subject's maps are volume slices, naming the missing NSD transform files."""
    from core.viz.slices import no_surface_note

    return no_surface_note(get_dataset(name), subject)


@st.cache_data(show_spinner="Drawing the volume slices…", max_entries=32)
def render_slices(cache_key: str, name: str, subject: str, simulated: bool, note: bool,
                  _m: BrainMap) -> bytes | None:  # fmt: skip
    """PNG of a map drawn on volume slices (with the missing-file note when ``note``); None when
    the dataset has no volume grid. Cached by ``cache_key`` (which must identify the map)."""
    volume = get_index_volume(name, subject)
    if volume is None:
        return None
    from core.viz.slices import slice_figure

    text = get_surface_note(name, subject) if note else ""
    return views.png(slice_figure(volume[0], _m, volume[1], text, simulated))


@st.cache_resource(show_spinner="Preparing the 3D surfaces…", max_entries=4)
def get_brain_mesh(surface: str):
    from core.viz.brain3d import load_brain_mesh

    return load_brain_mesh(surface)


@st.cache_resource(show_spinner=False, max_entries=8)
def get_vertex_targets(name: str, subject: str):
    from core.viz.brain3d import vertex_targets

    targets = get_subject(name, subject).targets
    return vertex_targets(get_brain_mesh(targets.geometry.surface), targets)


def render_brain3d(
    cache_key: str, name: str, subject: str, highlight: str | None, simulated: bool, _m: BrainMap
) -> str:
    """The 3D view's HTML of a map, the page's ROI view outlined and named; cached by
    ``cache_key``."""
    return _render_brain3d(cache_key, name, subject, highlight, simulated, roi_view(), _m)


@st.cache_data(show_spinner=False, max_entries=16)
def _render_brain3d(cache_key: str, name: str, subject: str, highlight: str | None,
                    simulated: bool, view: str, _m: BrainMap) -> str:  # fmt: skip
    from core.viz.brain3d import brain_html

    targets = get_subject(name, subject).targets
    return brain_html(
        get_brain_mesh(targets.geometry.surface), get_vertex_targets(name, subject), _m,
        outlined_masks(name, subject, view, highlight), highlight, simulated=simulated,
        file_stem=f"brain3d_{subject}",
    )  # fmt: skip


@st.cache_resource(show_spinner="Loading every instruction and layer of this model…",
                   max_entries=8)  # fmt: skip
def get_alignment_cube(name: str, subject: str, model: str, stamp: str):
    from core.dashboard.inspector import alignment_cube

    # the fits the table lists (any ROI view lists the same fits)
    return alignment_cube(name, subject, model, get_roi_table(name, stamp, "fine"),
                          ds=get_dataset(name))  # fmt: skip


@st.cache_resource(show_spinner=False, max_entries=8)
def get_truth(name: str, subject: str):
    from core.dashboard.inspector import planted_truth

    return planted_truth(get_dataset(name), subject)


def get_target_frame(cache_key: str, name: str, subject: str, _m: BrainMap):
    """The inspector's targets (flat-map position, value, first ROI of the page's view)."""
    return _target_frame(cache_key, name, subject, roi_view(), _m)


@st.cache_data(show_spinner=False, max_entries=16)
def _target_frame(cache_key: str, name: str, subject: str, view: str, _m: BrainMap):
    from core.viz.targets import target_frame

    return target_frame(get_raster(name, subject).target_xy, _m,
                        get_roi_names(name, subject, view))  # fmt: skip


def get_roi_names(name: str, subject: str, view: str | None = None):
    """The first ROI name (of the view's map ROIs) of each target ('' for none), for tooltips."""
    return _roi_names(name, subject, view or roi_view())


@st.cache_resource(show_spinner=False, max_entries=16)
def _roi_names(name: str, subject: str, view: str):
    return first_roi_labels(get_masks(name, subject, view),
                            get_subject(name, subject).targets.n_targets)  # fmt: skip


def stamp(name: str) -> str:
    """Changes whenever the dataset's results change (part of every results cache key)."""
    return results_stamp(name)


def get_model_comparison(name: str, stamp: str, models: tuple[str, ...], layer_mode: str,
                         instruction_mode: str, ceiling: str):  # fmt: skip
    """Models side by side over the view's ROIs (:func:`core.results.views.model_comparison`)."""
    return _model_comparison(name, stamp, models, layer_mode, instruction_mode, ceiling,
                             roi_view())  # fmt: skip


@st.cache_data(show_spinner="Normalising…", max_entries=16)
def _model_comparison(name: str, stamp: str, models: tuple[str, ...], layer_mode: str,
                      instruction_mode: str, ceiling: str, view: str):  # fmt: skip
    table = get_roi_table(name, stamp, view)
    return result_views.model_comparison(table[table["model"].isin(models)], layer_mode,
                                         instruction_mode, ceiling, get_dataset(name))  # fmt: skip


def get_roi_winners(name: str, stamp: str, model: str, layer: int, subjects: tuple[str, ...]):
    """Each ROI's CV-chosen winner over the view's ROIs (BH over the ROIs shown)."""
    return _roi_winners(name, stamp, model, layer, subjects, roi_view())


@st.cache_data(show_spinner=False, max_entries=32)
def _roi_winners(name: str, stamp: str, model: str, layer: int, subjects: tuple[str, ...],
                 view: str):  # fmt: skip
    table = get_roi_table(name, stamp, view)
    table = table[table["subject"].isin(subjects)]
    return result_views.roi_winners(table, model, layer, ds=get_dataset(name))
