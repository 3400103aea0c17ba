"""Altair chart specs and small matplotlib figures for the app; never calls streamlit.

The charts read tidy ROI tables (one row per subject x model x instruction x layer x ROI) with at
least the columns named in each function's docstring. Selections are named ``roi_pick`` so that a
page can read which ROI was clicked (``st.altair_chart(..., on_select="rerun")``).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from core.viz.specs import (  # noqa: E402
    BarsSpec,
    HeatmapSpec,
    bars_spec,
    curves_spec,
    heatmap_spec,
    parts_spec,
)

ROI_SELECTION = "roi_pick"


def summarise_subjects(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean and s.e.m. of ``value`` across subjects for each group of ``by``, ready to plot.

    Rows of one subject within a group are averaged first; the across-subject statistics come
    from :func:`core.encoding.roi.summarize_across_subjects` (a single subject has no s.e.m.:
    drawn as 0).

    Returns
    -------
    table : DataFrame with columns ``by + ["n_subjects", "mean", "sem", "lo", "hi"]``
    """
    from core.encoding.roi import summarize_across_subjects

    per_subject = df.groupby([*by, "subject"], sort=False)[value].mean().reset_index()
    out = summarize_across_subjects(per_subject, value=value, by=by)
    out["sem"] = out["sem"].fillna(0.0)
    out["lo"] = out["mean"] - out["sem"]
    out["hi"] = out["mean"] + out["sem"]
    return out


def grouped_roi_bars(
    summary: pd.DataFrame,
    group: str,
    value_title: str,
    roi_order: list[str],
    group_order: list[str] | None = None,
    stars: pd.DataFrame | None = None,
    ceiling: float | None = None,
    best: dict[str, str] | None = None,
) -> alt.Chart:
    """Grouped bars per ROI (e.g. one bar per instruction) with error bars, drawn from
    :func:`core.viz.specs.bars_spec` (the same description the slide export draws).

    Parameters
    ----------
    summary : DataFrame
        Columns ``roi``, ``group``, ``mean``, ``lo``, ``hi`` (from :func:`summarise_subjects`,
        or bootstrap intervals).
    group : str
        Column that distinguishes bars within an ROI.
    value_title : str
        Y axis title.
    roi_order, group_order : list of str
    stars : DataFrame, optional
        Columns ``roi``, ``group``, ``stars`` (e.g. "**"), drawn above the bars.
    ceiling : float, optional
        A horizontal rule (e.g. 1.0 for the noise ceiling of normalized alignment).
    best : dict of str to str, optional
        ROI -> the group chosen there (marked with a triangle above its bar).
    """
    return bars_chart(bars_spec(summary, group, value_title, roi_order, group_order, stars,
                                ceiling, best=best))  # fmt: skip


def bars_chart(spec: BarsSpec) -> alt.Chart:
    """The Altair drawing of a :class:`~core.viz.specs.BarsSpec`."""
    group, data = spec.group, spec.data
    pick = alt.selection_point(name=ROI_SELECTION, fields=["roi"], on="click", clear="dblclick")
    base = alt.Chart(data).encode(
        x=alt.X("roi:N", sort=spec.rois, title="ROI"),
        xOffset=alt.XOffset(f"{group}:N", sort=spec.groups),
    )
    y_scale = alt.Scale(domain=list(spec.y_domain), nice=False)
    tooltip = ["roi", group, alt.Tooltip("mean:Q", format=".3f")]
    if "n_subjects" in data:
        tooltip.append(alt.Tooltip("n_subjects:Q"))
    bars = (
        base.mark_bar()
        .encode(
            y=alt.Y("mean:Q", title=spec.value_title, scale=y_scale),
            color=alt.Color(f"{group}:N", sort=spec.groups, title=group,
                            scale=alt.Scale(domain=spec.groups,
                                            range=[spec.colours[g] for g in spec.groups])),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)),
            tooltip=tooltip,
        )
        .add_params(pick)
    )  # fmt: skip
    errs = base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q")
    layers = [bars, errs]
    star_df = data[data["stars"] != ""]
    if not star_df.empty:
        layers.append(star_marks(star_df, group, spec.rois, spec.groups))
    best_df = data[data["best"]]
    if not best_df.empty:  # the chosen bar of each ROI, below any stars
        layers.append(
            alt.Chart(best_df).mark_point(shape="triangle-down", filled=True, size=60,
                                          color="#222", yOffset=-8)
            .encode(x=alt.X("roi:N", sort=spec.rois),
                    xOffset=alt.XOffset(f"{group}:N", sort=spec.groups), y="hi:Q",
                    tooltip=["roi", alt.Tooltip(f"{group}:N", title=f"chosen {group}")])
        )  # fmt: skip
    if spec.ceiling is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"y": [spec.ceiling]}))
            .mark_rule(strokeDash=[6, 4], color="#b3261e")
            .encode(y="y:Q")
        )
    return alt.layer(*layers).properties(height=320)


