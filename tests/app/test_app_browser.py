"""A real browser: ``streamlit run app.py`` on a free port with the test home, headless Debian
chromium driven over the DevTools protocol; every page is opened, rendering awaited, key elements
checked, and screenshots saved to ``test-artifacts/``. Then the demo features: a deep link
reopens its selections and the 3D view (a WebGL canvas, no console error), a bar click highlights
its ROI, a click on the interactive flat map opens the target inspector, and the figures export
as a ZIP with captions. And the layout (issue 23): the comparison chart marks one best
instruction per ROI, every heatmap row is labelled, the inspector's scatter and details card do
not overlap at 1024 and 1600 px, and a ``layer=1`` link on Explore shows layer 1."""

from __future__ import annotations

import json

import pytest

from tests.app.browser import REPO, chromium_path, tour

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (.ci/run does)")
def test_every_page_in_a_real_browser(tiny_grid, test_home):
    out = REPO / "test-artifacts" / "app"
    report = tour(test_home, out, tools=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    for name, entry in report.items():
        if name.startswith("_"):
            continue
        assert entry["exceptions"] == 0, name
        assert entry["badge"], f"{name}: no SIMULATED badge"
        for selector, n in entry["counts"].items():
            assert n > 0, f"{name}: no {selector}"
        assert (out / f"{name}.png").stat().st_size > 10_000
    after = report["explore"]["after_run"]
    assert after["response"] and after["metrics"] >= 3
    assert after["charts"] >= 1  # ROI bar chart
    assert after["images"] >= 3  # stimulus + predicted and measured flatmaps
    assert report["_server_alive"]["alive"]

    tools = report["_tools"]
    # a deep link opened in a new browser shows the same selections, and the 3D view
    deep = tools["deep_link"]
    sel = deep["selections"]
    assert sel["Instruction A"] == "IC" and sel["Instruction B"] == "IU1"
    assert sel["Highlighted ROI (or click a bar)"] == "V1" and sel["Show"] == "3D brain"
    assert sel["Dataset"] == "demo"  # through the router, sidebar included
    assert "a=IC" in deep["url"] and "dataset=demo" in deep["url"]
    assert deep["canvases"] >= 1 and deep["errors"] == [], deep["errors"]
    assert tools["copy_link"]["copied"] == tools["copy_link"]["url"]  # the live URL
    warm = tools["brain3d_warm"]
    assert warm["canvases"] >= 1 and warm["errors"] == [], warm["errors"]
    # clicking a bar highlights its ROI (and puts it in the URL)
    bar = tools["bar_click"]
    assert bar["bar_found"] and bar["highlighted"], bar
    assert f"roi={bar['highlighted']}" in bar["url"]
    # clicking the interactive flat map opens the inspector of that target
    insp = tools["inspector"]
    assert insp["target"] is not None and insp["target"] != insp["first"], insp
    assert insp["card"] and insp["noise_ceiling"] and insp["truth"], insp
    assert insp["errors"] == [], insp["errors"]
    # the comparison chart marks one best instruction per ROI
    marks = tools["best_marks"]
    marked = [roi for roi, _ in marks["marked"]]
    assert marked and len(marked) == len(set(marked)), marks
    assert set(marks["rois"]) - {"general"} <= set(marked), marks
    # every row of every instruction x ROI heatmap is labelled
    assert tools["heatmaps"], "no heatmap"
    for heat in tools["heatmaps"]:
        assert len(heat["labels"]) == heat["rows"] and all(heat["labels"]), heat
    # the inspector's scatter and card never overlap, at 1024 and 1600 px
    from tests.app.browser import overlap

    for width, rects in tools["inspector_layout"].items():
        assert rects["scatter"] and rects["card"], (width, rects)
        assert not overlap(rects["scatter"], rects["card"]), (width, rects)
    # a layer=1 link on Explore shows layer 1
    assert tools["layer_link"]["selections"]["Layer"] == "1", tools["layer_link"]
    assert "layer=1" in tools["layer_link"]["url"]
    # the figures for slides, as one ZIP with captions
    files = tools["export"]["files"]
    assert {"captions.md", "captions.json"} <= set(files)
    for ext in ("png", "svg", "pdf"):
        assert sum(f.endswith(f".{ext}") for f in files) >= 4
    assert "tiny-llava" in tools["export"]["captions"]
