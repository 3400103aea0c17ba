"""Variance partitioning: how much of each ROI's explained variance is unique to instruction A,
unique to B, or shared, per ROI and per target."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.models.instructions import PAPER_IDS
from core.pipeline import dashboard_jobs, result_views
from core.pipeline.fits import GENERAL
from core.pipeline.grid import is_generative
from core.viz import views
from core.viz.charts import partition_bars, venn_figure
from pages import _shared as ui

ds = ui.page_header(
    "Variance partitioning",
    "Unique and shared explained variance (test R²) of two instructions' response embeddings: "
    "unique A = R²(A∪B) − R²(B), unique B = R²(A∪B) − R²(A), shared = R²(A) + R²(B) − R²(A∪B).",
)
name = ds.name
stamp = ui.stamp(name)
table = ui.get_partition_table(name, stamp)


@st.cache_data(show_spinner=False, max_entries=128)
def venn_png(key: str, ua: float, sh: float, ub: float, a: str, b: str, title: str) -> bytes:
    return views.png(venn_figure(ua, sh, ub, a, b, title=title))


def new_pair_panel(models: list[str]) -> None:
    st.markdown("**Partition a new pair** (background job: extraction if needed, then fits)")
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("Model", models or ["demo-vlm"], key="vp_new_model")
    a = c2.selectbox("A", PAPER_IDS, index=PAPER_IDS.index("IC"), key="vp_new_a")
    b = c3.selectbox("B", PAPER_IDS, index=PAPER_IDS.index("IU2"), key="vp_new_b")
    if a == b:
        st.caption("Choose two different instructions.")
        return
    ui.job_button(
        f"partition-{name}-{dashboard_jobs.slug(model)}-{a}-{b}",
        dashboard_jobs.partition_job_args(name, model, a, b),
        f"Partition {a} vs {b}",
        key="vp_new_start",
    )


roi_table = ui.get_roi_table(name, stamp)
gen_models = [
    m for m in dict.fromkeys(roi_table.get("model", [])) if is_generative(m)
]
if table.empty:
    if roi_table.empty:
        ui.no_results_state(name)
    else:
        st.info("No instruction pair has been partitioned yet.")
        new_pair_panel(gen_models)
    st.stop()

pairs = table[["model", "a", "b"]].drop_duplicates().reset_index(drop=True)
labels = [f"{r.a} vs {r.b} · {r.model}" for r in pairs.itertuples()]
c1, c2 = st.columns([3, 2])
choice = c1.selectbox("Pair", range(len(labels)), format_func=labels.__getitem__, key="vp_pair")
pair = pairs.iloc[choice]
model, a, b = pair["model"], pair["a"], pair["b"]
sel = table[(table["model"] == model) & (table["a"] == a) & (table["b"] == b)]
subjects_all = sorted(sel["subject"].unique())
subjects = c2.multiselect("Subjects", subjects_all, default=subjects_all, key="vp_subjects")
if not subjects:
    st.warning("Choose at least one subject.")
    st.stop()
sel = sel[sel["subject"].isin(subjects)]
roi_order = list(dict.fromkeys(sel["roi"]))
means = result_views.partition_summary(sel)
long = result_views.partition_long(means, a, b)
event = st.altair_chart(
    partition_bars(long, a, b, roi_order), on_select="rerun", key="vp_bars", width="stretch"
)
st.caption(f"{model} · layer {int(sel['layer'].iloc[0])} · mean over {len(subjects)} subject(s).")
ui.downloads(means, f"partition_{a}_vs_{b}", "vp_table")
rois = [r for r in roi_order if r != GENERAL]
highlight = ui.roi_highlight("vp", rois, event)

st.subheader("Per ROI")
venn_rois = [highlight] if highlight else roi_order
cols = st.columns(4)
for k, roi in enumerate(venn_rois):
    r = means[means["roi"] == roi].iloc[0]
    cols[k % 4].image(
        venn_png(f"{stamp}|{model}|{a}|{b}|{','.join(subjects)}|{roi}", float(r["unique_a"]),
                 float(r["shared"]), float(r["unique_b"]), a, b, roi),
        width="stretch",
    )  # fmt: skip

st.subheader("Maps")
subject = st.selectbox("Subject", subjects, key="vp_map_subject")
arrays = result_views.partition_arrays(name, subject, model, a, b)
if arrays is None:
    st.warning("The per-target partition of this subject is not stored.")
else:
    parts = [("unique_a", f"unique {a}"), ("shared", "shared"), ("unique_b", f"unique {b}")]
    stacked = np.concatenate([arrays[p] for p, _ in parts])
    top = float(np.nanpercentile(np.abs(stacked), 99)) or 1e-3
    lim = (-top, top)
    mcols = [*st.columns(2), *st.columns(2)]
    pngs = []
    for col, (part, title) in zip(mcols, parts, strict=False):
        png = ui.render_value_map(
            f"vp|{name}|{subject}|{model}|{a}|{b}|{part}|{stamp}", name, subject, highlight,
            "explained variance (R²)", f"{title} · {subject}", True, ds.simulated,
            arrays[part], limits=lim,
        )  # fmt: skip
        col.image(png, width="stretch")
        pngs.append(png)
    ui.map_downloads(pngs[1], {k: arrays[k] for k in arrays},
                     f"partition_maps_{subject}_{a}_vs_{b}", "vp_maps")  # fmt: skip

with st.expander("Partition another pair"):
    new_pair_panel(gen_models)
