"""Figures for slides: any page's figures as PNG, SVG and PDF, one at a time or together in one
ZIP with a captions file that records what each figure shows (dataset, subjects, model,
instruction, layer, settings).

A page describes each figure as an :class:`ExportFigure` (a name, a caption and a function that
draws it with matplotlib); nothing is drawn until a file is asked for. Charts the pages draw with
Altair are drawn here by matplotlib too (:func:`bars_figure`, :func:`stacked_parts_figure`,
:func:`heatmap_figure`, :func:`curves_figure`), so they export as vector graphics; both drawings
read one description per chart (:mod:`core.viz.specs`), so a slide cannot drift from the screen.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.viz.specs import BarsSpec, bars_spec, curves_spec, heatmap_spec, parts_spec

FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


@dataclass(frozen=True)
class ExportFigure:
    """One exportable figure.

    Attributes
    ----------
    name : str
        File stem (letters, digits, ``-`` and ``_``; other characters are replaced).
    title : str
        What the figure is, in a few words.
    make : callable
        ``make() -> matplotlib.figure.Figure``; called only when a file is made.
    details : dict
        What the figure shows (dataset, subjects, model, instruction, layer, measure, ...), for the
        captions file.
    caption : str
        A sentence or two for the slide (what is drawn, the colour scale, the statistics).
    """

    name: str
    title: str
    make: Callable[[], object] = field(repr=False, compare=False)
    details: dict = field(default_factory=dict)
    caption: str = ""

    @property
    def stem(self) -> str:
        return safe_stem(self.name)


def safe_stem(name: str) -> str:
    """A file-name-safe version of ``name``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name).replace("·", "_")).strip("-._")
    stem = re.sub(r"-?_-?", "_", stem)
    return stem or "figure"


