"""Explore: one image, one instruction, one model -> the response and the brain responses its
embedding predicts (beside the measured ones for dataset images)."""

from __future__ import annotations

import streamlit as st

from core.dashboard import dashboard_jobs, gallery, prediction, stored_encoders
from core.data.images import ImageInputError
from core.data.rois import GENERAL
from core.models.instructions import PAPER_INSTRUCTIONS, resolve_instruction
from core.models.registry import DEFAULT_MODEL, ModelError
from core.models.roles import is_generative
from core.results.fit import IMAGE
from core.viz import export, views
from core.viz.maps import BrainMap
from pages import ui

FREE = "✏️ Free text…"


def _png_of(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


ds = ui.page_header(
    "Explore",
    "Pick an image, an instruction and a model: see the response, the voxel responses its "
    "embedding predicts through the stored encoder, and (for dataset images) the measured ones.",
)
ui.what_you_see()
name = ds.name
stamp = ui.stamp(name)
encoders = ui.get_encoder_table(name, stamp)
table = ui.get_roi_table(name, stamp)

# ---------------------------------------------------------------- choices: subject, model, ...
models = stored_encoders.model_choices(encoders, table, DEFAULT_MODEL)
c1, c2, c3, c4 = st.columns([1, 2, 3, 1])
ui.from_url("ex_subject", "subject", ds.subject_names)
subject = c1.selectbox("Subject", ds.subject_names, key="ex_subject")
ui.from_url("ex_model", "model", models)
model = c2.selectbox("Model", models, key="ex_model", format_func=ui.model_label)
generative = is_generative(model)
presets = {f"{i.id} · {i.text}": i.id for i in PAPER_INSTRUCTIONS}
free_text = ui.url_value("text")
ui.from_url("ex_instruction", "instruction", [*presets, FREE],
            aliases={**{v: k for k, v in presets.items()}, **({"free": FREE} if free_text else {})})
if free_text and st.session_state.get("ex_instruction") == FREE:
    st.session_state.setdefault("ex_free", str(free_text)[:300])
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
ui.link(subject=subject, model=model,
        instruction=None if not generative else (instruction_id if pick != FREE else "free"),
        text=instruction if generative and pick == FREE else None)  # fmt: skip
enc_layers = encoders[
    (encoders["subject"] == subject)
    & (encoders["model"] == model)
    & (encoders["instruction"] == instruction_id)
]["layer"].tolist()
# every layer the results know for this model (a linked layer is honoured even where no encoder
# is stored yet: the page then offers to fit it), and those with a stored encoder
layers = sorted({*enc_layers, *(table[table["model"] == model]["layer"] if not table.empty
                                else [])}, key=int) or ["—"]  # fmt: skip
layers = [int(x) for x in layers] if layers != ["—"] else layers
layer_key = f"ex_layer_{model}_{instruction_id}_{subject}"
ui.from_url(layer_key, "layer", layers)
reported = stored_encoders.default_layer(table, model)
ui.default_value(layer_key, layers,
                 reported if reported in layers else (max(enc_layers) if enc_layers else
                                                      layers[-1]))  # fmt: skip
layer = c4.selectbox(
    "Layer", layers, key=layer_key,
    help="Hidden-state layer of the model (default: its cross-validated best layer, the one "
    "every page reports). A layer without a stored encoder for this subject and instruction "
    "can be fitted in the background.",
)  # fmt: skip
ui.link(layer=None if layer == "—" else layer)

# ---------------------------------------------------------------- image: gallery or upload
left, right = st.columns([2, 3], gap="large")
with left:
    ui.from_url("ex_source", "source", ["Dataset gallery", "Upload"], aliases={"upload": "Upload"})
    source = st.radio(
        "Image", ["Dataset gallery", "Upload"], horizontal=True, key="ex_source",
        label_visibility="collapsed",
    )  # fmt: skip
    ui.link(source="upload" if source == "Upload" else None)
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
            ui.from_url("ex_stimulus", "stimulus", ids.tolist())
            ui.default_value("ex_stimulus", ids.tolist(),  # a held-out test image
                             gallery.default_stimulus(ids, subj.test_ids))  # fmt: skip
            stimulus_id = st.selectbox(
                "Stimulus", ids.tolist(), key="ex_stimulus",
                format_func=lambda i: gallery.stimulus_caption(attrs, i),
            )  # fmt: skip
            strip = ids[:8]
            thumbs = st.columns(len(strip))
            for col, sid in zip(thumbs, strip, strict=True):
                col.image(ui.get_thumbnail(name, int(sid)), caption=f"#{sid}")
            ui.link(stimulus=int(stimulus_id))
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
        ui.link(stimulus=None)

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
    stored = st.session_state.get("ex_result")
    # the first screen runs by itself (the default model on a dataset image: its response while
    # a first start fits the encoder, its prediction once the encoder is stored); a linked view
    # with run=1 too; and a response shown before its encoder landed gets its prediction as
    # soon as the encoder is there
    computing = ui.first_start_status(name) if row is None else None
    first = (model == DEFAULT_MODEL and source == "Dataset gallery"
             and (row is not None or computing is not None)
             and not st.session_state.get("_ex_first_done")
             and (stored is None or st.session_state.get("_ex_first_pending")))  # fmt: skip
    linked = stored is None and ui.url_value("run") == "1"
    upgrade = bool(stored and stored[0] == choice_key and stored[2] is None and row is not None)
    auto = image is not None and (first or linked or upgrade)
    if (run or auto) and row is not None:  # a prediction is shown: no more running by itself
        st.session_state["_ex_first_done"] = True
        st.session_state.pop("_ex_first_pending", None)
    elif (run or auto) and computing is not None:  # a response: predicted once the encoder lands
        st.session_state["_ex_first_pending"] = True
    if (run or auto) and image is not None:
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
    if computing is not None:
        st.info(
            "**Computing the first results in the background** (started by itself: this home "
            "had none). The encoder of this view is fitted first; the predicted brain map "
            "appears here by itself, then every model, instruction and layer fills in behind "
            "(progress in the sidebar).",
            icon=":material/hourglass_top:",
        )
        ui.get_masks(name, subject)  # the flat map's raster is ready before the encoder lands
        ui.get_raster(name, subject)
    elif row is None:
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
        target_layer = stored_encoders.default_layer(table, model) if layer == "—" else layer
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
        event = ui.chart(
            st, views.roi_prediction_chart, roi_frame, rois,
            on_select="rerun",
            key="ex_roi_chart",
        )
    highlight = ui.roi_highlight("ex", rois, event)
    link_run = st.session_state.get("ex_result", (None,))[0] == choice_key
    ui.link(run=1 if link_run and source != "Upload" else None)
    label = "response (training z units)"
    lim = views.value_limits(pred.predicted, symmetric=True)
    enc_layer = pred.encoder["layer"]
    map_pred = BrainMap.of_values(
        f"pred|{choice_key}", pred.predicted, label=label,
        title=f"Predicted · {model} · {instruction_id} · layer {enc_layer}", limits=lim,
        symmetric=True, caption="Responses the stored encoder predicts from the response "
        "embedding (training z units).",
    )  # fmt: skip
    maps = [map_pred]
    if pred.measured is not None:
        a, b = st.columns(2)
        png_pred = ui.show_map(a, map_pred, name, subject, highlight, ds.simulated)
        map_meas = BrainMap.of_values(
            f"meas|{name}|{subject}|{stimulus_id}|{pred.encoder['encoder_key']}", pred.measured,
            label=label, title=f"Measured · {subject} · stimulus #{stimulus_id} ({pred.split} "
            "split)", symmetric=True, caption="The subject's measured response (repetition "
            "average, training z units).",
        )  # fmt: skip
        maps.append(map_meas)
        ui.show_map(b, map_meas, name, subject, highlight, ds.simulated)
        general = pred.rois[pred.rois["roi"] == GENERAL]
        if not general.empty and "r" in general:
            st.caption(
                "Each map has its own colour scale (predictions regress to the mean). "
                f"Across the general visual mask, prediction vs measurement r = "
                f"{general['r'].iloc[0]:.3f}"
                + (" (a training image: the encoder saw it)" if pred.split == "train" else
                   " (a held-out test image: the encoder never saw it)")  # fmt: skip
            )
    else:
        png_pred = ui.show_map(st, map_pred, name, subject, highlight, ds.simulated)
    stem = f"prediction_{subject}_{model.replace(':', '-')}_{instruction_id}_L{enc_layer}"
    arrays = {"predicted": pred.predicted}
    if pred.measured is not None:
        arrays["measured"] = pred.measured
    if png_pred is not None:
        ui.map_downloads(png_pred, arrays, stem, "ex_map")
    with st.expander("ROI table"):
        st.dataframe(pred.rois, hide_index=True, width="stretch")
        ui.downloads(pred.rois, f"{stem}_rois", "ex_rois")
    st.subheader("3D brain and target inspector")
    ui.map_tools("ex", maps, name, subject, highlight, ds.simulated,
                 inspect={"model": model, "instruction": instruction_id, "layer": int(enc_layer),
                          "stamp": stamp})  # fmt: skip
    details = {"dataset": name, "subject": subject, "model": model,
               "instruction": instruction, "layer": int(enc_layer),
               "image": image_id or "upload", "response": pred.text}  # fmt: skip
    bars = views.roi_prediction_frame(roi_frame).rename(columns={"value": "mean"})
    bars["lo"] = bars["hi"] = bars["mean"]
    figures = [
        export.ExportFigure(
            f"{stem}_stimulus", "Stimulus",
            lambda: export.image_figure(_png_of(image), f"{image_id}"), details,
        ),
        export.ExportFigure(
            f"{stem}_rois", "Predicted (and measured) mean response per ROI",
            lambda: export.bars_figure(bars, "source", "mean response (training z units)",
                                       rois, ["predicted", "measured"], highlight=highlight),
            details,
        ),
        *[ui.map_figure(m, name, subject, highlight, ds.simulated, details) for m in maps],
    ]  # fmt: skip
    ui.export_panel("ex", figures, {"page": "Explore", "dataset": name,
                                    "simulated": ds.simulated, "subject": subject,
                                    "model": model, "instruction": instruction,
                                    "layer": int(enc_layer), **ui.grid_context(name)})
