"""Downloads and the figures-for-slides panel."""

from __future__ import annotations

import streamlit as st

from core.viz import views


def downloads(df, stem: str, key: str) -> None:
    """CSV and Parquet download buttons for a table."""
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button(
        "⬇ CSV", views.table_bytes(df, "csv"), f"{stem}.csv", "text/csv", key=f"{key}_csv"
    )
    c2.download_button(
        "⬇ Parquet",
        views.table_bytes(df, "parquet"),
        f"{stem}.parquet",
        "application/octet-stream",
        key=f"{key}_pq",
    )


def map_downloads(png: bytes, arrays: dict, stem: str, key: str) -> None:
    """PNG and NPZ download buttons for a map."""
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("⬇ PNG", png, f"{stem}.png", "image/png", key=f"{key}_png")
    c2.download_button(
        "⬇ NPZ",
        views.npz_bytes(**arrays),
        f"{stem}.npz",
        "application/octet-stream",
        key=f"{key}_npz",
    )


def export_panel(page: str, figures: list, context: dict) -> None:
    """Download the page's figures for slides: each as PNG, SVG or PDF, or all in one ZIP with a
    captions file. Files are drawn only when a button is clicked."""
    from core.viz import export

    if not figures:
        return
    with st.expander(f"Figures for slides ({len(figures)}: PNG, SVG, PDF, or all as ZIP)"):
        st.download_button(
            "⬇ All figures (ZIP with captions)",
            lambda: export.figures_zip(figures, context),
            f"{export.safe_stem(page)}_figures.zip", "application/zip",
            key=f"{page}_export_zip", type="primary", on_click="ignore",
        )  # fmt: skip
        titles = [f.title for f in figures]
        key = f"{page}_export_pick"
        if st.session_state.get(key, 0) not in range(len(figures)):
            st.session_state[key] = 0
        cols = st.columns([4, 1, 1, 1], vertical_alignment="bottom")
        k = cols[0].selectbox("One figure", range(len(figures)), format_func=titles.__getitem__,
                              key=key)  # fmt: skip
        fig = figures[k]
        for col, fmt in zip(cols[1:], export.FORMATS, strict=True):
            col.download_button(
                fmt.upper(), lambda fig=fig, fmt=fmt: export.figure_bytes(fig, fmt),
                f"{fig.stem}.{fmt}", export.FORMATS[fmt], key=f"{page}_export_{fmt}",
                on_click="ignore",
            )  # fmt: skip
        if fig.caption:
            st.caption(fig.caption)


def grid_context(name: str) -> dict:
    """The settings of the last grid run on ``name``, for captions."""
    from core.results.tables import grid_settings

    try:
        s = grid_settings(name)
    except Exception:
        return {}
    out = {}
    for key in ("alphas", "cv", "solver", "p_values", "n_permutations", "max_new_tokens"):
        if hasattr(s, key):
            out[{"cv": "cv folds"}.get(key, key.replace("_", " "))] = getattr(s, key)
    return out
