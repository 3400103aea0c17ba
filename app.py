"""BrainPrompt: the Streamlit router. Pages live in pages/; all computation lives in core/."""

from __future__ import annotations

import streamlit as st

import core  # noqa: F401  (hermetic environment before any third-party import)
from pages import ui

st.set_page_config(page_title="BrainPrompt", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/explore.py", title="Explore", icon=":material/neurology:", default=True),
    st.Page("pages/instructions.py", title="Compare instructions", icon=":material/bar_chart:"),
    st.Page("pages/models.py", title="Models and baselines", icon=":material/compare:"),
    st.Page("pages/partitions.py", title="Variance partitioning", icon=":material/join:"),
    st.Page("pages/discover.py", title="Discover", icon=":material/travel_explore:"),
    st.Page("pages/paper.py", title="Paper", icon=":material/article:"),
    st.Page("pages/pipeline.py", title="Pipeline", icon=":material/settings:"),
    st.Page("pages/ground_truth.py", title="Ground truth (simulated)", icon=":material/science:"),
]

page = st.navigation(PAGES)
st.session_state["_page_path"] = page.url_path
ui.begin_links()
st.sidebar.markdown("### BrainPrompt")
dataset = ui.dataset_picker()
ui.auto_start(dataset)  # a home with the demo and no results computes them by itself
st.sidebar.caption(
    "Instruction-prompted multimodal LLMs vs the visual brain "
    "(after Oota et al., ICLR 2025)."
)
with st.sidebar:
    ui.first_start_progress(dataset)
    ui.glossary()  # on every page
    link_box = ui.copy_link_button()
try:
    page.run()
finally:  # the page wrote its selections into the URL: show the link to this view
    ui.end_links()
    ui.show_link(link_box)
