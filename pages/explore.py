"""Explore: one image, one instruction, one model -> the response and the brain responses its
embedding predicts (beside the measured ones for dataset images)."""

from __future__ import annotations

import streamlit as st

from core.data.images import ImageInputError
from core.models.instructions import PAPER_INSTRUCTIONS, resolve_instruction
from core.models.registry import DEFAULT_MODEL, ModelError
from core.pipeline import dashboard_jobs, gallery, prediction, stored_encoders
from core.pipeline.fits import GENERAL, IMAGE
from core.pipeline.grid import is_generative
from core.viz import views
from pages import _shared as ui

FREE = "✏️ Free text…"

ds = ui.page_header(
    "Explore",
    "Pick an image, an instruction and a model: see the response, the voxel responses its "
    "embedding predicts through the stored encoder, and (for dataset images) the measured ones.",
)
name = ds.name
stamp = ui.stamp(name)
encoders = ui.get_encoder_table(name, stamp)
table = ui.get_roi_table(name, stamp)

# ---------------------------------------------------------------- choices: subject, model, ...
models = stored_encoders.model_choices(encoders, table, DEFAULT_MODEL)
c1, c2, c3, c4 = st.columns([1, 2, 3, 1])
subject = c1.selectbox("Subject", ds.subject_names, key="ex_subject")
model = c2.selectbox("Model", models, key="ex_model", format_func=ui.model_label)
generative = is_generative(model)
presets = {f"{i.id} · {i.text}": i.id for i in PAPER_INSTRUCTIONS}
if generative:
    pick = c3.selectbox("Instruction", [*presets, FREE], key="ex_instruction")
    if pick == FREE:
        instruction = c3.text_input(
            "Your instruction", "What is in this image?", key="ex_free", max_chars=300
        ).strip() or "What is in this image?"
        instruction_id = resolve_instruction(instruction).id
    else:
        instruction = instruction_id = presets[pick]
else:
    c3.text_input("Instruction", "(image-only model: no instruction)", disabled=True)
    instruction = instruction_id = IMAGE
enc_layers = encoders[
    (encoders["subject"] == subject)
    & (encoders["model"] == model)
    & (encoders["instruction"] == instruction_id)
]["layer"].tolist()
layer = c4.selectbox(
    "Layer",
    enc_layers or ["—"],
    index=max(len(enc_layers) - 1, 0),
    key=f"ex_layer_{model}_{instruction_id}_{subject}",
    help="Layers with a stored encoder for this subject, model and instruction.",
)

# ---------------------------------------------------------------- image: gallery or upload
left, right = st.columns([2, 3], gap="large")
with left:
    source = st.radio(
        "Image", ["Dataset gallery", "Upload"], horizontal=True, key="ex_source",
        label_visibility="collapsed",
    )  # fmt: skip
    image = image_id = stimulus_id = None
    if source == "Dataset gallery":
        attrs = ui.get_attributes(name)
        with st.expander("Filter the gallery", expanded=False):
            id_text = st.text_input("Ids (e.g. 3, 10-20)", key="ex_ids")
            text = st.text_input("Content contains (e.g. bicycle, cat, pizza)", key="ex_text")
            content = {}
            filters = gallery.content_filters(attrs)
            cols = st.columns(2)
            for k, (col, values) in enumerate(list(filters.items())[:6]):
                content[col] = cols[k % 2].multiselect(
                    col.replace("_", " "), values, key=f"ex_f_{col}"
                )
            test_only = st.toggle("Only the subject's test images", key="ex_test_only")
        subj = ui.get_subject(name, subject)
        ids = gallery.filter_gallery(
            attrs, ds.stimuli.ids, id_text, content, text,
            split_ids=subj.test_ids if test_only else None,
        )  # fmt: skip
        if ids.size == 0:
            st.warning("No image matches these filters.")
        else:
            st.caption(f"{ids.size} images match")
            stimulus_id = st.selectbox(
                "Stimulus", ids.tolist(), key="ex_stimulus",
                format_func=lambda i: gallery.stimulus_caption(attrs, i),
            )  # fmt: skip
            strip = ids[:8]
            thumbs = st.columns(len(strip))
            for col, sid in zip(thumbs, strip, strict=True):
                col.image(ui.get_thumbnail(name, int(sid)), caption=f"#{sid}")
            image = ds.stimuli.load_image(int(stimulus_id))
            image_id = f"{name}:{int(stimulus_id)}"
            st.image(image, caption=f"stimulus #{stimulus_id}", width=320)
            if attrs is not None and int(stimulus_id) in attrs.index:
                with st.expander("Known content of this image"):
                    st.dataframe(
                        gallery.known_content(attrs, int(stimulus_id)),
                        hide_index=True,
                        width="stretch",
                    )
    else:
        upload = st.file_uploader(
            "An image (PNG, JPEG, WebP, …; at most 20 MB)", key="ex_upload",
            help="Decoded safely: size and pixel caps, verified, converted to RGB.",
        )  # fmt: skip
        if upload is not None:
            try:
                up = gallery.read_upload(upload.name, upload.getvalue())
            except ImageInputError as exc:
                st.error(f"This file cannot be used: {exc}", icon=":material/block:")
            else:
                for note in up.notes:
                    st.warning(note)
                image, image_id = up.image, up.image_id
                st.image(image, caption=f"{upload.name} ({up.image.width}×{up.image.height})",
                         width=320)  # fmt: skip
        else:
            st.caption("Nothing uploaded yet.")

