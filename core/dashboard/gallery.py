"""The Explore page's image picker: the dataset gallery and uploads, without streamlit.

- which stimulus ids match id ranges, known-content filters and free text
  (:func:`filter_gallery`, :func:`content_filters`), and the one it opens on
  (:func:`default_stimulus`, a held-out test image);
- one image's caption, known content and reference answer (:func:`stimulus_caption`,
  :func:`known_content`, :func:`reference_answer`);
- an uploaded file decoded safely, with notes on what was done to it (:func:`read_upload`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def filter_gallery(
    attributes: pd.DataFrame | None,
    ids: np.ndarray,
    id_text: str = "",
    content: dict[str, list] | None = None,
    text: str = "",
    split_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Stimulus ids matching the filters.

    Parameters
    ----------
    attributes : DataFrame or None
        Known content per image (index = stimulus id).
    ids : array of int
        All stimulus ids.
    id_text : str
        Ids and ranges, e.g. ``"3, 10-20"``; empty = all.
    content : dict of column -> accepted values, optional
        Exact matches on attribute columns (e.g. ``{"environment": ["street"]}``).
    text : str
        Case-insensitive substring searched in every text column of the attributes.
    split_ids : array of int, optional
        Keep only these ids (e.g. a subject's test images).
    """
    keep = pd.Index(np.asarray(ids, dtype=np.int64))
    if id_text.strip():
        wanted: set[int] = set()
        for part in id_text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                if lo.strip().isdigit() and hi.strip().isdigit():
                    wanted.update(range(int(lo), int(hi) + 1))
            elif part.isdigit():
                wanted.add(int(part))
        keep = keep[keep.isin(list(wanted))]
    if split_ids is not None:
        keep = keep[keep.isin(np.asarray(split_ids))]
    if attributes is not None and (content or text.strip()):
        attrs = attributes.reindex(keep)
        ok = np.ones(len(attrs), bool)
        for col, values in (content or {}).items():
            if values and col in attrs:
                ok &= attrs[col].isin(values).to_numpy()
        if text.strip():
            needle = text.strip().lower()
            hit = np.zeros(len(attrs), bool)
            for col in attrs.columns:
                if attrs[col].dtype == object or str(attrs[col].dtype).startswith("str"):
                    hit |= attrs[col].astype(str).str.lower().str.contains(needle, regex=False)
            ok &= hit
        keep = keep[ok]
    return keep.to_numpy()


def default_stimulus(ids: np.ndarray, test_ids: np.ndarray) -> int | None:
    """The image a gallery opens on: the first of ``ids`` that is one of the subject's held-out
    test images (the encoder never saw it), else the first of ``ids`` (None when empty)."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return None
    held_out = ids[np.isin(ids, np.asarray(test_ids))]
    return int(held_out[0] if held_out.size else ids[0])


def content_filters(attributes: pd.DataFrame | None, max_values: int = 12) -> dict[str, list]:
    """Attribute columns worth a multiselect filter (few distinct values) -> their values."""
    if attributes is None:
        return {}
    out = {}
    for col in attributes.columns:
        series = attributes[col]
        if series.dtype.kind in "fcb" or "__" in col:
            continue
        try:
            values = series.dropna().unique()
        except TypeError:  # unhashable (lists)
            continue
        if 1 < len(values) <= max_values:
            vals = values.tolist()
            numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in vals)
            out[col] = sorted(vals) if numeric else sorted(vals, key=str)
    return out


def stimulus_caption(attributes: pd.DataFrame | None, stimulus_id: int) -> str:
    """A one-line label of a stimulus for pickers, e.g. ``"#12 · street · 2 people"``."""
    sid = int(stimulus_id)
    if attributes is None or sid not in attributes.index:
        return f"#{sid}"
    row = attributes.loc[sid]
    parts = [f"#{sid}"]
    if "environment" in row:
        parts.append(str(row["environment"]))
    for col, unit in (("n_people", "people"), ("n_animals", "animals")):
        if col in row and int(row[col]) > 0:
            parts.append(f"{int(row[col])} {unit}")
    if "foods" in row and str(row["foods"]).strip():
        parts.append(str(row["foods"]))
    return " · ".join(parts)


def known_content(attributes: pd.DataFrame, stimulus_id: int) -> pd.DataFrame:
    """The known content of one image as a two-column table (empty and zero counts dropped)."""
    row = attributes.loc[int(stimulus_id)]
    out = []
    for col, value in row.items():
        if col.startswith("action__"):
            if int(value) > 0:
                out.append({"property": f"people {col[8:]}", "value": str(int(value))})
            continue
        if isinstance(value, float):
            value = f"{value:.2f}"
        if str(value).strip() == "":
            continue
        out.append({"property": col.replace("_", " "), "value": str(value)})
    return pd.DataFrame(out)


def reference_answer(answers: pd.DataFrame | None, stimulus_id: int, instruction_id: str) -> str:
    """The dataset's reference answer to a paper instruction for one image ('' if none)."""
    if answers is None or answers.empty:
        return ""
    sel = answers[
        (answers["stimulus_id"] == int(stimulus_id)) & (answers["instruction_id"] == instruction_id)
    ]
    return str(sel["answer"].iloc[0]) if len(sel) else ""


