"""BrainPrompt: the Streamlit router. Pages live in pages/; all computation lives in core/."""

from __future__ import annotations

import streamlit as st

import core  # noqa: F401  (hermetic environment before any third-party import)

st.set_page_config(page_title="BrainPrompt", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]

st.navigation(PAGES).run()
