"""One colour scale for every view of a map; the interactive flat view's selections; readable
significance stars on the Compare-instructions chart."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from core.viz.flatmap import build_raster
from core.viz.maps import BrainMap
from core.viz.targets import (
    TARGET_BOX,
    TARGET_PICK,
    picked_targets,
    profile_chart,
    target_frame,
    target_scatter,
)


@pytest.fixture(scope="module")
def subject(demo_small):
    return demo_small.subject("subj01")


@pytest.fixture(scope="module")
def raster(subject):
    return build_raster(subject.targets, width=300)


def test_target_colours_are_the_flat_pixels(raster, subject):
    from core.viz.flatmap import flatmap_rgba

    values = np.random.default_rng(1).normal(size=subject.targets.n_targets)
    m = BrainMap.of_values("k", values, label="v", title="t", cmap="inferno",
                           limits=(-1.0, 1.5))  # fmt: skip
    rgba = flatmap_rgba(raster, values, cmap="inferno", vmin=-1.0, vmax=1.5)
    pt = raster.pixel_target
    has = pt >= 0
    assert np.allclose(rgba[has], m.target_rgba()[pt[has]], atol=1e-6)
    frame = target_frame(raster.target_xy, m)
    t = int(pt[has][0])
    c = m.target_rgba()[t]
    assert frame.loc[t, "colour"] == "#{:02x}{:02x}{:02x}".format(*np.rint(c[:3] * 255).astype(int))


def test_scatter_selections_and_events(raster, subject):
    m = BrainMap.of_values("k", subject.targets.ncsnr, label="v", title="t")
    frame = target_frame(raster.target_xy, m)
    assert len(frame) == subject.targets.n_targets
    with alt.data_transformers.enable("default", max_rows=None):  # streamlit sends all rows
        click = target_scatter(frame, raster.shape, "click").to_dict()
        box = target_scatter(frame, raster.shape, "box").to_dict()
    assert TARGET_PICK in str(click) and "'nearest': True" in str(click)
    assert TARGET_BOX in str(box)
    assert picked_targets({"selection": {TARGET_PICK: [{"target": 17}]}}).tolist() == [17]
    x0, y0 = frame[["x", "y"]].median()
    sel = picked_targets({"selection": {TARGET_BOX: {"x": [x0 - 20, x0 + 20],
                                                     "y": [y0 - 20, y0 + 20]}}}, frame)
    inside = frame[(frame.x.between(x0 - 20, x0 + 20)) & (frame.y.between(y0 - 20, y0 + 20))]
    assert sorted(sel.tolist()) == sorted(inside["target"].tolist()) and sel.size > 0
    assert picked_targets({"selection": {TARGET_PICK: []}}) is None
    assert picked_targets({}) is None


def test_profile_chart_builds():
    prof = pd.DataFrame({"instruction": ["IC", "IC", "IU1"], "layer": [0, 1, 0],
                         "nalign": [0.1, 0.2, 0.3]})  # fmt: skip
    assert profile_chart(prof, "IC", 1).to_dict()
    assert profile_chart(prof.iloc[:0], "IC", 1).to_dict()


def test_stars_are_vertical_above_the_bars():
    from core.viz.charts import grouped_roi_bars

    rows = [{"roi": r, "instruction": i, "mean": 0.5, "lo": 0.45, "hi": 0.55, "n_subjects": 3}
            for r in ("V1", "FFA") for i in ("IC", "IU1", "VQ2")]  # fmt: skip
    summary = pd.DataFrame(rows)
    stars = pd.DataFrame({"roi": ["V1", "FFA"], "instruction": ["IU1", "VQ2"],
                          "stars": ["***", ""], "q": [0.0004, 0.3]})  # fmt: skip
    spec = grouped_roi_bars(summary, "instruction", "a", ["V1", "FFA"], stars=stars).to_dict()
    text_layers = [lay for lay in spec["layer"] if lay["mark"].get("type") == "text"]
    assert len(text_layers) == 1
    mark = text_layers[0]["mark"]
    assert mark["angle"] == 270 and mark["align"] == "left"  # upwards from the error bar's top
    assert "bandwidth('xOffset') / 2" in str(mark["dy"])  # centred on its bar
    assert text_layers[0]["encoding"]["y"]["field"] == "hi"
    ds = spec["datasets"][text_layers[0]["data"]["name"]]
    assert [d["stars"] for d in ds] == ["***"]  # empty stars are not drawn
    bars = spec["layer"][0]
    top = bars["encoding"]["y"]["scale"]["domain"][1]
    assert top > 0.55 * 1.15  # headroom: stars stay inside the plot


def test_the_inspector_curve_uses_the_instruction_colours_and_lists_every_one():
    import pandas as pd

    from core.models.instructions import PAPER_IDS
    from core.viz.colours import hex_colour, named_colours
    from core.viz.targets import profile_chart

    ids = list(PAPER_IDS)
    prof = pd.DataFrame({"instruction": ids * 2, "layer": [0] * 10 + [1] * 10,
                         "nalign": range(20)})  # fmt: skip
    colour = profile_chart(prof, "IU1", 1).to_dict()["layer"][0]["encoding"]["color"]
    assert colour["scale"]["range"] == [hex_colour(c) for c in named_colours(ids)]
    assert colour["legend"]["symbolLimit"] == 0  # all ten in the legend, none cut
