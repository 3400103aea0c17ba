"""Compare instructions: per-ROI alignment of every instruction, significance against a reference,
an instruction x ROI heatmap, two instructions' maps and their difference, and the best
instruction per target."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.data.rois import GENERAL
from core.models.roles import control_of, model_role
from core.results import controls as result_controls
from core.results import rsa_ceiling
from core.results import views as result_views
from core.results.selection import best_layers
from core.storage import ArtifactError
from core.viz import export
from core.viz.charts import grouped_roi_bars, heatmap, length_scatter, summarise_subjects
from core.viz.maps import BrainMap
from pages import ui

METRICS = {
    "nalign_mean": "normalized alignment (r / √NC)",
    "r_mean": "test correlation r",
    "frac_significant": "fraction of significant targets (BH-FDR q < 0.05)",
}

ds = ui.page_header(
    "Compare instructions",
    "Which instructions' response embeddings predict which visual areas best? Mean across "
    "subjects ± s.e.m.; stars compare each instruction with a reference (FDR across ROIs).",
)
name = ds.name
stamp = ui.stamp(name)
mllm = ui.mllm_rows(name, stamp)

models = list(dict.fromkeys(mllm["model"]))
c1, c2, c3, c4 = st.columns([2, 2, 1, 2])
ui.from_url("ci_model", "model", models)
model = c1.selectbox("Model", models, key="ci_model", format_func=ui.model_label)
sub_m = mllm[mllm["model"] == model]
subjects_all = sorted(sub_m["subject"].unique())
ui.from_url("ci_subjects", "subjects", subjects_all, multi=True)
subjects = c2.multiselect("Subjects", subjects_all, default=subjects_all, key="ci_subjects")
layers = sorted(sub_m["layer"].unique().tolist())
best = best_layers(sub_m).get(model, layers[-1])
ui.from_url(f"ci_layer_{model}", "layer", layers)
ui.default_value(f"ci_layer_{model}", layers, best)
layer = c3.selectbox("Layer", layers, key=f"ci_layer_{model}",
                     help=f"Default: the layer with the best cross-validated training "
                     f"score in the general mask ({best}); the test set only reports it.")  # fmt: skip
ui.from_url("ci_metric", "measure", list(METRICS))
metric = c4.selectbox("Measure", list(METRICS), format_func=METRICS.get, key="ci_metric")
ui.link(model=model, subjects=subjects if subjects != subjects_all else None, layer=layer,
        measure=metric if metric != "nalign_mean" else None)  # fmt: skip
if not subjects:
    st.warning("Choose at least one subject.")
    st.stop()

sel = sub_m[(sub_m["layer"] == layer) & (sub_m["subject"].isin(subjects))]
instructions = list(dict.fromkeys(sel["instruction"]))
roi_order = list(dict.fromkeys(sel["roi"]))
summary = summarise_subjects(sel, by=["roi", "instruction"], value=metric)
error_note = "Error bars: s.e.m. across subjects."
if metric == "nalign_mean":
    intervals = ui.get_bootstrap_intervals(name, stamp, model, int(layer), tuple(instructions),
                                           tuple(subjects))  # fmt: skip
    if not intervals.empty:  # uncertainty over the test images, the subjects averaged
        summary = summary.merge(intervals, on=["roi", "instruction"], how="left")
        has = summary["ci_low"].notna()
        summary.loc[has, "lo"], summary.loc[has, "hi"] = summary.loc[has, "ci_low"], summary.loc[has, "ci_high"]
        error_note = ("Error bars: 95% bootstrap interval over the test images (1,000 "
                      "resamples, the same for every instruction and subject; subjects averaged).")

c5, c6 = st.columns([2, 3])
ui.from_url("ci_ref", "ref", instructions)
ui.default_value("ci_ref", instructions, "IC" if "IC" in instructions else instructions[0])
reference = c5.selectbox("Reference instruction for the stars", instructions, key="ci_ref")
across_opts = ["subjects", "targets"]
ui.from_url("ci_across", "across", across_opts)
ui.default_value("ci_across", across_opts, across_opts[0 if len(subjects) >= 3 else 1])
across = c6.radio(
    "Compare across", across_opts, horizontal=True, key="ci_across",
    help="subjects: a star needs both the paired t-test over per-subject ROI means and the "
    "paired bootstrap over test images (1,000 resamples, the same for every instruction and "
    "subject), BH-FDR over every ROI x instruction the chart tests; targets: the ROI's targets "
    "pooled over subjects, descriptive only (no stars: neighbouring targets are spatially "
    "correlated, so a per-target test would overstate the evidence).",
)  # fmt: skip
ui.link(ref=reference, across=across)
stars = ui.get_instruction_stars(
    name, stamp, model, int(layer), reference,
    "nalign_mean" if metric == "frac_significant" else metric, across, tuple(subjects),
)  # fmt: skip
if across == "subjects" and len(subjects) == 1:
    st.caption("With one subject there is no across-subject test: stars rest on the bootstrap "
               "over test images and speak for that subject only.")
n_subj = int(stars["n"].max()) if not stars.empty and stars["n"].notna().any() else 0
star_note = (
    f"Stars against {reference}: paired t-test across subjects (n = {n_subj}) AND paired "
    "bootstrap over the test images (both must agree; p is the larger), BH-FDR over every ROI "
    "x instruction shown, q < 0.05 / 0.01 / 0.001."
    if across == "subjects"
    else f"Targets pooled over subjects: descriptive, no stars (difference vs {reference} in the "
    "download)."
)

winners = ui.get_roi_winners(name, stamp, model, int(layer), tuple(subjects))
best = dict(zip(winners["roi"], winners["winner"], strict=True)) if not winners.empty else {}
event = ui.chart(
    st, grouped_roi_bars, summary, group="instruction", value_title=METRICS[metric],
    roi_order=roi_order, group_order=instructions,
    stars=stars[["roi", "instruction", "stars", "q"]],
    ceiling=1.0 if metric == "nalign_mean" else None, best=best, on_select="rerun",
    key="ci_bars",
)  # fmt: skip
st.caption(
    f"{model} · layer {layer} · {len(subjects)} subject(s). {error_note} "
    + star_note
    + " ▼ marks each ROI's best instruction, chosen by the cross-validated training score "
    "(the bars show test scores)."
    + (" Dashed line: the noise ceiling." if metric == "nalign_mean" else "")
)
if not winners.empty:
    st.markdown("**Which instruction wins in each ROI, and by how much?**")
    shown = winners.assign(
        difference=[f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in
                    zip(winners["difference"], winners["ci_low"], winners["ci_high"], strict=True)],
        distinguishable=np.where(winners["significant"], "yes", "no"),
    )[["roi", "winner", "winner_score", "runner_up", "runner_up_score", "difference",
       "distinguishable"]]  # fmt: skip
    st.dataframe(shown.style.format({"winner_score": "{:.3f}", "runner_up_score": "{:.3f}"}),
                 hide_index=True, width="stretch")  # fmt: skip
    st.caption("Winner and runner-up chosen by the cross-validated training score; the "
               "difference (test set) with its 95% bootstrap interval over test images; "
               "distinguishable: both the across-subject t-test and the bootstrap agree, "
               "BH over the ROIs.")  # fmt: skip
if metric == "frac_significant":
    st.caption(result_views.pvalue_note(sel, name))
for warning in result_views.alpha_edge_warnings(sel):
    st.warning(warning)
rois = [r for r in roi_order if r != GENERAL]
highlight = ui.roi_highlight("ci", rois, event)
ui.downloads(
    summary.merge(stars, on=["roi", "instruction"], how="left"),
    f"instructions_{model.replace(':', '-')}_L{layer}_{metric}",
    "ci_summary",
)

st.subheader("Instruction × ROI")
n_rows = len(instructions)
ui.chart(st, heatmap, summary, "instruction", roi_order, METRICS[metric],
         cell_height=30 * n_rows, row_order=instructions, key="ci_heat")  # fmt: skip

agree = result_views.metric_agreement(sel, model, int(layer))
if not agree.empty:
    st.subheader("Do the metrics agree?")
    flagged = agree[agree["flagged"]]
    st.caption(
        "Per ROI, Kendall's tau between the instruction rankings under encoding (normalized "
        "alignment) and under representational similarity (Spearman of the ROI's test-image "
        "dissimilarity matrix with the embeddings'), subjects averaged. "
        + (f"Rankings that flip or change their winner: {', '.join(flagged['roi'])}."
           if len(flagged) else "No ROI's ranking flips.")
    )  # fmt: skip
    st.dataframe(
        agree[["roi", "tau", "top_a", "top_b", "n_discordant", "n_pairs", "flagged"]].rename(
            columns={"top_a": "best (encoding)", "top_b": "best (RSA)"}),
        hide_index=True, width="stretch",
    )  # fmt: skip

    @st.cache_data(show_spinner=False, max_entries=16)
    def rsa_ceilings(name: str, stamp: str, model: str, layer: int, subjects: tuple[str, ...]):
        """RSA / its ceiling beside encoding's ceiling (:mod:`core.results.rsa_ceiling`), or
        why the dataset has no RSA ceiling."""
        data = ui.get_dataset(name)
        why = rsa_ceiling.unavailable_reason(data)
        if why:
            return None, why
        table = ui.get_roi_table(name, stamp)
        return rsa_ceiling.metric_ceilings(data, table[table["subject"].isin(subjects)], model,
                                           layer), ""  # fmt: skip

    ceilings, why = rsa_ceilings(name, stamp, model, int(layer), tuple(subjects))
    if why:
        st.caption(f"RSA noise ceiling: not available ({why}).")
    elif ceilings is not None and not ceilings.empty:
        per_roi = ceilings.drop_duplicates("roi")[["roi", "encoding_ceiling", "rsa_ceiling",
                                                   "rsa_reliability"]]  # fmt: skip
        st.dataframe(per_roi.rename(columns={
            "encoding_ceiling": "encoding ceiling √NC", "rsa_ceiling": "RSA ceiling √rel",
            "rsa_reliability": "RDM split-half reliability"}).style.format(precision=2),
            hide_index=True, width="stretch")  # fmt: skip
        ui.chart(st, heatmap, ceilings.rename(columns={"rsa_normalized": "mean"}), "instruction",
                 roi_order, "RSA / RSA ceiling", cell_height=30 * n_rows,
                 row_order=instructions, key="ci_rsa_norm")  # fmt: skip
        st.caption(
            "Each metric against its own noise ceiling: encoding's is √NC (NSD's ncsnr "
            "ceiling, mean over the ROI's targets), RSA's the square root of the split-half "
            "reliability of the ROI's test-image dissimilarity matrix (random halves of each "
            "image's repeats, Spearman between the halves' matrices, Spearman-Brown "
            f"corrected, {rsa_ceiling.RSA_SPLITS} splits; computed once per subject). The "
            "heatmap is RSA divided by it (subjects averaged), the analog of normalized "
            "alignment."
        )  # fmt: skip



# ---------------------------------------------------------------- controls (image or words?)
@st.cache_data(show_spinner=False, max_entries=16)
def control_views(name: str, stamp: str, model: str, subjects: tuple[str, ...]):
    """The controls of ``model``'s alignment (:mod:`core.results.controls`), for the page."""
    from core.results.tables import grid_settings

    table, parts = ui.get_roi_table(name, stamp), ui.get_partition_table(name, stamp)
    settings = grid_settings(name)
    own = list(dict.fromkeys(table.loc[table["model"] == model, "instruction"]))
    lengths = result_controls.answer_lengths(ui.get_dataset(name), model, own, settings)
    points, corr = result_controls.length_alignment(table, lengths, model, list(subjects))
    return (result_controls.text_control_shares(table, model, list(subjects)), points, corr,
            result_controls.image_adds(parts, model, list(subjects)),
            result_controls.controls_hint(name, table, model, settings, parts))  # fmt: skip


