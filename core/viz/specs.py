"""One description per chart, drawn by Altair on screen (:mod:`core.viz.charts`) and by
matplotlib for slides (:mod:`core.viz.export`), so an exported figure cannot drift from the
chart a collaborator saw: the same rows, order, colours, stars, ceiling and axis range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.viz.colours import hex_colour, named_colours


@dataclass(frozen=True, eq=False)
class BarsSpec:
    """Grouped bars per ROI (one bar per group: instruction, model, source).

    Attributes
    ----------
    data : DataFrame
        One row per drawn bar, in drawing order: roi, ``group``, mean, lo, hi (the error bar),
        n_subjects (when given), stars ('' for none), q (NaN when unknown), best (True for the
        ROI's chosen bar, marked with a triangle).
    group : str
        The column naming a bar within an ROI.
    value_title : str
    rois, groups : list of str
        Axis and bar order.
    colours : dict of str to str
        ``#rrggbb`` per group (:func:`core.viz.colours.named_colours`).
    ceiling : float or None
        A dashed horizontal rule (the noise ceiling).
    y_domain : (float, float)
        The value axis, with headroom for the stars.
    highlight : str or None
        An ROI drawn at full opacity (the others faded) in exports.
    title : str
    """

    data: pd.DataFrame
    group: str
    value_title: str
    rois: list[str]
    groups: list[str]
    colours: dict[str, str]
    ceiling: float | None
    y_domain: tuple[float, float]
    highlight: str | None = None
    title: str = ""


def bars_spec(
    summary: pd.DataFrame,
    group: str,
    value_title: str,
    roi_order: list[str],
    group_order: list[str] | None = None,
    stars: pd.DataFrame | None = None,
    ceiling: float | None = None,
    highlight: str | None = None,
    title: str = "",
    best: dict[str, str] | None = None,
) -> BarsSpec:
    """The :class:`BarsSpec` of a summary table (columns roi, ``group``, mean, lo, hi), its
    significance stars (columns roi, ``group``, stars, optionally q) and the chosen bar of each
    ROI (``best``: ROI -> group, e.g. the instruction chosen by cross-validation)."""
    groups = list(group_order or dict.fromkeys(summary[group]))
    rois = [r for r in roi_order if r in set(summary["roi"])]
    data = summary[summary["roi"].isin(rois) & summary[group].isin(groups)].copy()
    data["stars"], data["q"] = "", np.nan
    if stars is not None and not stars.empty:
        keep = [c for c in ("roi", group, "stars", "q") if c in stars]
        marks = stars[keep].rename(columns={"stars": "_stars", "q": "_q"})
        data = data.merge(marks, on=["roi", group], how="left")
        data["stars"] = data["_stars"].fillna("").astype(str)
        data["q"] = data["_q"] if "_q" in data else np.nan
        data = data.drop(columns=[c for c in ("_stars", "_q") if c in data])
    best = best or {}
    data["best"] = [best.get(r) == g for r, g in zip(data["roi"], data[group], strict=True)]
    order = {(r, g): i for i, (r, g) in enumerate((r, g) for r in rois for g in groups)}
    data = data.assign(_o=[order[(r, g)] for r, g in zip(data["roi"], data[group], strict=True)])
    data = data.sort_values("_o").drop(columns="_o").reset_index(drop=True)
    top = float(np.nanmax(data["hi"])) if len(data) else 1.0
    low = min(0.0, float(np.nanmin(data["lo"])) if len(data) else 0.0)
    if ceiling is not None:
        top = max(top, float(ceiling))
    span = max(top - low, 1e-6)
    headroom = 0.22 if (data["stars"] != "").any() else (0.1 if data["best"].any() else 0.06)
    colours = dict(zip(groups, (hex_colour(c) for c in named_colours(groups)), strict=True))
    return BarsSpec(data, group, value_title, rois, groups, colours, ceiling,
                    (low, top + headroom * span), highlight, title)  # fmt: skip


@dataclass(frozen=True, eq=False)
class HeatmapSpec:
    """A ``row`` x ROI grid of values with every row labelled, rows in the bars' order.

    Attributes
    ----------
    data : DataFrame
        roi, ``row``, mean (one row per cell).
    row : str
    rows, rois : list of str
    value_title : str
    title : str
    """

    data: pd.DataFrame
    row: str
    rows: list[str]
    rois: list[str]
    value_title: str
    title: str = ""

    def grid(self) -> np.ndarray:
        """The values as an array of shape (n_rows, n_rois) (NaN where absent)."""
        out = np.full((len(self.rows), len(self.rois)), np.nan)
        for r, c, v in self.data[[self.row, "roi", "mean"]].itertuples(index=False):
            out[self.rows.index(r), self.rois.index(c)] = v
        return out


def heatmap_spec(summary: pd.DataFrame, row: str, roi_order: list[str], value_title: str,
                 row_order: list[str] | None = None, title: str = "") -> HeatmapSpec:  # fmt: skip
    """The :class:`HeatmapSpec` of a summary table (columns roi, ``row``, mean)."""
    rows = list(row_order or dict.fromkeys(summary[row]))
    rois = [r for r in roi_order if r in set(summary["roi"])]
    data = summary[summary["roi"].isin(rois) & summary[row].isin(rows)][["roi", row, "mean"]]
    return HeatmapSpec(data.reset_index(drop=True), row, rows, rois, value_title, title)


@dataclass(frozen=True, eq=False)
class CurvesSpec:
    """Value against layer, one line per group, one panel per ROI.

    Attributes
    ----------
    data : DataFrame
        roi, layer, ``group``, mean, lo, hi, sorted by ROI, group and layer.
    group : str
    groups, rois : list of str
    colours : dict of str to str
    value_title : str
    title : str
    """

    data: pd.DataFrame
    group: str
    groups: list[str]
    rois: list[str]
    colours: dict[str, str]
    value_title: str
    title: str = ""


def curves_spec(summary: pd.DataFrame, group: str, value_title: str, roi_order: list[str],
                title: str = "") -> CurvesSpec:  # fmt: skip
    """The :class:`CurvesSpec` of a summary table (columns roi, layer, ``group``, mean, lo,
    hi)."""
    groups = list(dict.fromkeys(summary[group]))
    rois = [r for r in roi_order if r in set(summary["roi"])]
    data = summary[summary["roi"].isin(rois)].copy()
    data["_r"] = data["roi"].map({r: i for i, r in enumerate(rois)})
    data["_g"] = data[group].map({g: i for i, g in enumerate(groups)})
    data = data.sort_values(["_r", "_g", "layer"]).drop(columns=["_r", "_g"]).reset_index(drop=True)
    colours = dict(zip(groups, (hex_colour(c) for c in named_colours(groups)), strict=True))
    return CurvesSpec(data, group, groups, rois, colours, value_title, title)


#: Colours of the variance parts (unique A, shared, unique B).
PART_COLOURS = ("#1f77b4", "#8c6bb1", "#ff7f0e")


@dataclass(frozen=True, eq=False)
class PartsSpec:
    """Stacked bars per ROI of unique-A, shared and unique-B explained variance (negative parts
    drawn below zero).

    Attributes
    ----------
    data : DataFrame
        roi, part, value, in ROI then part order.
    parts, rois : list of str
    colours : dict of str to str
    title : str
    """

    data: pd.DataFrame
    parts: list[str]
    rois: list[str]
    colours: dict[str, str]
    title: str = ""


def parts_spec(long: pd.DataFrame, a: str, b: str, roi_order: list[str],
               title: str = "") -> PartsSpec:  # fmt: skip
    """The :class:`PartsSpec` of a long table (columns roi, part, value)."""
    parts = [f"unique {a}", "shared", f"unique {b}"]
    rois = [r for r in roi_order if r in set(long["roi"])]
    data = (long[long["roi"].isin(rois) & long["part"].isin(parts)]
            .groupby(["roi", "part"], sort=False)["value"].sum().reset_index())  # fmt: skip
    data["_r"] = data["roi"].map({r: i for i, r in enumerate(rois)})
    data["_p"] = data["part"].map({p: i for i, p in enumerate(parts)})
    data = data.sort_values(["_r", "_p"]).drop(columns=["_r", "_p"]).reset_index(drop=True)
    return PartsSpec(data, parts, rois, dict(zip(parts, PART_COLOURS, strict=True)), title)
