"""Models and baselines: per ROI, instruction-tuned MLLMs against vision-only, CLIP and
random-init controls, with the noise ceiling drawn; layer-wise curves per ROI."""

from __future__ import annotations

import streamlit as st

from core.pipeline import result_views
from core.pipeline.fits import GENERAL
from core.storage import ArtifactError
from core.viz import views
from core.viz.charts import layer_curves, summarise_subjects
from pages import _shared as ui

ds = ui.page_header(
    "Models and baselines",
    "Normalized alignment (r / √NC; the noise ceiling is 1) per ROI for every model in the "
    "results: the MLLM, its random-init twin and image-only baselines. Mean across subjects "
    "± s.e.m.",
)
name = ds.name
stamp = ui.stamp(name)
table = ui.get_roi_table(name, stamp)
if table.empty:
    ui.no_results_state(name)
    st.stop()

models = list(dict.fromkeys(table["model"]))
c1, c2, c3 = st.columns([3, 2, 2])
chosen = c1.multiselect("Models", models, default=models, key="mb_models",
                        format_func=ui.model_label)  # fmt: skip
layer_mode = c2.radio(
    "Layer", ["best per model", "last"], horizontal=True, key="mb_layer",
    help="best per model: the highest cross-validated score on the training images in the "
    "general mask; the test set only reports it.",
)  # fmt: skip
instruction_mode = c3.selectbox(
    "MLLM instructions", ["mean over instructions", "best instruction per ROI",
                          *sorted(table.loc[table["instruction"] != "image", "instruction"].unique())],
    key="mb_ins",
)  # fmt: skip
if not chosen:
    st.warning("Choose at least one model.")
    st.stop()
sub = table[table["model"].isin(chosen)]
rows = result_views.model_comparison(sub, layer_mode, instruction_mode)
summary = summarise_subjects(rows, by=["roi", "model"], value="nalign_mean")
roi_order = list(dict.fromkeys(table["roi"]))
summary = summary.merge(result_views.model_layers_used(rows), on="model", how="left")
event = st.altair_chart(
    views.model_roi_chart(summary, roi_order, chosen), on_select="rerun", key="mb_bars",
    width="stretch",
)  # fmt: skip
used = ", ".join(f"{m}: layer {int(lay)}" for m, lay in result_views.model_layers_used(rows).values)
st.caption(f"Layers used: {used}. Dashed line: noise ceiling (normalized alignment = 1).")
for warning in result_views.alpha_edge_warnings(sub[sub["layer"] == sub["model"].map(
        dict(result_views.model_layers_used(rows).values))]):  # fmt: skip
    st.warning(warning)
ui.downloads(summary, f"models_{layer_mode.replace(' ', '-')}", "mb_summary")

rois = [r for r in roi_order if r != GENERAL]
highlight = ui.roi_highlight("mb", rois, event)

st.subheader("Layer by layer")
if highlight and highlight not in st.session_state.get("mb_curve_rois", [highlight]):
    st.session_state["mb_curve_rois"] = [*st.session_state["mb_curve_rois"], highlight]
show_rois = st.multiselect(
    "ROIs", roi_order, default=[highlight] if highlight else roi_order[:4], key="mb_curve_rois"
)
curves = result_views.layer_rows(sub, instruction_mode)
curves = curves[curves["roi"].isin(show_rois)]
if curves.empty:
    st.info("Choose ROIs to draw their layer curves.")
else:
    csum = summarise_subjects(curves, by=["roi", "layer", "model"], value="nalign_mean")
    curves_chart = layer_curves(
        csum, "model", "normalized alignment", [r for r in roi_order if r in show_rois]
    )
    curves_chart.columns = 4  # four small panels fit the page width
    st.altair_chart(curves_chart, key="mb_curves")
    ui.downloads(csum, "layer_curves", "mb_curves")

st.subheader("Map")
c4, c5, c6 = st.columns(3)
subject = c4.selectbox("Subject", ds.subject_names, key="mb_subject")
model = c5.selectbox("Model", chosen, key="mb_map_model")
mrows = rows[(rows["model"] == model) & (rows["subject"] == subject)]
ins_opts = sorted(sub.loc[sub["model"] == model, "instruction"].unique())
instruction = c6.selectbox("Instruction", ins_opts, key=f"mb_map_ins_{model}")
layer = int(mrows["layer"].iloc[0]) if not mrows.empty else int(
    sub.loc[sub["model"] == model, "layer"].max()
)
try:
    scores = ui.get_target_scores(name, subject, model, instruction, layer, stamp)
except ArtifactError as exc:
    st.warning(f"Per-target scores are not stored for this choice: {exc}")
    st.stop()
png = ui.render_value_map(
    f"mb|{name}|{subject}|{model}|{instruction}|{layer}|{stamp}", name, subject, highlight,
    "normalized alignment (r / √NC)", f"{model} · {instruction} · layer {layer} · {subject}",
    False, ds.simulated, scores["nalign"], limits=(0.0, 1.0), cmap="inferno",
)  # fmt: skip
st.image(png, width="stretch")
ui.map_downloads(png, {"nalign": scores["nalign"], "r": scores["r"], "nc": scores["nc"]},
                 f"alignment_{subject}_{model.replace(':', '-')}_{instruction}_L{layer}",
                 "mb_map")  # fmt: skip