try:
    is_mllm = model_role(model) == "mllm"
except Exception:  # a model that no longer resolves
    is_mllm = False
if is_mllm:
    st.subheader("Is it the image, the words or the length?")
    shares, points, corr, adds, hint = control_views(name, stamp, model, tuple(subjects))
    if hint:
        st.info(hint)
    if not shares.empty:
        st.markdown(f"**How much of each instruction's alignment the text-only control "
                    f"({control_of(model)}) keeps**")  # fmt: skip
        ui.chart(st, heatmap, shares.rename(columns={"share": "mean"}), "instruction",
                 roi_order, "text-only control / instruction", cell_height=30 * n_rows,
                 row_order=instructions, key="ci_text_share")  # fmt: skip
        st.caption(
            f"{control_of(model)} runs {model}'s own language model over the answer alone (no "
            "image): the share is its normalized alignment divided by the instruction's "
            f"(test set, mean over subjects), each at its layer chosen by the cross-validated "
            f"training score ({model}: layer {shares['layer'].iloc[0]}; control: layer "
            f"{shares['control_layer'].iloc[0]}). Near 1: the answer's words carry the "
            "alignment; near 0: it needed the image. Blank where the instruction scores below "
            f"{result_controls.MIN_SCORE}."
        )  # fmt: skip
    if not adds.empty:
        st.markdown("**What the image adds** (each instruction partitioned against its "
                    "text-only control)")  # fmt: skip
        ui.chart(st, heatmap, adds.rename(columns={"image_share": "mean"}), "instruction",
                 roi_order, "unique share of the instruction's R²", cell_height=30 * n_rows,
                 row_order=instructions, key="ci_image_adds")  # fmt: skip
        st.caption(
            "Unique part of the image-conditioned response embedding over the text-only "
            "control, as a share of its own test R²: (R²(both) − R²(text)) / R²(instruction), "
            "mean over subjects (variance partitioning, as on the Variance partitioning page)."
        )  # fmt: skip
        ui.downloads(adds, f"image_adds_{model.replace(':', '-')}", "ci_image_adds_dl")
    if not points.empty:
        st.markdown("**Do longer answers align better?** (across instructions, per ROI)")
        ui.chart(st, length_scatter, points, roi_order, key="ci_length")
        shown = corr.rename(columns={"n": "N", "pearson_r": "Pearson r",
                                     "p": "p (uncorrected)", "spearman_rho": "Spearman ρ"})  # fmt: skip
        st.dataframe(shown.style.format({"Pearson r": "{:+.2f}", "p (uncorrected)": "{:.2g}",
                                         "Spearman ρ": "{:+.2f}"}),
                     hide_index=True, width="stretch")  # fmt: skip
        st.caption(
            "Mean answer length in tokens (end-of-sequence included) over the test images "
            f"every subject saw, against the instruction's normalized alignment ({model} at its "
            "CV-chosen layer, mean over subjects); N = the instructions compared. Descriptive: "
            "with a handful of instructions a correlation is weak evidence either way."
        )  # fmt: skip

