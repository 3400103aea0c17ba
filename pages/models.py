"""Models and baselines: per ROI, instruction-tuned MLLMs against vision-only, CLIP and
random-init controls, with the noise ceiling drawn; layer-wise curves per ROI."""

from __future__ import annotations

import streamlit as st

from core.data.rois import GENERAL
from core.results import views as result_views
from core.storage import ArtifactError
from core.viz import export, views
from core.viz.charts import layer_curves, summarise_subjects
from core.viz.maps import BrainMap
from pages import ui

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
c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
ui.from_url("mb_models", "models", models, multi=True)
chosen = c1.multiselect("Models", models, default=models, key="mb_models",
                        format_func=ui.model_label)  # fmt: skip
ui.from_url("mb_layer", "layers", ["best per model", "last"], aliases={"best": "best per model"})
layer_mode = c2.radio(
    "Layer", ["best per model", "last"], horizontal=True, key="mb_layer",
    help="best per model: the highest cross-validated score on the training images in the "
    "general mask; the test set only reports it.",
)  # fmt: skip
ins_modes = ["mean over instructions", "best instruction per ROI",
             *sorted(table.loc[table["instruction"] != "image", "instruction"].unique())]
ui.from_url("mb_ins", "instructions", ins_modes, aliases={"mean": ins_modes[0], "best": ins_modes[1]})
instruction_mode = c3.selectbox("MLLM instructions", ins_modes, key="mb_ins")
ui.from_url("mb_ceiling", "ceiling", list(result_views.CEILINGS))
ceiling = c4.radio(
    "Noise ceiling", list(result_views.CEILINGS), horizontal=True, key="mb_ceiling",
    help="ncsnr: NSD's ceiling from each subject's repeats (r / √NC); cross-subject: how well "
    "the other subjects' responses to the shared test images predict a subject's (r / r_ceiling; "
    "it also counts what is idiosyncratic to a subject as unexplainable).",
)  # fmt: skip
ui.link(models=chosen if chosen != models else None,
        layers="last" if layer_mode == "last" else None,
        instructions=None if instruction_mode == ins_modes[0] else instruction_mode,
        ceiling=None if ceiling == "ncsnr" else ceiling)  # fmt: skip
if not chosen:
    st.warning("Choose at least one model.")
    st.stop()
sub = table[table["model"].isin(chosen)]
rows = ui.get_model_comparison(name, stamp, tuple(chosen), layer_mode, instruction_mode, ceiling)
summary = summarise_subjects(rows, by=["roi", "model"], value="nalign_mean")
roi_order = list(dict.fromkeys(table["roi"]))
summary = summary.merge(result_views.model_layers_used(rows), on="model", how="left")
event = ui.chart(st, views.model_roi_chart, summary, roi_order, chosen, on_select="rerun",
                 key="mb_bars")  # fmt: skip
used = ", ".join(f"{m}: layer {int(lay)}" for m, lay in result_views.model_layers_used(rows).values)
st.caption(f"Layers used: {used}. Dashed line: noise ceiling (normalized alignment = 1; "
           + ("NSD's ncsnr ceiling)." if ceiling == "ncsnr" else "the cross-subject ceiling: r / "
              "r_ceiling over targets whose ceiling exceeds 5% of variance)."))  # fmt: skip
for warning in result_views.alpha_edge_warnings(sub[sub["layer"] == sub["model"].map(
        dict(result_views.model_layers_used(rows).values))]):  # fmt: skip
    st.warning(warning)
ui.downloads(summary, f"models_{layer_mode.replace(' ', '-')}", "mb_summary")

rois = [r for r in roi_order if r != GENERAL]
highlight = ui.roi_highlight("mb", rois, event)

st.subheader("Layer by layer")
ui.from_url("mb_curve_rois", "curves", roi_order, multi=True)
if highlight and highlight not in st.session_state.get("mb_curve_rois", [highlight]):
    st.session_state["mb_curve_rois"] = [*st.session_state["mb_curve_rois"], highlight]