def star_marks(
    star_df: pd.DataFrame, group: str, roi_order: list[str], group_order: list[str] | None
) -> alt.Chart:
    """Significance stars drawn vertically (rotated 90°) just above each bar's error bar, so that
    they take one bar's width and never overlap each other or the bars; their tooltip gives the
    instruction, the ROI and the q-value where known."""
    tooltip = ["roi", group, "stars:N"]
    if "q" in star_df and star_df["q"].notna().any():
        tooltip.append(alt.Tooltip("q:Q", format=".2g", title="q (BH)"))
    return (
        alt.Chart(star_df)
        # dx: along the (vertical) text, away from the error bar; dy: across it, by half a
        # bar, since a text mark sits at the start of its offset band, not at its centre
        .mark_text(angle=270, align="left", baseline="middle", dx=3,
                   dy=alt.ExprRef("bandwidth('xOffset') / 2"), fontSize=10, fontWeight="bold",
                   color="#222")  # fmt: skip
        .encode(
            x=alt.X("roi:N", sort=roi_order),
            xOffset=alt.XOffset(f"{group}:N", sort=group_order),
            y="hi:Q",
            text="stars:N",
            tooltip=tooltip,
        )
    )


def heatmap(
    summary: pd.DataFrame, row: str, roi_order: list[str], value_title: str,
    cell_height: int | None = None, row_order: list[str] | None = None,
) -> alt.Chart:  # fmt: skip
    """A ``row`` x ROI heatmap of ``mean`` with the values written in the cells, drawn from
    :func:`core.viz.specs.heatmap_spec`: every row labelled, rows in ``row_order`` (default:
    their order in ``summary``, as the bars) (``cell_height``: of the cells' area, default
    28 px per row)."""
    return heatmap_chart(heatmap_spec(summary, row, roi_order, value_title, row_order),
                         cell_height)  # fmt: skip


def heatmap_chart(spec: HeatmapSpec, cell_height: int | None = None) -> alt.Chart:
    """The Altair drawing of a :class:`~core.viz.specs.HeatmapSpec`."""
    row = spec.row
    pick = alt.selection_point(name=ROI_SELECTION, fields=["roi"], on="click", clear="dblclick")
    base = alt.Chart(spec.data).encode(
        x=alt.X("roi:N", sort=spec.rois, title="ROI"),
        y=alt.Y(f"{row}:N", sort=spec.rows, title=row, axis=alt.Axis(labelOverlap=False)),
    )
    rect = (
        base.mark_rect()
        .encode(
            color=alt.Color("mean:Q", title=spec.value_title, scale=alt.Scale(scheme="viridis"),
                            legend=alt.Legend(titleLimit=400, orient="right")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
            tooltip=[row, "roi", alt.Tooltip("mean:Q", format=".3f")],
        )
        .add_params(pick)
    )  # fmt: skip
    mid = float(np.nanmean(spec.data["mean"])) if len(spec.data) else 0.0
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("mean:Q", format=".2f"),
        color=alt.condition(f"datum.mean > {mid}", alt.value("black"), alt.value("white")),
    )
    return alt.layer(rect, text).properties(
        height=cell_height if cell_height is not None else 28 * max(len(spec.rows), 3)
    )


