"""The interactive flat view and the target inspector's charts (Altair specs; never streamlit).

:func:`target_scatter` draws every target at its flat-map position in the colours of a
:class:`~core.viz.maps.BrainMap` (exactly the flat view's colours), with a click selection of the
nearest target (``target_pick``) or a box selection (``target_box``); :func:`picked_targets` reads
what an ``st.altair_chart(..., on_select="rerun")`` event selected.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from core.viz.maps import BrainMap, hex_colours

TARGET_PICK = "target_pick"
TARGET_BOX = "target_box"


def target_frame(target_xy: np.ndarray, brain_map: BrainMap, roi: np.ndarray | None = None):
    """One row per target: target, x, y (flat-map pixels, y down), colour, value (text), roi."""
    n = brain_map.n_targets
    if target_xy.shape[0] != n:
        raise ValueError(f"{target_xy.shape[0]} target positions for a map of {n} targets")
    if brain_map.categorical:
        names = np.array([*brain_map.names, "none"], dtype=object)
        text = names[np.where(brain_map.values >= 0, brain_map.values, len(brain_map.names))]
    else:
        v = brain_map.values
        text = np.where(np.isfinite(v), np.char.mod("%.3f", np.nan_to_num(v)), "no value")
    return pd.DataFrame({
        "target": np.arange(n, dtype=np.int64),
        "x": target_xy[:, 0].astype(np.float32),
        "y": target_xy[:, 1].astype(np.float32),
        "colour": hex_colours(brain_map.target_rgba()),
        "value": text.astype(str),
        "roi": roi if roi is not None else np.full(n, ""),
    })  # fmt: skip


def target_scatter(
    frame: pd.DataFrame, shape: tuple[int, int], mode: str = "click", width: int = 760
) -> alt.Chart:
    """Targets on the flat map, clickable (``mode="click"``: the nearest target) or box-selectable
    (``mode="box"``).

    Parameters
    ----------
    frame : DataFrame
        From :func:`target_frame`.
    shape : (height, width)
        The flat raster's shape in pixels (fixes the aspect ratio).
    """
    h, w = shape
    height = int(round(width * h / max(w, 1)))
    x = alt.X("x:Q", scale=alt.Scale(domain=[0, w], nice=False), axis=None)
    y = alt.Y("y:Q", scale=alt.Scale(domain=[0, h], reverse=True, nice=False), axis=None)
    tooltip = [alt.Tooltip("target:Q", title="target"), "roi:N", alt.Tooltip("value:N")]
    if mode == "box":
        sel = alt.selection_interval(name=TARGET_BOX, encodings=["x", "y"], clear="dblclick")
        size = alt.value(9)
        stroke = alt.value(0)
    else:
        sel = alt.selection_point(
            name=TARGET_PICK, fields=["target"], on="click", nearest=True, clear="dblclick"
        )
        size = alt.condition(sel, alt.value(9), alt.value(9), empty=False)
        stroke = alt.condition(sel, alt.value(2.5), alt.value(0), empty=False)
    return (
        alt.Chart(frame)
        .mark_circle(opacity=1.0, stroke="black")
        .encode(x=x, y=y, color=alt.Color("colour:N", scale=None), size=size,
                strokeWidth=stroke, tooltip=tooltip)  # fmt: skip
        .add_params(sel)
        .properties(width=width, height=height)
        .configure_view(strokeWidth=0)
    )


def picked_targets(event, frame: pd.DataFrame | None = None) -> np.ndarray | None:
    """Target indices selected in a :func:`target_scatter` event: the clicked target, or the
    targets inside the box (needs ``frame``). None when nothing is selected."""
    sel = None
    for getter in (lambda e: e["selection"], lambda e: e.selection):
        try:
            sel = getter(event)
            break
        except (KeyError, TypeError, AttributeError):
            continue
    if not sel:
        return None
    pick = sel.get(TARGET_PICK) if hasattr(sel, "get") else None
    if pick:
        first = pick[0] if isinstance(pick, list) else pick
        if isinstance(first, dict) and first.get("target") is not None:
            return np.array([int(first["target"])], np.int64)
    box = sel.get(TARGET_BOX) if hasattr(sel, "get") else None
    if box and frame is not None:
        return targets_in_box(frame[["x", "y"]].to_numpy(), box)
    return None


def profile_chart(profile: pd.DataFrame, instruction: str | None, layer: int | None,
                  value: str = "nalign", title: str = "normalized alignment") -> alt.Chart:  # fmt: skip
    """A small chart of one target's (or a selection's mean) alignment against layer, one line
    per instruction; the page's instruction drawn thicker and its layer marked."""
    if profile.empty:
        return alt.Chart(pd.DataFrame({"x": []})).mark_point()
    names = list(dict.fromkeys(profile["instruction"]))
    base = alt.Chart(profile).encode(
        x=alt.X("layer:O", title="layer"),
        # the instructions' own colours (as in every chart), the legend below in rows so that
        # every instruction is listed in a narrow card
        color=alt.Color("instruction:N", title="instruction",
                        scale=alt.Scale(domain=names, range=instruction_hex(names)),
                        legend=alt.Legend(orient="bottom", columns=5, symbolLimit=0,
                                          labelLimit=0)),
    )  # fmt: skip
    line = base.mark_line(point=True).encode(
        y=alt.Y(f"{value}:Q", title=title),
        strokeWidth=alt.condition(f"datum.instruction == {instruction!r}", alt.value(3),
                                  alt.value(1.2)),  # fmt: skip
        tooltip=["instruction", "layer", alt.Tooltip(f"{value}:Q", format=".3f")],
    )
    layers = [line]
    if "sem" in profile and value == "mean":
        layers.insert(0, base.mark_area(opacity=0.15).encode(
            y=alt.Y("lo:Q"), y2="hi:Q"
        ).transform_calculate(lo="datum.mean - datum.sem", hi="datum.mean + datum.sem"))
    if layer is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"layer": [layer]}))
            .mark_rule(strokeDash=[4, 3], color="#888")
            .encode(x="layer:O")
        )
    return alt.layer(*layers).properties(height=200)