@dataclass
class Upload:
    """A sanitised upload: the RGB image, a stable identity and notes for the user."""

    image: object
    image_id: str
    notes: list[str]


#: Extensions accepted without a note, per Pillow format.
_EXTENSIONS = {
    "PNG": {"png"}, "JPEG": {"jpg", "jpeg", "jpe", "jfif"}, "WEBP": {"webp"}, "GIF": {"gif"},
    "BMP": {"bmp", "dib"}, "TIFF": {"tif", "tiff"}, "PPM": {"ppm", "pgm", "pbm", "pnm"},
    "ICO": {"ico"}, "MPO": {"jpg", "jpeg", "mpo"},
}  # fmt: skip


def read_upload(filename: str, data: bytes) -> Upload:
    """Decode an uploaded file with :func:`core.data.images.load_image_bytes` and explain what
    was done to it (animated: first frame; 16-bit: rescaled; extension not matching the content;
    turned upright by its EXIF orientation; downscaled; an extreme strip padded).

    Every geometry is accepted: an image longer than :data:`~core.data.images.MAX_ASPECT` times
    its short side (e.g. 5000 x 3) is padded with white (centred, nothing cropped) so that model
    processors and previews get a usable shape.

    Raises
    ------
    ImageInputError
        Empty, too large (bytes or pixels), truncated, corrupt or not an image.
    """
    import io

    from PIL import Image

    from core.data.images import (
        MAX_ASPECT,
        ImageInputError,
        exif_orientation,
        load_image_bytes,
        pad_to_aspect,
        upright_size,
    )
    from core.hashing import bytes_digest

    image = load_image_bytes(data)
    notes = []
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, mode, size = probe.format, probe.mode, probe.size
            frames = int(getattr(probe, "n_frames", 1) or 1)
            orientation = exif_orientation(probe)
            upright = upright_size(probe)
    except Exception as exc:  # load_image_bytes accepted it, so this is unexpected
        raise ImageInputError(f"the image cannot be read: {exc}") from exc
    if frames > 1:
        notes.append(f"Animated image ({frames} frames): only the first frame is used.")
    if mode.startswith(("I;16", "I", "F")) and mode not in ("IA",):
        notes.append(f"High bit depth image (mode {mode}): rescaled to 8 bits per channel.")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if fmt and ext not in _EXTENSIONS.get(fmt, {fmt.lower()}):
        notes.append(
            f"The file is named '.{ext or '(none)'}' but contains a {fmt} image; it was read as {fmt}."
        )
    if orientation != 1:
        swap = f": stored {size[0]}×{size[1]}, shown {upright[0]}×{upright[1]}" if upright != size else ""
        notes.append(
            f"Turned upright following its EXIF orientation ({_ORIENTATIONS[orientation]}){swap}."
        )
    if min(upright) < TINY_SIDE:
        notes.append(
            f"Very small image ({upright[0]}×{upright[1]} pixels): the model sees it enlarged "
            "and blurred, so its answer and the predicted responses say little about the "
            "picture (the demo's stimuli are 256 px or more)."
        )
    if image.size != upright:
        notes.append(
            f"Downscaled from {upright[0]}×{upright[1]} to {image.width}×{image.height}."
        )
    padded = pad_to_aspect(image, MAX_ASPECT)
    if padded.size != image.size:
        shape = "wide" if image.width > image.height else "tall"
        notes.append(
            f"Very {shape} image ({image.width}×{image.height}): padded with white to "
            f"{padded.width}×{padded.height} (at most {MAX_ASPECT:g}:1), nothing cropped, so the "
            "model sees it whole."
        )
    return Upload(image=padded, image_id=f"upload:sha256:{bytes_digest(data)}", notes=notes)


#: Uploads with a side below this many pixels get a warning (the model needs some detail).
TINY_SIDE = 32

#: EXIF orientation values, in words.
_ORIENTATIONS = {
    2: "mirrored", 3: "rotated 180°", 4: "mirrored vertically",
    5: "mirrored and rotated 90°", 6: "rotated 90°", 7: "mirrored and rotated 270°",
    8: "rotated 270°",
}  # fmt: skip


def thumbnail_png(dataset, stimulus_id: int, size: int = 160) -> bytes:
    """A PNG thumbnail (longest side ``size`` px) of one stimulus of ``dataset``."""
    import io

    img = dataset.stimuli.load_image(int(stimulus_id)).copy()
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