def render(fig, fmt: str, dpi: int = 200, clear: bool = True) -> bytes:
    """Encode a matplotlib figure as ``png``, ``svg`` or ``pdf`` bytes (the figure is cleared
    afterwards unless ``clear`` is False)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; expected one of {', '.join(FORMATS)}")
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=dpi if fmt == "png" else None)
    if clear:
        fig.clear()
    return buf.getvalue()


def figure_bytes(figure: ExportFigure, fmt: str) -> bytes:
    """One figure as ``fmt`` bytes."""
    return render(figure.make(), fmt)


def captions_text(figures: list[ExportFigure], context: dict) -> str:
    """The captions file (Markdown): the page's context, then per figure its files, title,
    caption and details."""
    lines = ["# Figures", ""]
    for key, value in context.items():
        lines.append(f"- **{key}**: {_fmt(value)}")
    lines.append("")
    for k, fig in enumerate(figures, start=1):
        files = ", ".join(f"`{fig.stem}.{ext}`" for ext in FORMATS)
        lines += [f"## {k}. {fig.title}", "", f"Files: {files}", ""]
        if fig.caption:
            lines += [fig.caption, ""]
        for key, value in fig.details.items():
            lines.append(f"- {key}: {_fmt(value)}")
        lines.append("")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def figures_zip(
    figures: list[ExportFigure], context: dict, formats: tuple[str, ...] = tuple(FORMATS)
) -> bytes:
    """A ZIP of every figure in every format, ``captions.md`` and ``captions.json``.

    A figure that cannot be drawn (e.g. a flat map of volume data without a surface mapping) is
    left out and named with the reason in ``NOT_DRAWN.txt`` and the captions, so the download
    always says what it holds and why something is missing."""
    buf = io.BytesIO()
    seen: dict[str, int] = {}
    records = []
    unique = []
    for fig in figures:
        stem = fig.stem
        if stem in seen:
            seen[stem] += 1
            stem = f"{stem}-{seen[stem]}"
        else:
            seen[stem] = 1
        unique.append(ExportFigure(stem, fig.title, fig.make, fig.details, fig.caption))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        missing = []
        for fig in unique:
            try:
                made = fig.make()  # drawn once, saved in every format
            except Exception as exc:  # one figure that cannot be drawn must not sink the rest
                missing.append(f"{fig.stem} ({fig.title}): {exc}")
                records.append({"files": [], "title": fig.title, "not_drawn": str(exc),
                                "details": _jsonable(fig.details)})  # fmt: skip
                continue
            files = []
            for fmt in formats:
                zf.writestr(f"{fig.stem}.{fmt}", render(made, fmt, clear=False))
                files.append(f"{fig.stem}.{fmt}")
            made.clear()
            records.append({"files": files, "title": fig.title, "caption": fig.caption,
                            "details": _jsonable(fig.details)})  # fmt: skip
        if missing:
            zf.writestr("NOT_DRAWN.txt", "Figures that could not be drawn:\n"
                        + "\n".join(missing) + "\n")  # fmt: skip
        drawn = [f for f in unique if not any(m.startswith(f"{f.stem} (") for m in missing)]
        zf.writestr("captions.md", captions_text(drawn, context)
                    + ("\n## Not drawn\n\n" + "\n".join(f"- {m}" for m in missing) + "\n"
                       if missing else ""))  # fmt: skip
        zf.writestr(
            "captions.json",
            json.dumps({"context": _jsonable(context), "figures": records}, indent=1),
        )
    return buf.getvalue()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


# --------------------------------------------------------------------------- matplotlib twins


def _new(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def bars_figure(
    summary: pd.DataFrame,
    group: str,
    value_title: str,
    roi_order: list[str],
    group_order: list[str] | None = None,
    stars: pd.DataFrame | None = None,
    ceiling: float | None = None,
    title: str = "",
    highlight: str | None = None,
    best: dict[str, str] | None = None,
):
    """Grouped bars per ROI with error bars and significance stars, from the same description
    as the screen's :func:`core.viz.charts.grouped_roi_bars` (:func:`core.viz.specs.bars_spec`).

    ``summary`` columns: ``roi``, ``group``, ``mean``, ``lo``, ``hi``; ``stars``: ``roi``,
    ``group``, ``stars``.
    """
    return bars_mpl(bars_spec(summary, group, value_title, roi_order, group_order, stars,
                              ceiling, highlight, title, best))  # fmt: skip


def bars_mpl(spec: BarsSpec):
    """The matplotlib drawing of a :class:`~core.viz.specs.BarsSpec` (slide-sized: at most
    10 inches wide; the legend beside the axes)."""
    rois, groups, data = spec.rois, spec.groups, spec.data
    width = 0.8 / max(len(groups), 1)
    fig = _new(min(10.0, max(6.0, 0.16 * len(rois) * len(groups) + 2.5)), 3.6)
    ax = fig.add_axes((0.08, 0.2, 0.72, 0.68))
    low, high = spec.y_domain
    span = max(high - low, 1e-6)
    for gi, g in enumerate(groups):
        rows = data[data[spec.group] == g]
        xs = [rois.index(r) - 0.4 + width * (gi + 0.5) for r in rows["roi"]]
        alpha = [1.0 if spec.highlight in (None, r) else 0.35 for r in rows["roi"]]
        for k, (x, y, a) in enumerate(zip(xs, rows["mean"], alpha, strict=True)):
            ax.bar(x, float(y), width=width * 0.92, color=spec.colours[g], alpha=a,
                   label=g if k == 0 else None)  # fmt: skip
        ax.vlines(xs, rows["lo"], rows["hi"], color="black", lw=0.8)
        for x, h, chosen in zip(xs, rows["hi"], rows["best"], strict=True):
            if chosen:  # the chosen bar of its ROI
                ax.plot([x], [float(h) + 0.01 * span], marker="v", color="#222", ms=5)
        for x, h, st in zip(xs, rows["hi"], rows["stars"], strict=True):
            if st:
                ax.text(x, float(h) + 0.015 * span, st, rotation=90, ha="center", va="bottom",
                        fontsize=8, linespacing=0.8)  # fmt: skip
    if spec.ceiling is not None:
        ax.axhline(spec.ceiling, color="#b3261e", ls="--", lw=1)
    ax.set_xticks(range(len(rois)), rois, rotation=45, ha="right")
    ax.set_ylabel(spec.value_title)
    ax.set_ylim(low, high)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(title=spec.group, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title_fontsize=8, frameon=False)  # fmt: skip
    if spec.title:
        ax.set_title(spec.title, fontsize=10)
    return fig


def stacked_parts_figure(long: pd.DataFrame, a: str, b: str, roi_order: list[str], title: str = ""):
    """Stacked bars per ROI of unique-A, shared and unique-B explained variance (``long``:
    ``roi``, ``part``, ``value``), from :func:`core.viz.specs.parts_spec` like the screen's
    :func:`core.viz.charts.partition_bars`."""
    spec = parts_spec(long, a, b, roi_order, title)
    rois = spec.rois
    fig = _new(max(5.0, 0.5 * len(rois) + 2.5), 3.4)
    ax = fig.add_axes((0.1, 0.2, 0.7, 0.68))
    pos = np.zeros(len(rois))
    neg = np.zeros(len(rois))
    for part in spec.parts:
        got = spec.data[spec.data["part"] == part].set_index("roi")["value"]
        vals = np.array([float(got.get(r, 0.0)) for r in rois])
        base = np.where(vals >= 0, pos, neg)
        ax.bar(range(len(rois)), vals, bottom=base, color=spec.colours[part], label=part,
               width=0.7)  # fmt: skip
        pos += np.where(vals >= 0, vals, 0)
        neg += np.where(vals < 0, vals, 0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(rois)), rois, rotation=45, ha="right")
    ax.set_ylabel("explained variance (R², test)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if spec.title:
        ax.set_title(spec.title, fontsize=10)
    return fig


def heatmap_figure(summary: pd.DataFrame, row: str, roi_order: list[str], value_title: str,
                   title: str = "", row_order: list[str] | None = None):  # fmt: skip
    """A ``row`` x ROI heatmap of ``mean`` with the values written in the cells, from
    :func:`core.viz.specs.heatmap_spec` like the screen's :func:`core.viz.charts.heatmap`."""
    spec = heatmap_spec(summary, row, roi_order, value_title, row_order, title)
    rows, rois, grid = spec.rows, spec.rois, spec.grid()
    fig = _new(max(5.0, 0.55 * len(rois) + 2.5), max(2.5, 0.32 * len(rows) + 1.4))
    ax = fig.add_axes((0.15, 0.22, 0.68, 0.7))
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    finite = grid[np.isfinite(grid)]
    mid = float(np.nanmean(finite)) if finite.size else 0.0
    for i in range(len(rows)):
        for j in range(len(rois)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if grid[i, j] > mid else "white")  # fmt: skip
    ax.set_xticks(range(len(rois)), rois, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    cax = fig.add_axes((0.85, 0.22, 0.02, 0.7))
    fig.colorbar(im, cax=cax).set_label(spec.value_title, fontsize=8)
    if spec.title:
        ax.set_title(spec.title, fontsize=10)
    return fig


def curves_figure(summary: pd.DataFrame, group: str, value_title: str, roi_order: list[str],
                  title: str = ""):  # fmt: skip
    """Value against layer, one line per ``group``, one small panel per ROI (``summary``:
    ``roi``, ``layer``, ``group``, ``mean``, ``lo``, ``hi``), from
    :func:`core.viz.specs.curves_spec` like the screen's :func:`core.viz.charts.layer_curves`."""
    spec = curves_spec(summary, group, value_title, roi_order, title)
    rois = spec.rois
    ncol = min(4, max(len(rois), 1))
    nrow = int(np.ceil(max(len(rois), 1) / ncol))
    fig = _new(2.6 * ncol + 1.6, 2.0 * nrow + 0.6)
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
    for k, roi in enumerate(rois):
        ax = axes[k // ncol][k % ncol]
        sub = spec.data[spec.data["roi"] == roi]
        for g in spec.groups:
            s = sub[sub[group] == g]
            if s.empty:
                continue
            colour = spec.colours[g]
            ax.fill_between(s["layer"], s["lo"], s["hi"], color=colour, alpha=0.2, lw=0)
            ax.plot(s["layer"], s["mean"], marker="o", ms=3, color=colour, label=g)
        ax.set_title(roi, fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    for k in range(len(rois), nrow * ncol):
        axes[k // ncol][k % ncol].set_visible(False)
    axes[0][0].set_ylabel(spec.value_title, fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=7, frameon=False)
    if spec.title:
        fig.suptitle(spec.title, fontsize=10)
    fig.tight_layout()
    return fig


def image_figure(png: bytes, title: str = ""):
    """A figure holding an already rendered PNG (e.g. a stimulus image)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    fig = _new(4.0, 4.0 * h / max(w, 1) + (0.3 if title else 0))
    ax = fig.add_axes((0, 0, 1, 0.92 if title else 1))
    ax.imshow(np.asarray(img))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig
