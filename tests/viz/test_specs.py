"""Screen (Altair) and slides (matplotlib) draw each chart from one description: the same
rows, order, colours, stars and ceiling."""

import numpy as np
import pandas as pd
import pytest

from core.viz import charts, export
from core.viz.colours import hex_colour, named_colours
from core.viz.specs import bars_spec, heatmap_spec


@pytest.fixture
def summary():
    rows = []
    for roi in ("V1", "FFA", "PPA"):
        for k, ins in enumerate(("IU1", "VQ2", "CR")):
            m = 0.3 + 0.1 * k + (0.05 if roi == "FFA" else 0.0)
            rows.append({"roi": roi, "instruction": ins, "mean": m, "lo": m - 0.02, "hi": m + 0.02,
                         "n_subjects": 3})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def stars():
    return pd.DataFrame({"roi": ["FFA"], "instruction": ["VQ2"], "stars": ["**"], "q": [0.004]})


def _altair_rows(chart) -> list[dict]:
    spec = chart.to_dict()
    return next(iter(spec["datasets"].values()))


def test_bar_chart_and_slide_draw_the_same_bars(summary, stars):
    roi_order, order = ["V1", "FFA", "PPA"], ["CR", "IU1", "VQ2"]
    spec = bars_spec(summary, "instruction", "alignment", roi_order, order, stars, ceiling=1.0)
    screen = _altair_rows(charts.grouped_roi_bars(summary, "instruction", "alignment", roi_order,
                                                  order, stars, ceiling=1.0))  # fmt: skip
    assert [(r["roi"], r["instruction"], r["mean"]) for r in screen] == list(
        spec.data[["roi", "instruction", "mean"]].itertuples(index=False, name=None))
    fig = export.bars_figure(summary, "instruction", "alignment", roi_order, order, stars, ceiling=1.0)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    by_group = spec.data.sort_values(["instruction"], key=lambda c: c.map(order.index), kind="stable")
    np.testing.assert_allclose(heights, by_group["mean"])
    colours = [hex_colour(p.get_facecolor()[:3]) for p in ax.patches]
    assert colours == [spec.colours[g] for g in by_group["instruction"]]
    assert tuple(ax.get_ylim()) == pytest.approx(spec.y_domain)
    assert [t.get_text() for t in ax.texts] == ["**"]  # the one star, on the slide too
    assert [line.get_ydata()[0] for line in ax.lines] == [1.0]  # the ceiling


def test_one_colour_per_instruction_everywhere():
    a = named_colours(["IU1", "VQ2", "CR"])
    b = named_colours(["CR", "IU1"])
    assert a[0] == b[1] and a[2] == b[0]  # the same instruction, the same colour
    assert len({*named_colours(["IU1", "IU2", "IU3", "VQ1", "VQ2", "VQ3", "IC", "SR", "CR", "VR"])}) == 10


def test_heatmap_rows_follow_the_bars_and_are_all_labelled(summary):
    rows = ["CR", "IU1", "VQ2"]
    spec = heatmap_spec(summary, "instruction", ["V1", "FFA", "PPA"], "alignment", rows)
    chart = charts.heatmap(summary, "instruction", ["V1", "FFA", "PPA"], "alignment", row_order=rows)
    y = chart.to_dict()["layer"][0]["encoding"]["y"]
    assert y["sort"] == rows and y["axis"]["labelOverlap"] is False
    fig = export.heatmap_figure(summary, "instruction", ["V1", "FFA", "PPA"], "alignment",
                                row_order=rows)  # fmt: skip
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == rows
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), spec.grid())
