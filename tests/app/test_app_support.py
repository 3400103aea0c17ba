"""The page-support functions in core (no streamlit): gallery filters, uploads, encoders,
significance, model comparison, downloads, ROI picks, cache clearing."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.dashboard import (
    dashboard_jobs,
    gallery,
    home_status,
    prediction,
    stored_encoders,
)
from core.data.images import ImageInputError
from core.results import views as result_views
from core.viz import views


def test_filter_gallery_ids_content_and_text():
    attrs = pd.DataFrame(
        {"environment": ["street", "indoor", "street", "outdoor"],
         "objects": ["ball", "chair", "bicycle ball", ""]},
        index=pd.Index([0, 1, 2, 3], name="stimulus_id"),
    )  # fmt: skip
    ids = np.arange(4)
    assert gallery.filter_gallery(attrs, ids, "1-2, 3").tolist() == [1, 2, 3]
    assert gallery.filter_gallery(attrs, ids, "", {"environment": ["street"]}).tolist() == [0, 2]
    assert gallery.filter_gallery(attrs, ids, "", None, "BALL").tolist() == [0, 2]
    assert gallery.filter_gallery(attrs, ids, "", None, "", split_ids=[3]).tolist() == [3]
    assert gallery.filter_gallery(None, ids, "x, 2").tolist() == [2]
    assert gallery.content_filters(attrs) == {"environment": ["indoor", "outdoor", "street"],
                                              "objects": ["", "ball", "bicycle ball", "chair"]}


def test_read_upload_notes_and_errors():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3000, 100), "red").save(buf, format="JPEG")
    up = gallery.read_upload("wide.jpeg", buf.getvalue())
    assert up.image.mode == "RGB" and max(up.image.size) == 2048
    assert any("Downscaled" in n for n in up.notes)
    assert up.image_id.startswith("upload:sha256:")
    with pytest.raises(ImageInputError):
        gallery.read_upload("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)


def test_encoders_and_prediction(tiny_grid, demo_small):
    table = stored_encoders.encoder_table("demo")
    assert {"tiny-llava", "vision:tiny-llava"} <= set(table["model"])
    assert set(table.loc[table["model"] == "vision:tiny-llava", "instruction"]) == {"image"}
    row = stored_encoders.find_encoder(table, "subj01", "tiny-llava", "IC")
    own = table[(table["subject"] == "subj01") & (table["model"] == "tiny-llava")
                & (table["instruction"] == "IC")]
    assert row is not None and row["layer"] == own["layer"].max()  # the highest stored layer
    assert stored_encoders.find_encoder(table, "subj01", "tiny-llava", "VR") is None
    sid = int(demo_small.subject("subj01").test_ids[0])
    img = demo_small.stimuli.load_image(sid)
    pred = prediction.explore_prediction(
        demo_small, "subj01", row, img, "IC", image_id=f"demo:{sid}", stimulus_id=sid
    )
    n = demo_small.subject("subj01").n_targets
    assert pred.predicted.shape == (n,) and pred.measured.shape == (n,)
    assert pred.split == "test"
    assert {"roi", "predicted", "measured", "r"} <= set(pred.rois.columns)
    again = prediction.explore_prediction(
        demo_small, "subj01", row, img, "IC", image_id=f"demo:{sid}", stimulus_id=sid
    )
    assert again.from_cache and np.allclose(again.predicted, pred.predicted)
    # image-only baseline: no text, prediction still works
    vrow = stored_encoders.find_encoder(table, "subj01", "vision:tiny-llava", "image")
    vpred = prediction.explore_prediction(demo_small, "subj01", vrow, img, "IC")
    assert vpred.text == "" and np.isfinite(vpred.predicted).all()


def test_encoder_job_args_parse(tiny_grid):
    from core.pipeline.cli import build_parser

    args = dashboard_jobs.encoder_job_args("demo", "subj01", "tiny-llava", "VR", 2)
    ns = build_parser().parse_args(args)
    assert (ns.subject, ns.model, ns.instruction, ns.layer) == ("subj01", "tiny-llava", "VR", 2)
    assert ns.max_new_tokens == 6 and ns.permutations == 50  # the grid's own settings
    ns = build_parser().parse_args(
        dashboard_jobs.partition_job_args("demo", "tiny-llava", "IC", "IU2")
    )
    assert (ns.a, ns.b) == ("IC", "IU2")
    ns = build_parser().parse_args(
        dashboard_jobs.grid_job_args("demo", ["m"], ["IC"], 10, 6, ["subj01"])
    )
    assert ns.models == ["m"] and ns.subjects == ["subj01"]


def test_stars_best_instruction_and_model_comparison(tiny_grid):
    from core.results.tables import load_roi_table

    table = load_roi_table("demo")
    layer = int(table["layer"].max())
    subj = result_views.instruction_stars(table, "tiny-llava", layer, "IC", across="subjects")
    assert set(subj["instruction"]) == {"IU1"}
    targ = result_views.instruction_stars(
        table, "tiny-llava", layer, "IC", across="targets", dataset="demo"
    )
    # pooled targets are descriptive: a difference, no p-value and no stars
    assert targ["descriptive"].all() and targ["p"].isna().all() and set(targ["stars"]) == {""}
    assert np.allclose(targ["difference"], targ["mean_a"] - targ["mean_b"])
    labels, best_r = result_views.best_instruction_labels(
        "demo", "subj01", "tiny-llava", layer, ["IU1", "IC"], q_threshold=1.01
    )
    assert labels.min() >= 0 and labels.max() <= 1 and best_r.shape == labels.shape
    counts = result_views.label_counts(labels, ["IU1", "IC"])
    assert counts["targets"].sum() == labels.size
    for mode in ("mean over instructions", "best instruction per ROI", "IC"):
        rows = result_views.model_comparison(table, "best per model", mode)
        assert rows.groupby(["subject", "model", "roi"]).size().max() == 1
        assert set(rows["model"]) == set(table["model"])
    assert result_views.partition_arrays("demo", "subj01", "tiny-llava", "IC", "IU1") is not None
    assert result_views.partition_arrays("demo", "subj01", "tiny-llava", "VR", "IU1") is None


def test_downloads_and_roi_pick():
    data = views.npz_bytes(a=np.arange(3.0), names=np.array(["x", "y"]))
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        assert z["names"].tolist() == ["x", "y"]
    with pytest.raises(TypeError):
        views.npz_bytes(bad=np.array([{}], dtype=object))
    df = pd.DataFrame({"roi": ["V1"], "mean": [0.5]})
    assert pd.read_parquet(io.BytesIO(views.table_bytes(df, "parquet"))).equals(df)
    assert views.table_bytes(df, "csv").startswith(b"roi,mean")
    event = {"selection": {"roi_pick": [{"roi": "FFA"}]}}
    assert views.selected_roi(event, ["V1", "FFA"]) == "FFA"
    assert views.selected_roi({"selection": {"roi_pick": []}}, ["FFA"]) is None
    assert views.selected_roi({"selection": {"roi_pick": [{"roi": "X"}]}}, ["FFA"]) is None


def test_status_and_cache_clear(tiny_grid):
    status = home_status.artifact_status()
    assert {"datasets", "encoders", "results", "cache/inference"} <= set(status["artifact"])
    assert status.loc[status["artifact"] == "encoders", "files"].iloc[0] > 0
    home_status.clear_inference_cache()
    assert home_status.inference_cache_entries() == 0
    assert home_status.datasets_frame({"demo": {"kind": "demo", "path": None}})["simulated"].all()


def test_the_copy_link_button_needs_no_emoji_font():
    """The button lives in an iframe with the browser's fonts only: its labels are plain text
    (an emoji such as 🔗 shows as a missing-glyph box where no emoji font is installed)."""
    from pages.ui.links import _COPY_LINK_HTML

    assert "Copy link to this view" in _COPY_LINK_HTML
    assert all(ord(ch) < 0x2000 for ch in _COPY_LINK_HTML), "a symbol outside common fonts"