def instruction_hex(names: list[str]) -> list[str]:
    """``#rrggbb`` of each instruction's colour (:func:`core.viz.colours.named_colours`)."""
    from core.viz.colours import hex_colour, named_colours

    return [hex_colour(c) for c in named_colours(names)]


def histogram(values: pd.DataFrame, column: str, title: str, log: bool = False) -> alt.Chart:
    """A histogram of one column of a selection's per-target table."""
    data = values[[column]].replace([np.inf, -np.inf], np.nan).dropna()
    if log:
        data = data[data[column] > 0].assign(**{column: lambda d: np.log10(d[column])})
        title = f"log10 {title}"
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(x=alt.X(f"{column}:Q", bin=alt.Bin(maxbins=30), title=title),
                y=alt.Y("count():Q", title="targets"))  # fmt: skip
        .properties(height=150)
    )


def count_bars(counts: pd.DataFrame, category: str, title: str) -> alt.Chart:
    """Horizontal bars of how many targets fall in each category."""
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(y=alt.Y(f"{category}:N", sort="-x", title=title),
                x=alt.X("targets:Q", title="targets"),
                tooltip=[category, "targets"])  # fmt: skip
        .properties(height=max(60, 18 * len(counts)))
    )


def targets_in_box(xy: np.ndarray, box: dict) -> np.ndarray:
    """Indices of the targets inside an interval selection ``{"x": [lo, hi], "y": [lo, hi]}``
    over their flat coordinates ``xy`` (n_targets, 2)."""
    try:
        x0, x1 = sorted(float(v) for v in box["x"])
        y0, y1 = sorted(float(v) for v in box["y"])
    except (KeyError, TypeError, ValueError):
        return np.zeros(0, np.int64)
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return np.flatnonzero(inside)