# ---------------------------------------------------------------- maps (one subject)
st.subheader("Maps")
c7, c8, c9 = st.columns(3)
ui.from_url("ci_map_subject", "subject", subjects)
subject = c7.selectbox("Subject", subjects, key="ci_map_subject")
ui.from_url("ci_a", "a", instructions)
a = c8.selectbox("Instruction A", instructions, key="ci_a")
ui.from_url("ci_b", "b", instructions)
ui.default_value("ci_b", instructions, instructions[min(1, len(instructions) - 1)])
b = c9.selectbox("Instruction B", instructions, key="ci_b")
ui.link(subject=subject, a=a, b=b)
details = {"dataset": name, "subject": subject, "model": model, "layer": int(layer)}
figures = [
    export.ExportFigure(
        f"instructions_{model}_L{layer}_{metric}", f"{METRICS[metric]} per ROI and instruction",
        lambda: export.bars_figure(
            summary, "instruction", METRICS[metric], roi_order, instructions,
            stars[["roi", "instruction", "stars"]], 1.0 if metric == "nalign_mean" else None,
            title=f"{model} · layer {layer}", highlight=highlight, best=best,
        ),
        {"dataset": name, "subjects": subjects, "model": model, "layer": int(layer),
         "measure": METRICS[metric], "reference": reference, "across": across,
         **ui.grid_context(name)},
        f"Mean across subjects. {error_note} {star_note} ▼: each ROI's best instruction "
        "(chosen by the cross-validated training score).",
    ),
    export.ExportFigure(
        f"instructions_heatmap_{model}_L{layer}_{metric}", "Instruction × ROI",
        lambda: export.heatmap_figure(summary, "instruction", roi_order, METRICS[metric],
                                      title=f"{model} · layer {layer}", row_order=instructions),
        {"dataset": name, "subjects": subjects, "model": model, "layer": int(layer),
         "measure": METRICS[metric]},
        "Mean across subjects.",
    ),
]  # fmt: skip
try:
    sa = ui.get_target_scores(name, subject, model, a, int(layer), stamp)
    sb = ui.get_target_scores(name, subject, model, b, int(layer), stamp)
except ArtifactError as exc:
    st.warning(f"Per-target scores are not stored for this choice: {exc}")
    st.stop()
label = "normalized alignment (r / √NC)"
both = np.concatenate([sa["nalign"], sb["nalign"]])
lim = (0.0, max(float(np.nanpercentile(both, 99)) if np.isfinite(both).any() else 1.0, 1e-3))
key = f"{name}|{subject}|{model}|{layer}|{stamp}"
map_a = BrainMap.of_values(
    f"ci|{key}|{a}", sa["nalign"], label=label, title=f"{a} · {subject} · layer {layer}",
    cmap="inferno", limits=lim, caption=f"Normalized alignment of {a}'s response embedding.",
)  # fmt: skip
map_b = BrainMap.of_values(
    f"ci|{key}|{b}", sb["nalign"], label=label, title=f"{b} · {subject} · layer {layer}",
    cmap="inferno", limits=lim, caption=f"Normalized alignment of {b}'s response embedding.",
)  # fmt: skip
diff = sa["nalign"] - sb["nalign"]
map_d = BrainMap.of_values(
    f"ci-diff|{key}|{a}|{b}", diff, label=f"{a} − {b} (normalized alignment)",
    title=f"{a} − {b} · {subject} · layer {layer}", symmetric=True,
    caption=f"Red: {a} predicts the target better; blue: {b} does.",
)  # fmt: skip
maps = [map_a, map_b, map_d]
m1, m2 = st.columns(2)
ui.show_map(m1, map_a, name, subject, highlight, ds.simulated)
ui.show_map(m2, map_b, name, subject, highlight, ds.simulated)
m3, m4 = st.columns(2)
png_d = ui.show_map(m3, map_d, name, subject, highlight, ds.simulated)
m4.caption(
    f"**Difference** {a} − {b} of per-target normalized alignment: red where {a}'s response "
    f"embedding predicts the target better, blue where {b}'s does."
)
st.caption("Targets whose noise ceiling is below 5% of the variance are drawn grey (no ratio).")
if png_d is not None:
    ui.map_downloads(
        png_d, {f"nalign_{a}": sa["nalign"], f"nalign_{b}": sb["nalign"], "difference": diff},
        f"instruction_maps_{subject}_{a}_vs_{b}_L{layer}", "ci_maps",
    )  # fmt: skip
