"""Paper: the reproduction of Oota et al. (ICLR 2025) on the open dataset, the paper's published
values beside the measured ones; the command (and a button) when it has not run yet."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.pipeline.reproduce import read_report
from pages import ui

ds = ui.page_header(
    "Paper",
    "Oota et al., ICLR 2025, reproduced: the paper's grid (its subjects, models, the 10 "
    "instructions, every layer, its alphas and folds, IC vs IU2 partitioning) with the published "
    "numbers beside the measured ones.",
)
name = ds.name
command = f"python -m core reproduce paper --dataset {name}"
report = read_report(name)
if report is None:
    st.info(
        f"The reproduction has not run on **{name}** yet. From the command line:\n\n"
        f"`{command}` (add `--dry-run` for the plan: images, responses and fits to compute, "
        "weights present or missing, estimated GPU time)."
    )
    ui.job_button(f"paper-{name}", ["reproduce", "paper", "--dataset", name, "--quiet"],
                  "Run the reproduction in the background")  # fmt: skip
    st.stop()

if report.get("simulated"):
    st.warning(
        "SIMULATED demo analog: the demo model stands for the MLLMs, its vision tower for ViT-H, "
        "its random-init twin for the controls. The numbers are not comparable to the paper's."
    )
st.caption(f"What was run: {report['run']}")
frames = report["frames"]

st.subheader("ROI groups: measured vs paper")
groups = frames.get("roi_groups")
if groups is not None and not groups.empty:
    shown = groups[["roi_group", "column", "model", "layer", "n_subjects", "measured", "sem",
                    "paper", "difference"]]  # fmt: skip
    st.dataframe(shown.style.format({c: "{:.3f}" for c in ("measured", "sem", "paper",
                                                             "difference")}),
                 hide_index=True, width="stretch")  # fmt: skip
    ui.downloads(groups, f"paper_roi_groups_{name}", "pp_groups")

for fig in report.get("figures", []):
    png = next((f for f in fig["files"] if f.endswith(".png")), None)
    if png:
        st.image(str(Path(report["folder"]) / png), caption=fig["caption"])
        svg = next((f for f in fig["files"] if f.endswith(".svg")), None)
        if svg:
            st.download_button("⬇ SVG", (Path(report["folder"]) / svg).read_bytes(), svg,
                               "image/svg+xml", key=f"pp_{svg}")  # fmt: skip

c1, c2 = st.columns(2)
with c1:
    st.subheader("Best instruction per ROI")
    best = frames.get("best_instructions")
    if best is not None and not best.empty:
        st.dataframe(best, hide_index=True, width="stretch")
with c2:
    st.subheader("Variance partitioning IC vs IU2")
    parts = frames.get("partition")
    if parts is not None and not parts.empty:
        st.dataframe(parts, hide_index=True, width="stretch")
for note in report.get("notes", []):
    st.caption(note)
st.caption(f"Report folder: `{report['folder']}` (report.md, CSV, PNG and SVG). Rerun: `{command}`.")
