"""The words the app uses: the glossary in every page's sidebar, and the three sentences that say
what Explore's first screen shows (texts in :mod:`core.dashboard.glossary`)."""

from __future__ import annotations

import streamlit as st

from core.dashboard.glossary import GLOSSARY, WHAT_YOU_SEE


def glossary() -> None:
    """The glossary as a sidebar expander (the router draws it on every page)."""
    with st.sidebar.expander("Glossary: the terms used here", icon=":material/menu_book:"):
        for term, meaning in GLOSSARY.items():
            st.markdown(f"**{term}**: {meaning}")


def what_you_see(expanded: bool = True) -> None:
    """"What am I looking at?": three sentences, pointing at the glossary."""
    with st.expander("What am I looking at?", expanded=expanded, icon=":material/help:"):
        st.markdown(WHAT_YOU_SEE)
        st.caption("Every term is explained in the sidebar's **Glossary**.")