# ---------------------------------------------------------------- run
choice_key = f"{name}|{subject}|{model}|{instruction}|{layer}|{image_id}"
row = stored_encoders.find_encoder(
    encoders, subject, model, instruction_id, None if layer == "—" else layer
)
with right:
    run = st.button(
        "Run", type="primary", disabled=image is None, key="ex_run",
        help="Runs the model (or loads the cached response) and predicts the brain responses.",
    )  # fmt: skip
    if run and image is not None:
        try:
            with st.spinner("Running the model…"):
                if row is None:
                    result = prediction.run_inference(model, image, instruction, image_id)
                    st.session_state["ex_result"] = (choice_key, result, None)
                else:
                    pred = prediction.explore_prediction(
                        ds, subject, row, image, instruction, image_id=image_id,
                        stimulus_id=stimulus_id, encoder=ui.get_encoder(row["encoder_key"]),
                    )  # fmt: skip
                    st.session_state["ex_result"] = (choice_key, None, pred)
        except ModelError as exc:
            st.session_state.pop("ex_result", None)
            st.info(f"**Model not available.** {exc}", icon=":material/hourglass_empty:")
    stored = st.session_state.get("ex_result")
    result = pred = None
    if stored and stored[0] == choice_key:
        _, result, pred = stored
    elif stored:
        st.caption("Choices changed: press **Run** to update.")
    if pred is not None or result is not None:
        text = pred.text if pred is not None else result.text
        seconds = pred.seconds if pred is not None else result.seconds
        cached = pred.from_cache if pred is not None else result.from_cache
        st.markdown("**Response**")
        st.info(text or "(image-only model: no text response)", icon=":material/chat:")
        m1, m2, m3 = st.columns(3)
        m1.metric("Inference time", f"{seconds:.2f} s")
        m2.metric("From cache", "yes" if cached else "no")
        m3.metric("Tokens", pred.n_tokens if pred is not None else result.n_tokens)
        if stimulus_id is not None and generative and instruction_id in presets.values():
            ref = gallery.reference_answer(ui.get_answers(name), int(stimulus_id), instruction_id)
            if ref:
                st.caption(f"Reference answer (known content): {ref}")
    if row is None:
        st.warning(
            f"No stored encoder for **{subject} · {model} · {instruction_id}**"
            + ("" if layer == "—" else f" · layer {layer}")
            + ": the response runs, but there is no brain prediction yet."
        )
        if instruction_id.startswith("free-"):
            st.caption(
                "Free-text instructions need their own embeddings over the whole dataset "
                "before an encoder can be fitted (a background job: extraction, then one fit)."
            )
        target_layer = stored_encoders.default_layer(table, model)
        if target_layer is not None:
            ui.job_button(
                dashboard_jobs.encoder_job_name(subject, model, instruction_id, target_layer),
                dashboard_jobs.encoder_job_args(name, subject, model, instruction_id, target_layer),
                f"Compute the encoder (layer {target_layer}) in the background",
            )
        else:
            ui.no_results_state(name)

# ---------------------------------------------------------------- maps and ROI bars
if pred is not None:
    st.divider()
    masks = ui.get_masks(name, subject)
    rois = list(masks)
    roi_frame = pred.rois[pred.rois["roi"] != GENERAL]
    st.subheader("Predicted brain responses")
    chart_box = st.container()
    with chart_box:
        event = st.altair_chart(
            views.roi_prediction_chart(roi_frame, rois),
            on_select="rerun",
            key="ex_roi_chart",
            width="stretch",
        )
    highlight = ui.roi_highlight("ex", rois, event)
    label = "response (training z units)"
    lim = views.value_limits(pred.predicted, symmetric=True)
    png_pred = ui.render_value_map(
        f"pred|{choice_key}|{lim}", name, subject, highlight, label,
        f"Predicted · {model} · {instruction_id} · layer {pred.encoder['layer']}",
        True, ds.simulated, pred.predicted, limits=lim,
    )  # fmt: skip
    if pred.measured is not None:
        a, b = st.columns(2)
        a.image(png_pred, width="stretch")
        png_meas = ui.render_value_map(
            f"meas|{name}|{subject}|{stimulus_id}|{pred.encoder['encoder_key']}|{lim}", name,
            subject, highlight, label, f"Measured · {subject} · stimulus #{stimulus_id} "
            f"({pred.split} split)", True, ds.simulated, pred.measured,
            limits=views.value_limits(pred.measured, symmetric=True),
        )  # fmt: skip
        b.image(png_meas, width="stretch")
        general = pred.rois[pred.rois["roi"] == GENERAL]
        if not general.empty and "r" in general:
            st.caption(
                "Each map has its own colour scale (predictions regress to the mean). "
                f"Across the general visual mask, prediction vs measurement r = "
                f"{general['r'].iloc[0]:.3f}"
                + (" (a training image: the encoder saw it)" if pred.split == "train" else "")
            )
    else:
        st.image(png_pred, width="stretch")
    stem = f"prediction_{subject}_{model.replace(':', '-')}_{instruction_id}_L{pred.encoder['layer']}"
    arrays = {"predicted": pred.predicted}
    if pred.measured is not None:
        arrays["measured"] = pred.measured
    ui.map_downloads(png_pred, arrays, stem, "ex_map")
    with st.expander("ROI table"):
        st.dataframe(pred.rois, hide_index=True, width="stretch")
        ui.downloads(pred.rois, f"{stem}_rois", "ex_rois")
