"""A real browser: ``streamlit run app.py`` on a free port with the test home, headless Debian
chromium driven over the DevTools protocol; every page is opened, rendering awaited, key elements
checked, and screenshots saved to ``test-artifacts/``."""

from __future__ import annotations

import pytest

from tests.app.browser import REPO, chromium_path, tour

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (.ci/run does)")
def test_every_page_in_a_real_browser(tiny_grid, test_home):
    out = REPO / "test-artifacts" / "app"
    report = tour(test_home, out)
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
