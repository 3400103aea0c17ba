"""Brain maps on a page: the flat map, the 3D view, the target inspector, slide figures of a map."""

from __future__ import annotations

import streamlit as st

from core.dashboard.inspector import planted_driver_counts
from core.storage import ArtifactError
from core.viz import views
from core.viz.maps import BrainMap
from pages.ui.frame import chart
from pages.ui.links import from_url, link
from pages.ui.loaders import (
    get_alignment_cube,
    get_brain_mesh,
    get_index_volume,
    get_masks,
    get_raster,
    get_subject,
    get_surface_note,
    get_target_frame,
    get_truth,
    outlined_masks,
    render_brain3d,
    render_map,
    render_slices,
    roi_view,
)


def surface_problem(name: str, subject: str) -> str | None:
    """Why this subject's maps cannot be drawn on a surface (volume data), else None; for NSD's
    func1pt8mm it names the missing transform files and points to the volume slices."""
    from core.viz.brain3d import surface_problem as problem

    why = problem(get_subject(name, subject).targets)
    if why and get_index_volume(name, subject) is not None:
        return ("No 3D surface view and no target inspector (they need a surface). "
                + get_surface_note(name, subject))  # fmt: skip
    return why


def show_map(where, m: BrainMap, name: str, subject: str, highlight: str | None,
             simulated: bool) -> bytes | None:  # fmt: skip
    """Draw a map's flat view in ``where`` (a column or container); returns its PNG. Volume data
    without surface mapping gets the map on volume slices and a caption naming the missing
    transform files (None, and why, where not even a volume grid is known)."""
    if get_subject(name, subject).targets.geometry is None:
        png = render_slices(_map_key(m), name, subject, simulated, False, m)
        if png is None:
            where.info("No flat map: these targets are voxels of a volume with no surface "
                       "mapping.")  # fmt: skip
            return None
        where.image(png, width="stretch")
        where.caption(get_surface_note(name, subject))
        return png
    png = render_map(_map_key(m), name, subject, highlight, simulated, m)
    where.image(png, width="stretch")
    return png


def _map_key(m: BrainMap) -> str:
    return f"{m.key}|{m.title}|{m.label}|{m.cmap}|{m.limits}|{','.join(m.names)}"


TOOLS = ["Flat maps only", "3D brain", "Inspect targets"]

#: The target inspector's flat-map scatter and details card (pixels): the two fit side by side
#: in the main area of a 1600 px window and wrap below each other in a 1024 px one.
SCATTER_WIDTH, CARD_WIDTH = 520, 400


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
    # the scatter (fixed size, so the flat map keeps its aspect) and the card side by side in a
    # row that wraps: where both do not fit (a narrow window), the card goes below the map
    # instead of under it
    row = st.container(horizontal=True, gap="medium", key=f"{page}_inspector")
    left = (row.container(width=SCATTER_WIDTH, key=f"{page}_inspector_map")
            if mode != modes[2] else None)  # an ROI is picked from a menu: no map  # fmt: skip
    right = row.container(width=CARD_WIDTH, key=f"{page}_inspector_card")
    selection = None
    if mode != modes[2]:
        frame = get_target_frame(_map_key(m), name, subject, m)
        raster = get_raster(name, subject)
        box = mode == modes[1]
        with left:
            event = chart(
                st, tviz.target_scatter, frame.iloc[:0], raster.shape, "box" if box else "click",
                SCATTER_WIDTH, data=frame, on_select="rerun",
                key=f"{page}_targets_{'box' if box else 'click'}", width="content",
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
        counts = planted_driver_counts(truth, idx, targets.n_targets)
        if counts is not None:
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


def map_figure(m: BrainMap, name: str, subject: str, highlight: str | None, simulated: bool,
               details: dict):  # fmt: skip
    """An exportable figure of a map's flat view."""
    from core.viz.export import ExportFigure

    masks = outlined_masks(name, subject, roi_view(), highlight)  # the page's view, now
    volume = get_subject(name, subject).targets.geometry is None

    def make():
        if volume:  # no surface mapping: the map on volume slices, the missing files named
            grid = get_index_volume(name, subject)
            if grid is None:
                raise ValueError("these voxel targets have no surface mapping and no volume "
                                 "grid; no map can be drawn")  # fmt: skip
            from core.viz.slices import slice_figure

            return slice_figure(grid[0], m, grid[1], get_surface_note(name, subject), simulated)
        return m.figure(get_raster(name, subject), masks, highlight, simulated)

    return ExportFigure(name=f"map_{m.title}"[:80], title=m.title, make=make,
                        details={**details, "colour scale": _scale_text(m)},
                        caption=m.caption)  # fmt: skip


def _scale_text(m: BrainMap) -> str:
    if m.categorical:
        return "categories: " + ", ".join(m.names)
    return f"{m.label}, {m.cmap} from {m.limits[0]:.3g} to {m.limits[1]:.3g}"
