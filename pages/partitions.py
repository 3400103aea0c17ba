"""Variance partitioning: how much of each ROI's explained variance is unique to instruction A,
unique to B, or shared, per ROI and per target."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.dashboard import dashboard_jobs
from core.data.rois import GENERAL
from core.models.instructions import PAPER_IDS
from core.models.roles import is_generative
from core.results import views as result_views
from core.results.controls import instruction_pair_rows
from core.viz import export, views
from core.viz.charts import partition_bars, venn_figure
from core.viz.maps import BrainMap
from pages import ui

ds = ui.page_header(
    "Variance partitioning",
    "Unique and shared explained variance (test R²) of two instructions' response embeddings: "
    "unique A = R²(A∪B) − R²(B), unique B = R²(A∪B) − R²(A), shared = R²(A) + R²(B) − R²(A∪B).",
)
name = ds.name
stamp = ui.stamp(name)
# pairs of two instructions (an instruction against its own text-only control, "what the image
# adds", is shown on Compare instructions)
table = instruction_pair_rows(ui.get_partition_table(name, stamp))


@st.cache_data(show_spinner=False, max_entries=128)
def venn_png(key: str, ua: float, sh: float, ub: float, a: str, b: str, title: str,
             scale: float) -> bytes:  # fmt: skip
    return views.png(venn_figure(ua, sh, ub, a, b, title=title, scale=scale))


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
pair_ids = [f"{r.a}-vs-{r.b}@{r.model}" for r in pairs.itertuples()]
ui.from_url("vp_pair", "pair", list(range(len(labels))),
            aliases={pid: str(k) for k, pid in enumerate(pair_ids)})  # fmt: skip
choice = c1.selectbox("Pair", range(len(labels)), format_func=labels.__getitem__, key="vp_pair")
pair = pairs.iloc[choice]
model, a, b = pair["model"], pair["a"], pair["b"]
sel = table[(table["model"] == model) & (table["a"] == a) & (table["b"] == b)]
subjects_all = sorted(sel["subject"].unique())
ui.from_url("vp_subjects", "subjects", subjects_all, multi=True)
subjects = c2.multiselect("Subjects", subjects_all, default=subjects_all, key="vp_subjects")
ui.link(pair=pair_ids[choice], subjects=subjects if subjects != subjects_all else None)
if not subjects:
    st.warning("Choose at least one subject.")
    st.stop()
sel = sel[sel["subject"].isin(subjects)]
roi_order = list(dict.fromkeys(sel["roi"]))
means = result_views.partition_summary(sel)
long = result_views.partition_long(means, a, b)
event = ui.chart(st, partition_bars, long, a, b, roi_order, on_select="rerun", key="vp_bars")
st.caption(f"{model} · layer {int(sel['layer'].iloc[0])} · mean over {len(subjects)} subject(s).")
ui.downloads(means, f"partition_{a}_vs_{b}", "vp_table")
rois = [r for r in roi_order if r != GENERAL]
highlight = ui.roi_highlight("vp", rois, event)
layer = int(sel["layer"].iloc[0])
figures = [export.ExportFigure(
    f"partition_{a}_vs_{b}_{model}", f"Variance partitioning {a} vs {b}",
    lambda: export.stacked_parts_figure(long, a, b, roi_order, title=f"{model} · layer {layer}"),
    {"dataset": name, "subjects": subjects, "model": model, "layer": layer, "A": a, "B": b},
    "Unique A = R²(A∪B) − R²(B), unique B = R²(A∪B) − R²(A), shared = R²(A) + R²(B) − R²(A∪B); "
    "mean over subjects.",
)]  # fmt: skip

st.subheader("Per ROI")
venn_rois = [highlight] if highlight else roi_order
# one scale for every ROI's circles (the largest R² of A or B over the ROIs), so sizes compare
venn_scale = float(max((means["unique_a"] + means["shared"]).max(),
                       (means["unique_b"] + means["shared"]).max(), 1e-9))  # fmt: skip
venn_caption = (
    f"Circle areas are drawn to one scale for every ROI: R²({a}) and R²({b}), overlapping by "
    "the shared part. A negative unique part means the joint encoder (both embeddings "
    "together) predicted the test images worse than the other instruction's alone: with twice "
    "the features under one ridge penalty it fits some noise. Read it as 'adds nothing beyond "
    "the other' (within noise); its circle is drawn inside the other's."
)
cols = st.columns(4)
for k, roi in enumerate(venn_rois):
    r = means[means["roi"] == roi].iloc[0]
    cols[k % 4].image(
        venn_png(f"{stamp}|{model}|{a}|{b}|{','.join(subjects)}|{roi}", float(r["unique_a"]),
                 float(r["shared"]), float(r["unique_b"]), a, b, roi, venn_scale),
        width="stretch",
    )  # fmt: skip
    figures.append(export.ExportFigure(
        f"venn_{a}_vs_{b}_{roi}", f"{roi}: unique and shared variance",
        lambda r=r, roi=roi: venn_figure(float(r["unique_a"]), float(r["shared"]),
                                         float(r["unique_b"]), a, b, title=roi,
                                         scale=venn_scale),
        {"dataset": name, "subjects": subjects, "model": model, "layer": layer, "roi": roi},
        venn_caption,
    ))  # fmt: skip
negative = means[(means["unique_a"] < 0) | (means["unique_b"] < 0)]["roi"].tolist()
st.caption(venn_caption + (f" Negative unique parts here: {', '.join(negative)}."
                           if negative else ""))  # fmt: skip

st.subheader("Maps")
ui.from_url("vp_map_subject", "subject", subjects)
subject = st.selectbox("Subject", subjects, key="vp_map_subject")
ui.link(subject=subject)
arrays = result_views.partition_arrays(name, subject, model, a, b)
if arrays is None:
    st.warning("The per-target partition of this subject is not stored.")
else:
    parts = [("unique_a", f"unique {a}"), ("shared", "shared"), ("unique_b", f"unique {b}")]
    stacked = np.concatenate([arrays[p] for p, _ in parts])
    top = float(np.nanpercentile(np.abs(stacked), 99)) or 1e-3
    lim = (-top, top)
    mcols = [*st.columns(2), *st.columns(2)]
    pngs, maps = [], []
    for col, (part, title) in zip(mcols, parts, strict=False):
        m = BrainMap.of_values(
            f"vp|{name}|{subject}|{model}|{a}|{b}|{part}|{stamp}", arrays[part],
            label="explained variance (R²)", title=f"{title} · {subject}", limits=lim,
            symmetric=True, caption=f"{title} explained variance (test R²) per target.",
        )  # fmt: skip
        maps.append(m)
        pngs.append(ui.show_map(col, m, name, subject, highlight, ds.simulated))
    if pngs[1] is not None:
        ui.map_downloads(pngs[1], {k: arrays[k] for k in arrays},
                         f"partition_maps_{subject}_{a}_vs_{b}", "vp_maps")  # fmt: skip
    details = {"dataset": name, "subject": subject, "model": model, "layer": layer, "A": a,
               "B": b}  # fmt: skip
    figures += [ui.map_figure(m, name, subject, highlight, ds.simulated, details) for m in maps]
    st.subheader("3D brain and target inspector")
    ui.map_tools("vp", maps, name, subject, highlight, ds.simulated,
                 inspect={"model": model, "instruction": a, "layer": layer, "stamp": stamp})
ui.export_panel("vp", figures, {"page": "Variance partitioning", "dataset": name,
                                "simulated": ds.simulated, "subjects": subjects, "model": model,
                                "layer": layer, "pair": f"{a} vs {b}",
                                **ui.grid_context(name)})  # fmt: skip

with st.expander("Partition another pair"):
    new_pair_panel(gen_models)