def layer_curves(
    summary: pd.DataFrame, group: str, value_title: str, roi_order: list[str], columns: int = 5
) -> alt.Chart:
    """Value against layer, one line per ``group``, one small panel per ROI, drawn from
    :func:`core.viz.specs.curves_spec`.

    ``summary`` columns: ``roi``, ``layer``, ``group``, ``mean``, ``lo``, ``hi``.
    """
    spec = curves_spec(summary, group, value_title, roi_order)
    base = alt.Chart(spec.data).encode(
        x=alt.X("layer:O", title="layer"),
        color=alt.Color(f"{group}:N", sort=spec.groups,
                        scale=alt.Scale(domain=spec.groups,
                                        range=[spec.colours[g] for g in spec.groups])),
    )  # fmt: skip
    line = base.mark_line(point=True).encode(y=alt.Y("mean:Q", title=value_title))
    band = base.mark_area(opacity=0.2).encode(y="lo:Q", y2="hi:Q")
    return (
        alt.layer(band, line)
        .properties(width=180, height=140)
        .facet(facet=alt.Facet("roi:N", sort=spec.rois, title=None), columns=columns)
    )


def partition_bars(table: pd.DataFrame, a: str, b: str, roi_order: list[str]) -> alt.Chart:
    """Stacked bars per ROI of unique-A, shared and unique-B explained variance, drawn from
    :func:`core.viz.specs.parts_spec` (negative parts below zero).

    ``table`` columns: ``roi``, ``part`` (``f"unique {a}"``, ``"shared"``, ``f"unique {b}"``),
    ``value``.
    """
    spec = parts_spec(table, a, b, roi_order)
    order = spec.parts
    pick = alt.selection_point(name=ROI_SELECTION, fields=["roi"], on="click", clear="dblclick")
    return (
        alt.Chart(spec.data)
        .mark_bar()
        .encode(
            x=alt.X("roi:N", sort=spec.rois, title="ROI"),
            y=alt.Y("value:Q", title="explained variance (R², test)", stack="zero"),
            color=alt.Color(
                "part:N",
                sort=order,
                scale=alt.Scale(domain=order, range=[spec.colours[p] for p in order]),
            ),
            order=alt.Order("part_order:Q"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4)),
            tooltip=["roi", "part", alt.Tooltip("value:Q", format=".4f")],
        )
        .transform_calculate(part_order=f"indexof({order!r}, datum.part)")
        .add_params(pick)
        .properties(height=300)
    )


def length_scatter(points: pd.DataFrame, roi_order: list[str], columns: int = 6) -> alt.Chart:
    """Answer length against alignment, one small panel per ROI, one point per instruction (in
    its colour).

    ``points`` columns: ``roi``, ``instruction``, ``mean_tokens``, ``alignment``
    (:func:`core.results.controls.length_alignment`).
    """
    from core.viz.colours import hex_colour, named_colours

    rois = [r for r in roi_order if r in set(points["roi"])]
    names = list(dict.fromkeys(points["instruction"]))
    colours = [hex_colour(c) for c in named_colours(names)]
    return (
        alt.Chart(points[points["roi"].isin(rois)])
        .mark_circle(size=45)
        .encode(
            x=alt.X("mean_tokens:Q", title="mean answer length (tokens)",
                    scale=alt.Scale(zero=False)),
            y=alt.Y("alignment:Q", title="normalized alignment", scale=alt.Scale(zero=False)),
            color=alt.Color("instruction:N", sort=names,
                            scale=alt.Scale(domain=names, range=colours)),
            tooltip=["roi", "instruction", alt.Tooltip("mean_tokens:Q", format=".1f"),
                     alt.Tooltip("alignment:Q", format=".3f")],
        )
        .properties(width=120, height=110)
        .facet(facet=alt.Facet("roi:N", sort=rois, title=None), columns=columns)
        .resolve_scale(y="independent")
    )  # fmt: skip


