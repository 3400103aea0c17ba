"""Ground truth (SIMULATED demo only): the planted tuning beside what the pipeline recovered.

All computation lives in core.data.demo.truth; this page only arranges it.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.data.demo import truth as gt
from core.results import recovery as results_recovery
from core.results.selection import best_layers
from core.storage import ArtifactError
from pages import ui

ds = ui.page_header(
    "Ground truth (simulated)",
    "SIMULATED: the demo world knows what drives every target. Its planted tuning is shown "
    "beside what the encoding pipeline recovered from the responses: a teaching view no real "
    "dataset can give.",
)
if not ds.simulated or ds.kind != "demo" or not hasattr(ds.stimuli, "root"):
    st.info(
        f"**{ds.name}** is measured data: it has no planted ground truth. Choose the simulated "
        "**demo** dataset in the sidebar."
    )
    st.stop()
name = ds.name


@st.cache_data(show_spinner=False, max_entries=8)
def get_truth(name: str, subject: str, built: str) -> dict:
    from core.data.demo.store import load_truth

    return load_truth(ui.get_dataset(name).stimuli.root, subject)


@st.cache_data(show_spinner="Fitting the V1-V3 encoders and reading the images…", max_entries=8)
def get_eccentricity(name: str, subject: str, model: str, instruction: str, layer: int, stamp: str):
    check = results_recovery.recovered_eccentricity(ui.get_dataset(name), subject, model, instruction, layer)
    return check.planted, check.recovered, check.spearman, int(check.targets.sum())


built = str(ds.metadata.get("stimuli_digest", "")) + str(ds.metadata.get("seed", ""))
c1, c2 = st.columns([1, 2])
ui.from_url("gt_subject", "subject", ds.subject_names)
subject = c1.selectbox("Subject", ds.subject_names, key="gt_subject")
truth = get_truth(name, subject, built)
targets = ui.get_subject(name, subject).targets
maps = gt.planted_maps(truth)
choices = [k for k in gt.PLANTED_MAPS if k in maps]
ui.from_url("gt_map", "planted", choices)
map_key = c2.selectbox(
    "Planted map", choices, key="gt_map", format_func=lambda k: gt.PLANTED_MAPS[k][0]
)
ui.link(subject=subject, planted=map_key)
label, kind, cmap = gt.PLANTED_MAPS[map_key]
stamp = ui.stamp(name)
key = f"{name}|{subject}|{built}"

st.subheader("Planted tuning")
labels, names = gt.driver_categories(truth)
if kind == "category":
    png = ui.render_category_map(
        f"gt-driver|{key}", name, subject, None, f"Planted driver · {subject}", tuple(names),
        True, labels,
    )  # fmt: skip
else:
    values = maps[map_key]
    limits = (0.0, 360.0) if kind == "cyclic" else None
    png = ui.render_value_map(
        f"gt-{map_key}|{key}", name, subject, None, label, f"Planted {label} · {subject}", False,
        True, values, limits=limits, cmap=cmap,
    )  # fmt: skip
st.image(png, width="stretch")
st.caption(
    "Grey: targets where this map does not apply (no pRF outside V1-V3, no numerosity tuning "
    "outside IPS) or pure-noise targets. Tuning varies smoothly over the cortex (random fields "
    "a few mm wide) around each area's mean, and blends between areas at their borders."
)
ui.map_downloads(
    png, {map_key: np.asarray(maps[map_key])}, f"planted_{map_key}_{subject}", "gt_map"
)

st.subheader("Each ROI's planted preference")
prefs = gt.roi_preferences(truth, targets)
st.dataframe(prefs, hide_index=True)
st.caption(
    "Driver weight: how much of the tuned signal follows the ROI's own group (the rest blends "
    "in from neighbouring areas). Unnamed share: the part of the signal that follows image "
    "properties no instruction asks about (texture, clutter, positions), which keeps every "
    "instruction below the noise ceiling."
)

st.subheader("Recovered by the pipeline")
mllm = ui.mllm_rows(name, stamp)
table = ui.get_roi_table(name, stamp)  # image-only encoders too (eccentricity below)
models = list(dict.fromkeys(mllm["model"]))
c3, c4 = st.columns([2, 1])
ui.from_url("gt_model", "model", models)
model = c3.selectbox("Model", models, key="gt_model", format_func=ui.model_label)
sub_m = mllm[mllm["model"] == model]
layers = [int(x) for x in sorted(sub_m["layer"].unique().tolist())]
best = best_layers(sub_m).get(model, layers[-1])
layer_key = f"gt_layer_{model}"
ui.from_url(layer_key, "layer", layers)
ui.default_value(layer_key, layers, best)  # the CV-best layer
layer = c4.selectbox("Layer", layers, key=layer_key)
ui.link(model=model, layer=layer)
recovery = results_recovery.recovery_table(sub_m, model, int(layer))
if not recovery.empty:
    n_match = int(recovery["match"].sum())
    st.metric(
        "Planted instruction ranks first", f"{n_match} of {len(recovery)} ROI × subject cells"
    )
    st.dataframe(recovery, hide_index=True)
instructions = tuple(dict.fromkeys(sub_m[sub_m["layer"] == layer]["instruction"]))
m1, m2 = st.columns(2)
m1.image(
    ui.render_category_map(
        f"gt-driver|{key}", name, subject, None, f"Planted driver · {subject}", tuple(names),
        True, labels,
    ),
    width="stretch",
)  # fmt: skip
try:
    best_labels, _ = ui.get_best_instruction(name, subject, model, int(layer), instructions, stamp)
except ArtifactError as exc:
    m2.warning(f"Per-target scores are missing for some instruction: {exc}")
else:
    m2.image(
        ui.render_category_map(
            f"gt-best|{key}|{model}|{layer}|{stamp}|{','.join(instructions)}", name, subject,
            None, f"Recovered: best instruction per target · {model} · layer {layer}",
            instructions, True, best_labels,
        ),
        width="stretch",
    )  # fmt: skip
st.caption(
    "Left: what the simulation planted (in brackets, the instruction whose answer names it). "
    "Right: which instruction's response embedding predicts each target best (significant "
    "targets only, BH-FDR q < 0.05)."
)

st.subheader("Retinotopy: planted vs recovered eccentricity (V1-V3)")
st.caption(
    "Each V1-V3 target's recovered eccentricity is the image eccentricity its encoder's "
    "predicted responses follow: the share of the predictions explained by the luminance, "
    "contrast and colour of each ring around the image centre, averaged over rings. The "
    "encoder is refitted for these targets exactly as the grid fits it (seconds)."
)
c5, c6 = st.columns([2, 1])
ecc_models = list(dict.fromkeys(table["model"]))
ui.from_url("gt_ecc_model", "ecc_model", ecc_models)
ecc_model = c5.selectbox("Encoder of", ecc_models, key="gt_ecc_model", format_func=ui.model_label)
ecc_sub = table[table["model"] == ecc_model]
ecc_instructions = list(dict.fromkeys(ecc_sub["instruction"]))
ui.from_url("gt_ecc_ins", "ecc_instruction", ecc_instructions)
ui.default_value("gt_ecc_ins", ecc_instructions,
                 "IU1" if "IU1" in ecc_instructions else ecc_instructions[0])  # fmt: skip
ecc_ins = c6.selectbox("Instruction", ecc_instructions, key="gt_ecc_ins")
ecc_layer = best_layers(ecc_sub).get(ecc_model, int(ecc_sub["layer"].max()))
if ui.url_value("ecc") == "1":  # a link to the comparison opens it
    st.session_state["gt_ecc_on"] = True
if st.button("Compare eccentricity maps", key="gt_ecc_run"):
    st.session_state["gt_ecc_on"] = True
ui.link(ecc_model=ecc_model, ecc_instruction=ecc_ins,
        ecc=1 if st.session_state.get("gt_ecc_on") else None)  # fmt: skip
if st.session_state.get("gt_ecc_on"):
    try:
        planted, recovered, rho, n_early = get_eccentricity(
            name, subject, ecc_model, ecc_ins, int(ecc_layer), stamp
        )
    except Exception as exc:  # embeddings not extracted for this choice
        st.warning(f"Cannot recover eccentricity for this choice: {exc}")
    else:
        st.metric(
            f"Spearman ρ, planted vs recovered eccentricity ({n_early} V1-V3 targets)",
            f"{rho:.2f}",
        )
        lim = (0.0, 6.0)
        e1, e2 = st.columns(2)
        e1.image(
            ui.render_value_map(
                f"gt-ecc-planted|{key}", name, subject, None, "eccentricity (degrees)",
                f"Planted pRF eccentricity · {subject}", False, True, planted, limits=lim,
                cmap="viridis",
            ),
            width="stretch",
        )  # fmt: skip
        e2.image(
            ui.render_value_map(
                f"gt-ecc-recovered|{key}|{ecc_model}|{ecc_ins}|{ecc_layer}|{stamp}", name,
                subject, None, "eccentricity (degrees)",
                f"Recovered · {ecc_model} {ecc_ins} layer {ecc_layer}", False, True, recovered,
                limits=lim, cmap="viridis",
            ),
            width="stretch",
        )  # fmt: skip