figures += [ui.map_figure(m, name, subject, highlight, ds.simulated, details) for m in maps]

st.subheader("Best instruction per target")
try:
    labels, best_r = ui.get_best_instruction(
        name, subject, model, int(layer), tuple(instructions), stamp
    )
except ArtifactError as exc:
    st.warning(f"Per-target scores are missing for some instruction: {exc}")
    labels = None
n_sig = int((labels >= 0).sum()) if labels is not None else 0
if labels is None:
    pass
elif n_sig == 0:
    st.info(
        "No target has a significant fit (permutation test, FDR q < 0.05) for any instruction "
        "at this layer, so the best-instruction map is empty."
    )
else:
    map_best = BrainMap.of_categories(
        f"best|{key}|{','.join(instructions)}", labels, instructions,
        title=f"Best instruction per target · {subject} · layer {layer} ({n_sig} significant "
        "targets)", label="best instruction",
        caption="The instruction whose response embedding predicts the target best (highest "
        "test r; significant targets only, BH-FDR q < 0.05).",
    )  # fmt: skip
    maps.append(map_best)
    png_best = ui.show_map(st, map_best, name, subject, highlight, ds.simulated)
    counts = result_views.label_counts(labels, instructions)
    st.dataframe(counts, hide_index=True)
    if png_best is not None:
        ui.map_downloads(
            png_best, {"best_instruction": labels, "best_r": best_r,
                       "instructions": np.array(instructions, dtype=str)},
            f"best_instruction_{subject}_L{layer}", "ci_best",
        )  # fmt: skip
    figures.append(ui.map_figure(map_best, name, subject, highlight, ds.simulated, details))

st.subheader("3D brain and target inspector")
ui.map_tools("ci", maps, name, subject, highlight, ds.simulated,
             inspect={"model": model, "instruction": a, "layer": int(layer), "stamp": stamp})
ui.export_panel("ci", figures, {"page": "Compare instructions", "dataset": name,
                                "simulated": ds.simulated, "subjects": subjects, "model": model,
                                "layer": int(layer), "instructions": instructions,
                                **ui.grid_context(name)})  # fmt: skip
