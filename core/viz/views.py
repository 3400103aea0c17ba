"""Ready-to-show figures and download payloads for the app's pages (no streamlit here).

Each function takes plain arrays and names (so a page can cache its inputs by string keys) and
returns a matplotlib figure, PNG bytes or file bytes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from core.viz.colours import named_colours
from core.viz.flatmap import (
    FlatmapRaster,
    categorical_rgba,
    draw_flatmap,
    figure_png,
    flatmap_rgba,
)

SIMULATED_BADGE = "SIMULATED data"

#: Colours of categorical maps (instructions), colour-blind friendly first (Okabe-Ito + tab10).


def value_limits(values: np.ndarray, symmetric: bool = False, pct: float = 99.0):
    """Colour limits from the finite values: percentiles, or symmetric around 0."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        top = float(np.percentile(np.abs(v), pct)) or 1e-6
        return -top, top
    lo, hi = float(np.percentile(v, 100 - pct)), float(np.percentile(v, pct))
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def value_map(
    raster: FlatmapRaster,
    values: np.ndarray,
    *,
    label: str,
    title: str | None = None,
    rois: dict[str, np.ndarray] | None = None,
    highlight: str | None = None,
    cmap: str | None = None,
    limits: tuple[float, float] | None = None,
    symmetric: bool = False,
    mask: np.ndarray | None = None,
    simulated: bool = False,
):
    """A flatmap figure of one value per target, with ROI outlines, colour bar and badge."""
    values = np.asarray(values, dtype=np.float64)
    if mask is not None:
        values = np.where(mask, values, np.nan)
    vmin, vmax = limits if limits is not None else value_limits(values, symmetric)
    cmap = cmap or ("RdBu_r" if symmetric else "inferno")
    rgba = flatmap_rgba(raster, values, cmap=cmap, vmin=vmin, vmax=vmax)
    return draw_flatmap(
        raster,
        rgba,
        rois=rois,
        highlight=highlight,
        title=title,
        colorbar=(cmap, vmin, vmax, label),
        badge=SIMULATED_BADGE if simulated else None,
    )


def category_map(
    raster: FlatmapRaster,
    labels: np.ndarray,
    names: list[str],
    *,
    title: str | None = None,
    rois: dict[str, np.ndarray] | None = None,
    highlight: str | None = None,
    simulated: bool = False,
):
    """A flatmap coloured by category (e.g. best instruction per target; -1 = not shown),
    with a legend of the categories that occur."""
    colours = named_colours(names)
    rgba = categorical_rgba(raster, labels, colours)
    present = sorted({int(v) for v in np.unique(labels) if v >= 0})
    legend = [(names[i], colours[i]) for i in present] or None
    return draw_flatmap(
        raster,
        rgba,
        rois=rois,
        highlight=highlight,
        title=title,
        legend=legend,
        badge=SIMULATED_BADGE if simulated else None,
    )


def png(fig) -> bytes:
    """PNG bytes of a figure (the figure is closed afterwards)."""
    data = figure_png(fig)
    fig.clear()
    return data


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An uncompressed ``.npz`` (no object arrays, no pickle) as bytes, for downloads."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object")
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """A table as ``"csv"`` or ``"parquet"`` bytes."""
    if fmt == "csv":
        return df.to_csv(index=False).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        df.reset_index(drop=True).to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"unknown table format {fmt!r}")


def roi_prediction_frame(rois: pd.DataFrame) -> pd.DataFrame:
    """Long table (roi, source, value) of predicted and measured ROI means, for a bar chart."""
    cols = [c for c in ("predicted", "measured") if c in rois]
    long = rois.melt(id_vars=["roi"], value_vars=cols, var_name="source", value_name="value")
    return long


def roi_prediction_chart(rois: pd.DataFrame, roi_order: list[str]):
    """Grouped bars of the predicted (and measured) mean response per ROI; click selects an ROI
    (selection ``roi_pick``)."""
    import altair as alt

    from core.viz.charts import ROI_SELECTION

    long = roi_prediction_frame(rois)
    pick = alt.selection_point(name=ROI_SELECTION, fields=["roi"], on="click", clear="dblclick")
    order = ["predicted", "measured"]
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("roi:N", sort=roi_order, title="ROI"),
            xOffset=alt.XOffset("source:N", sort=order),
            y=alt.Y("value:Q", title="mean response (training z units)"),
            color=alt.Color(
                "source:N",
                sort=order,
                scale=alt.Scale(domain=order, range=["#4c78a8", "#9c9c9c"]),
                title=None,
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)),
            tooltip=["roi", "source", alt.Tooltip("value:Q", format=".3f")],
        )
        .add_params(pick)
        .properties(height=260)
    )


def model_roi_chart(summary: pd.DataFrame, roi_order: list[str], model_order: list[str]):
    """Per ROI, one bar per model (mean and s.e.m. across subjects of normalised alignment) with
    the noise ceiling (1.0) drawn; click selects an ROI."""
    from core.viz.charts import grouped_roi_bars

    return grouped_roi_bars(
        summary,
        group="model",
        value_title="normalized alignment (r / √NC)",
        roi_order=roi_order,
        group_order=model_order,
        ceiling=1.0,
    )


def selected_roi(event, rois: list[str]) -> str | None:
    """The ROI picked in an Altair selection event (``st.altair_chart(..., on_select=...)``)."""
    from core.viz.charts import ROI_SELECTION

    try:
        sel = event["selection"][ROI_SELECTION]
    except (KeyError, TypeError):
        try:
            sel = event.selection[ROI_SELECTION]
        except (AttributeError, KeyError, TypeError):
            return None
    if not sel:
        return None
    first = sel[0] if isinstance(sel, list) else sel
    roi = first.get("roi") if isinstance(first, dict) else None
    return roi if roi in rois else None
