"""Figures for slides: PNG/SVG/PDF of any figure, the ZIP with its captions, and the matplotlib
twins of the Altair charts (stars above the bars, not on them)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from core.viz import export


@pytest.fixture
def summary():
    rows = []
    for roi in ("V1", "V2", "FFA"):
        for k, ins in enumerate(("IC", "IU1", "VQ2", "CR")):
            m = 0.3 + 0.1 * k
            rows.append({"roi": roi, "instruction": ins, "mean": m, "lo": m - 0.05,
                         "hi": m + 0.05, "n_subjects": 3})  # fmt: skip
    return pd.DataFrame(rows)


def test_render_formats(summary):
    fig = export.bars_figure(summary, "instruction", "alignment", ["V1", "V2", "FFA"])
    png = export.render(fig, "png", clear=False)
    svg = export.render(fig, "svg", clear=False)
    pdf = export.render(fig, "pdf")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg[:500]
    assert pdf[:5] == b"%PDF-"
    with pytest.raises(ValueError):
        export.render(fig, "gif")


def test_stars_sit_above_their_bars(summary):
    stars = pd.DataFrame({"roi": ["V1", "V1", "FFA"], "instruction": ["IU1", "VQ2", "CR"],
                          "stars": ["***", "**", "*"]})  # fmt: skip
    fig = export.bars_figure(summary, "instruction", "alignment", ["V1", "V2", "FFA"],
                             stars=stars)  # fmt: skip
    ax = fig.axes[0]
    texts = [t for t in ax.texts if "*" in t.get_text()]
    assert len(texts) == 3
    hi = summary.set_index(["roi", "instruction"])["hi"]
    for t, (roi, ins) in zip(texts, [("V1", "IU1"), ("V1", "VQ2"), ("FFA", "CR")], strict=True):
        assert t.get_rotation() == 90  # vertical: one bar wide
        assert t.get_position()[1] > hi[(roi, ins)]  # above the error bar
    assert ax.get_ylim()[1] > summary["hi"].max() * 1.1  # room for them


def test_other_chart_twins_draw():
    long = pd.DataFrame({"roi": ["V1"] * 3 + ["FFA"] * 3,
                         "part": ["unique IC", "shared", "unique IU2"] * 2,
                         "value": [0.1, 0.2, -0.01, 0.05, 0.1, 0.02]})  # fmt: skip
    assert export.stacked_parts_figure(long, "IC", "IU2", ["V1", "FFA"]).axes
    heat = pd.DataFrame({"instruction": ["IC", "IC", "IU1", "IU1"], "roi": ["V1", "FFA"] * 2,
                         "mean": [0.1, 0.2, 0.3, np.nan]})  # fmt: skip
    assert export.heatmap_figure(heat, "instruction", ["V1", "FFA"], "a").axes
    curves = pd.DataFrame({"roi": ["V1"] * 4, "layer": [0, 1, 0, 1], "model": ["a", "a", "b", "b"],
                           "mean": [0.1, 0.2, 0.3, 0.2]}).assign(lo=lambda d: d["mean"] - 0.1,
                                                                 hi=lambda d: d["mean"] + 0.1)
    assert export.curves_figure(curves, "model", "a", ["V1"]).axes


def test_zip_holds_every_figure_in_every_format_with_captions(summary):
    figs = [
        export.ExportFigure("bars", "Bars", lambda: export.bars_figure(
            summary, "instruction", "alignment", ["V1", "V2", "FFA"]),
            {"dataset": "demo", "subjects": ["subj01", "subj02"], "model": "demo-vlm",
             "instruction": "IC", "layer": 4}, "Mean ± s.e.m."),
        export.ExportFigure("bars", "Same stem", lambda: export.heatmap_figure(
            summary, "instruction", ["V1", "V2", "FFA"], "a")),
    ]  # fmt: skip
    data = export.figures_zip(figs, {"page": "Compare instructions", "dataset": "demo"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert {"bars.png", "bars.svg", "bars.pdf", "bars-2.png", "bars-2.svg", "bars-2.pdf",
                "captions.md", "captions.json"} == names  # fmt: skip
        md = zf.read("captions.md").decode()
        meta = json.loads(zf.read("captions.json"))
    for needle in ("Compare instructions", "demo-vlm", "subj01, subj02", "layer: 4",
                   "instruction: IC", "Mean ± s.e.m.", "`bars.svg`"):  # fmt: skip
        assert needle in md
    assert meta["figures"][0]["details"]["layer"] == 4
    assert export.safe_stem("a/b · c") == "a-b_c"


def test_a_figure_that_cannot_be_drawn_is_named_in_the_zip_with_its_reason():
    import io
    import zipfile

    from core.viz import export

    def fails():
        raise ValueError("this target set has no surface geometry; no flatmap can be drawn")

    ok = export.ExportFigure("bars", "Bars", lambda: export.image_figure(_png()), {}, "fine")
    bad = export.ExportFigure("flat", "Flat map", fails, {}, "")
    zf = zipfile.ZipFile(io.BytesIO(export.figures_zip([ok, bad], {"dataset": "x"})))
    names = zf.namelist()
    assert "bars.png" in names and not any(n.startswith("flat.") for n in names)
    assert "no surface geometry" in zf.read("NOT_DRAWN.txt").decode()
    assert "Not drawn" in zf.read("captions.md").decode()


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format="PNG")
    return buf.getvalue()
