"""Helpers shared by the app tests (AppTest navigation and text collection)."""

from __future__ import annotations

from tests.app.conftest import PAGES


def page(at, path: str):
    """Run the app and switch to a page."""
    at.run()
    if path != PAGES[0]:
        at.switch_page(path)
        at.run()
    return at


def texts(at) -> str:
    """Every text-like element's value, joined (markdown, captions, alerts, titles)."""
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                 "subheader"):  # fmt: skip
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)