def venn_layout(unique_a: float, shared: float, unique_b: float,
                scale: float | None = None) -> tuple[float, float, float]:  # fmt: skip
    """Radii and centre distance of a two-circle Venn diagram drawn to scale: circle A's area is
    R²(A) = unique A + shared, B's is R²(B), their overlap is the shared part, all relative to
    ``scale`` (the R² a circle of radius 1 stands for; default the larger of R²(A) and R²(B), so
    the larger circle has radius 1). Pass one ``scale`` to every figure that is compared (the
    largest total over the ROIs shown) and their circles are comparable across figures.

    Negative parts cannot be drawn as areas: a negative total is drawn as no circle, a negative
    shared part as circles that just touch, and an overlap larger than the smaller circle (a
    negative unique part) as that circle inside the other.

    Returns
    -------
    ra, rb, d : float
        The radii of A and B and the distance between their centres.
    """
    total_a, total_b = max(unique_a + shared, 0.0), max(unique_b + shared, 0.0)
    scale = scale if scale is not None and scale > 0 else max(total_a, total_b, 1e-12)
    ra, rb = np.sqrt(total_a / scale), np.sqrt(total_b / scale)
    target = np.pi * min(max(shared, 0.0) / scale, ra**2, rb**2)  # overlap area wanted
    lo, hi = abs(ra - rb), ra + rb  # full containment .. touching
    if target <= 0 or hi <= 0:
        return float(ra), float(rb), float(hi)
    if target >= np.pi * min(ra, rb) ** 2 * (1 - 1e-9):
        return float(ra), float(rb), float(lo)
    for _ in range(60):  # the lens area falls monotonically with the distance: bisection
        mid = 0.5 * (lo + hi)
        if _lens_area(ra, rb, mid) > target:
            lo = mid
        else:
            hi = mid
    return float(ra), float(rb), float(0.5 * (lo + hi))


def _lens_area(ra: float, rb: float, d: float) -> float:
    """Area of the intersection of two circles of radii ``ra``, ``rb`` at distance ``d``."""
    if d >= ra + rb:
        return 0.0
    if d <= abs(ra - rb):
        return float(np.pi * min(ra, rb) ** 2)
    ca = np.clip((d * d + ra * ra - rb * rb) / (2 * d * ra), -1, 1)
    cb = np.clip((d * d + rb * rb - ra * ra) / (2 * d * rb), -1, 1)
    k = (-d + ra + rb) * (d + ra - rb) * (d - ra + rb) * (d + ra + rb)
    return float(ra * ra * np.arccos(ca) + rb * rb * np.arccos(cb) - 0.5 * np.sqrt(max(k, 0.0)))


def venn_figure(unique_a: float, shared: float, unique_b: float, a: str, b: str, title: str = "",
                scale: float | None = None):  # fmt: skip
    """A two-circle Venn diagram drawn to scale (see :func:`venn_layout`): circle areas are
    R²(A) and R²(B), the overlap is the shared part; with a common ``scale`` the circles of
    several figures (one per ROI) are comparable. The three values are written under the
    circles (negative ones included, which no area can show), in the colours of the bars.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    from core.viz.specs import PART_COLOURS

    colour_a, colour_shared, colour_b = PART_COLOURS
    ra, rb, d = venn_layout(unique_a, shared, unique_b, scale)
    fig = Figure(figsize=(3.2, 2.6), dpi=100)
    ax = fig.add_axes((0, 0.2, 1, 0.68))
    if ra > 0:
        ax.add_patch(Circle((0, 0), ra, color=colour_a, alpha=0.45, lw=0))
    if rb > 0:
        ax.add_patch(Circle((d, 0), rb, color=colour_b, alpha=0.45, lw=0))
    centre = (d + rb - ra) / 2
    half = max(2.1, (d + rb + ra) / 2 + 0.05)  # one frame for all: radius 1 fills the height
    ax.set_xlim(centre - half, centre + half)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_axis_off()
    for x, text, colour in ((0.17, f"unique {a}\n{unique_a:.3f}", colour_a),
                            (0.5, f"shared\n{shared:.3f}", colour_shared),
                            (0.83, f"unique {b}\n{unique_b:.3f}", colour_b)):  # fmt: skip
        fig.text(x, 0.03, text, ha="center", va="bottom", fontsize=8.5, color=colour,
                 fontweight="bold" if text.startswith("shared") else "normal")  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