show_rois = st.multiselect(
    "ROIs", roi_order, default=[highlight] if highlight else roi_order[:4], key="mb_curve_rois"
)
ui.link(curves=show_rois)
figures = [
    export.ExportFigure(
        f"models_{layer_mode}", "Normalized alignment per ROI and model",
        lambda: export.bars_figure(summary, "model", "normalized alignment (r / √NC)", roi_order,
                                   chosen, ceiling=1.0, highlight=highlight),
        {"dataset": name, "models": chosen, "layers": used, "instructions": instruction_mode,
         **ui.grid_context(name)},
        "Mean across subjects ± s.e.m.; dashed line: the noise ceiling.",
    )
]  # fmt: skip
curves = result_views.layer_rows(sub, instruction_mode)
curves = curves[curves["roi"].isin(show_rois)]
if curves.empty:
    st.info("Choose ROIs to draw their layer curves.")
else:
    csum = summarise_subjects(curves, by=["roi", "layer", "model"], value="nalign_mean")
    ui.chart(st, layer_curves, csum, "model", "normalized alignment",
             [r for r in roi_order if r in show_rois], columns=4, key="mb_curves",
             width="content")  # four small panels fit the page width  # fmt: skip
    ui.downloads(csum, "layer_curves", "mb_curves")
    figures.append(export.ExportFigure(
        "layer_curves", "Normalized alignment by layer",
        lambda: export.curves_figure(csum, "model", "normalized alignment",
                                     [r for r in roi_order if r in show_rois]),
        {"dataset": name, "models": chosen, "rois": show_rois, "instructions": instruction_mode},
        "Mean across subjects ± s.e.m. per layer.",
    ))  # fmt: skip

st.subheader("Map")
c4, c5, c6 = st.columns(3)
ui.from_url("mb_subject", "subject", ds.subject_names)
subject = c4.selectbox("Subject", ds.subject_names, key="mb_subject")
ui.from_url("mb_map_model", "model", chosen)
model = c5.selectbox("Model", chosen, key="mb_map_model")
mrows = rows[(rows["model"] == model) & (rows["subject"] == subject)]
ins_opts = sorted(sub.loc[sub["model"] == model, "instruction"].unique())
ui.from_url(f"mb_map_ins_{model}", "instruction", ins_opts)
instruction = c6.selectbox("Instruction", ins_opts, key=f"mb_map_ins_{model}")
ui.link(subject=subject, model=model, instruction=instruction)
layer = int(mrows["layer"].iloc[0]) if not mrows.empty else int(
    sub.loc[sub["model"] == model, "layer"].max()
)
try:
    scores = ui.get_target_scores(name, subject, model, instruction, layer, stamp)
except ArtifactError as exc:
    st.warning(f"Per-target scores are not stored for this choice: {exc}")
    st.stop()
map_a = BrainMap.of_values(
    f"mb|{name}|{subject}|{model}|{instruction}|{layer}|{stamp}", scores["nalign"],
    label="normalized alignment (r / √NC)",
    title=f"{model} · {instruction} · layer {layer} · {subject}", limits=(0.0, 1.0),
    cmap="inferno", caption="Per-target normalized alignment (r / √NC; 1 = the noise ceiling).",
)  # fmt: skip
png = ui.show_map(st, map_a, name, subject, highlight, ds.simulated)
if png is not None:
    ui.map_downloads(png, {"nalign": scores["nalign"], "r": scores["r"], "nc": scores["nc"]},
                     f"alignment_{subject}_{model.replace(':', '-')}_{instruction}_L{layer}",
                     "mb_map")  # fmt: skip
details = {"dataset": name, "subject": subject, "model": model, "instruction": instruction,
           "layer": layer}  # fmt: skip
figures.append(ui.map_figure(map_a, name, subject, highlight, ds.simulated, details))
st.subheader("3D brain and target inspector")
ui.map_tools("mb", [map_a], name, subject, highlight, ds.simulated,
             inspect={"model": model, "instruction": instruction, "layer": layer, "stamp": stamp})
ui.export_panel("mb", figures, {"page": "Models and baselines", "dataset": name,
                                "simulated": ds.simulated, "models": chosen,
                                "layers": layer_mode, "instructions": instruction_mode,
                                **ui.grid_context(name)})  # fmt: skip
