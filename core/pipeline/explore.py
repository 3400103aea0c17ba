"""What the dashboard pages show, computed without streamlit.

The app's pages are layout only; everything they display comes from here:

- which encoders exist (:func:`encoder_table`, :func:`find_encoder`) and how to compute a missing
  one in the background (:func:`encoder_job_args`, :func:`compute_encoder`);
- a prediction for one image, instruction, model, layer and subject (:func:`explore_prediction`):
  the (cached) response, the predicted voxel responses, the measured ones for dataset images and
  their ROI means;
- per-target scores of stored fits and partitions (:func:`target_scores`,
  :func:`partition_arrays`), the best instruction per target (:func:`best_instruction_labels`),
  significance stars per ROI (:func:`instruction_stars`);
- the known content of a stimulus set, filtered (:func:`filter_gallery`);
- the state of the home folder (:func:`artifact_status`) and clearing the inference cache
  (:func:`clear_inference_cache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import home
from core.data.dataset import Dataset, DatasetError, SubjectData
from core.pipeline.fits import (
    GENERAL,
    Q_THRESHOLD,
    FitSettings,
    FitSpec,
    fits_dir,
    fits_table,
    roi_masks,
)
from core.storage import ArtifactError, load_npz, read_json

#: The instruction label of image-only baselines in the results table.
IMAGE = "image"


# --------------------------------------------------------------------------- settings and tables


def grid_settings(dataset: str) -> FitSettings:
    """The fit settings of the last grid run on ``dataset`` (defaults when it never ran)."""
    from core.pipeline.grid import results_dir

    try:
        cfg = read_json(results_dir(dataset) / "grid.json")["config"]["settings"]
    except (ArtifactError, KeyError, TypeError):
        return FitSettings()
    known = {f.name for f in fields(FitSettings)}
    return FitSettings(**{k: v for k, v in cfg.items() if k in known})


def results_stamp(dataset: str) -> str:
    """A string that changes whenever the results of ``dataset`` change (for cache keys)."""
    from core.pipeline.grid import results_dir

    folder = results_dir(dataset)
    parts = []
    for name in ("roi_scores.parquet", "partitions.parquet", "grid.json"):
        path = folder / name
        parts.append(f"{name}:{path.stat().st_mtime_ns if path.exists() else 0}")
    fits = fits_dir(dataset)
    parts.append(f"fits:{fits.stat().st_mtime_ns if fits.exists() else 0}")
    return "|".join(parts)


def is_generative(model: str) -> bool:
    """True for models that respond to instructions (not ``vision:`` towers, ViT or CLIP)."""
    from core.pipeline.grid import model_role

    try:
        return model_role(model) in ("mllm", "random init") and ":vision:" not in model
    except Exception:  # unknown or missing model: treat by its name
        return not model.startswith("vision:")


def encoder_table(dataset: str) -> pd.DataFrame:
    """Every stored encoder of ``dataset`` usable for predictions.

    Returns
    -------
    table : DataFrame
        Columns subject, model, instruction (``"image"`` for image-only baselines), layer,
        encoder_key, max_new_tokens; one row per (subject, model, instruction, layer), the most
        recent fit's settings winning when several exist.
    """
    cols = ["subject", "model", "instruction", "layer", "encoder_key", "max_new_tokens"]
    fits = fits_table(dataset)
    if fits.empty or "encoder_key" not in fits:
        return pd.DataFrame(columns=cols)
    fits = fits[fits["encoder_key"].notna()].copy()
    if fits.empty:
        return pd.DataFrame(columns=cols)
    from core.config import subdir

    root = subdir("encoders")
    fits = fits[[(root / k / "manifest.json").exists() for k in fits["encoder_key"]]]
    fits["instruction"] = fits["instruction"].fillna(IMAGE)
    fits["max_new_tokens"] = fits.get("setting_max_new_tokens", 48)
    preferred = grid_settings(dataset).max_new_tokens
    fits["_pref"] = (fits["max_new_tokens"] == preferred).astype(int)
    fits = fits.sort_values("_pref").drop_duplicates(
        ["subject", "model", "instruction", "layer"], keep="last"
    )
    return fits[cols].sort_values(cols[:4]).reset_index(drop=True)


def model_choices(encoders: pd.DataFrame, table: pd.DataFrame, default: str) -> list[str]:
    """Models to offer, most useful first: ``default`` when it has encoders, then MLLMs,
    random-init twins and image-only baselines with encoders, then the rest (``default`` last
    when it has none)."""
    from core.pipeline.grid import model_role

    with_enc = list(dict.fromkeys(encoders["model"])) if not encoders.empty else []
    others = list(dict.fromkeys(table["model"])) if not table.empty else []

    def rank(m: str) -> int:
        try:
            return {"mllm": 0, "random init": 1}.get(model_role(m), 2)
        except Exception:
            return 3

    ordered = sorted(with_enc, key=lambda m: (m != default, rank(m)))
    ordered += sorted((m for m in others if m not in ordered), key=rank)
    if default not in ordered:
        ordered.append(default)
    return ordered


def find_encoder(
    table: pd.DataFrame, subject: str, model: str, instruction: str, layer: int | None = None
) -> dict | None:
    """The row of :func:`encoder_table` for this choice (``layer=None``: the highest layer)."""
    if table.empty:
        return None
    sel = table[
        (table["subject"] == subject)
        & (table["model"] == model)
        & (table["instruction"] == instruction)
    ]
    if layer is not None:
        sel = sel[sel["layer"] == int(layer)]
    if sel.empty:
        return None
    return sel.sort_values("layer").iloc[-1].to_dict()


def encoder_job_name(subject: str, model: str, instruction: str, layer: int) -> str:
    """A job name (letters, digits, dashes) for computing one encoder."""
    from core.hashing import content_key

    key = content_key("encoder-job", {"s": subject, "m": model, "i": instruction, "l": layer})
    return f"encoder-{key[:12]}"


def encoder_job_args(
    dataset: str, subject: str, model: str, instruction: str, layer: int
) -> list[str]:
    """``python -m core`` arguments that extract (if needed) and fit one encoder, keeping it."""
    s = grid_settings(dataset)
    args = ["encoder", "--dataset", dataset, "--subject", subject, "--model", model]
    if instruction != IMAGE:
        args += ["--instruction", instruction]
    args += [
        "--layer", str(int(layer)), "--alphas", s.alphas, "--folds", str(s.cv),
        "--solver", s.solver, "--backend", s.backend, "--permutations", str(s.n_permutations),
        "--max-new-tokens", str(s.max_new_tokens),
    ]  # fmt: skip
    return args


def compute_encoder(
    dataset: str,
    subject: str,
    model: str,
    instruction: str | None,
    layer: int,
    settings: FitSettings,
    progress: bool = True,
) -> list[dict]:
    """Extract the embeddings of one model x instruction (resumable) and fit one encoder, kept.

    Returns the fit's ROI rows (see :func:`core.pipeline.fits.run_fit`).
    """
    from core.data.registry import open_dataset
    from core.features.extract import extract_model
    from core.features.infer import get_adapter
    from core.models.instructions import resolve_instruction
    from core.pipeline.fits import run_fit

    ds = open_dataset(dataset)
    adapter = get_adapter(model)
    ins = None if instruction in (None, IMAGE) else resolve_instruction(instruction)
    extract_model(ds, adapter, [ins] if ins else [], settings.generation_options(), progress=progress)
    spec = FitSpec(dataset, subject, model, ins.id if ins else None, int(layer))
    return run_fit(ds, spec, settings, keep_encoder=True)


# --------------------------------------------------------------------------- explore: prediction


@dataclass
class ExplorePrediction:
    """What the Explore page shows for one image x instruction x model x layer x subject.

    Attributes
    ----------
    text : str
        The generated response (empty for image-only models).
    seconds : float
        Compute time of the inference (of the original run when cached).
    from_cache : bool
    n_tokens : int
    predicted : array of shape (n_targets,), float32
        Predicted responses in the training z units of each target.
    measured : array of shape (n_targets,) or None
        The subject's measured (repetition-averaged) response to a dataset image, in the same z
        units; None for uploads or images the subject did not see.
    split : str or None
        ``"train"`` or ``"test"`` for a dataset image the subject saw.
    rois : DataFrame
        Per ROI: roi, n_targets, predicted, measured (mean over targets), r (prediction vs
        measurement across the ROI's targets).
    encoder : dict
        The encoder row used (subject, model, instruction, layer, encoder_key, max_new_tokens).
    """

    text: str
    seconds: float
    from_cache: bool
    n_tokens: int
    predicted: np.ndarray
    measured: np.ndarray | None
    split: str | None
    rois: pd.DataFrame
    encoder: dict = field(default_factory=dict)


def run_inference(
    model: str,
    image,
    instruction: str,
    image_id: str | None,
    max_new_tokens: int = 48,
):
    """Cached live inference (see :func:`core.features.infer.infer`) with the fit's budget."""
    from core.features.infer import infer
    from core.models.adapters import GenerationOptions

    if not is_generative(model):
        instruction = IMAGE
    return infer(
        model,
        image,
        instruction,
        image_id=image_id,
        options=GenerationOptions(max_new_tokens=int(max_new_tokens)),
    )


def measured_response(
    subject: SubjectData, stimulus_id: int, y_mean: np.ndarray, y_scale: np.ndarray
) -> tuple[np.ndarray | None, str | None]:
    """The subject's response to a stimulus in an encoder's z units, and its split."""
    hit = np.flatnonzero(subject.stimulus_ids == int(stimulus_id))
    if hit.size == 0:
        return None, None
    row = int(hit[0])
    y = subject.responses[row].astype(np.float64)
    z = (y - y_mean) / np.where(y_scale > 0, y_scale, 1.0)
    return z.astype(np.float32), ("test" if subject.is_test[row] else "train")


def roi_means(
    masks: dict[str, np.ndarray], predicted: np.ndarray, measured: np.ndarray | None
) -> pd.DataFrame:
    """Per ROI mean predicted (and measured) response, and their correlation across targets."""
    rows = []
    for roi, mask in masks.items():
        row = {"roi": roi, "n_targets": int(mask.sum()), "predicted": float(predicted[mask].mean())}
        if measured is not None:
            row["measured"] = float(measured[mask].mean())
            p, m = predicted[mask], measured[mask]
            ok = p.std() > 0 and m.std() > 0
            row["r"] = float(np.corrcoef(p, m)[0, 1]) if ok else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def explore_prediction(
    dataset: Dataset,
    subject: str,
    encoder_row: dict,
    image,
    instruction: str,
    *,
    image_id: str | None = None,
    stimulus_id: int | None = None,
    encoder=None,
) -> ExplorePrediction:
    """Run (or load) the inference and predict the subject's responses with a stored encoder.

    Parameters
    ----------
    dataset : Dataset
    subject : str
    encoder_row : dict
        A row of :func:`encoder_table`.
    image : PIL image or bytes
    instruction : str
        Paper id or free text (ignored by image-only models).
    image_id : str, optional
        Stable identity for the cache (e.g. ``"demo:17"``, ``"upload:<sha256>"``).
    stimulus_id : int, optional
        For dataset images: the measured response is returned beside the prediction.
    encoder : StoredEncoder, optional
        Already loaded (the app caches it); loaded from ``encoder_row`` otherwise.
    """
    from core.encoding.store import load_encoder

    enc = encoder if encoder is not None else load_encoder(encoder_row["encoder_key"])
    result = run_inference(
        encoder_row["model"], image, instruction, image_id, encoder_row.get("max_new_tokens", 48)
    )
    subj = dataset.subject(subject)
    features = result.layer(int(encoder_row["layer"]))
    predicted = enc.predict(features, subject=subject).z[0]
    measured, split = (None, None)
    if stimulus_id is not None:
        measured, split = measured_response(
            subj, stimulus_id, enc.arrays["y_mean"], enc.arrays["y_scale"]
        )
    return ExplorePrediction(
        text=result.text,
        seconds=float(result.seconds),
        from_cache=bool(result.from_cache),
        n_tokens=int(result.n_tokens),
        predicted=predicted,
        measured=measured,
        split=split,
        rois=roi_means(roi_masks(subj), predicted, measured),
        encoder=dict(encoder_row),
    )


# --------------------------------------------------------------------------- gallery


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


def resolve_id(instruction: str) -> str:
    """The id of an instruction given as a paper id or free text (``free-<hash8>``)."""
    from core.models.instructions import resolve_instruction

    return resolve_instruction(instruction).id


def default_layer(table: pd.DataFrame, model: str) -> int | None:
    """The layer to fit a missing encoder at: the model's last layer in the results table, or
    None when the table has no row of that model."""
    if table.empty or model not in set(table["model"]):
        return None
    return int(table.loc[table["model"] == model, "layer"].max())


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
    downscaled).

    Raises
    ------
    ImageInputError
        Empty, too large (bytes or pixels), truncated, corrupt or not an image.
    """
    import io

    from PIL import Image

    from core.data.images import ImageInputError, load_image_bytes
    from core.hashing import bytes_digest

    image = load_image_bytes(data)
    notes = []
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt, mode, size = probe.format, probe.mode, probe.size
            frames = int(getattr(probe, "n_frames", 1) or 1)
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
    if image.size != size:
        notes.append(f"Downscaled from {size[0]}×{size[1]} to {image.width}×{image.height}.")
    return Upload(image=image, image_id=f"upload:sha256:{bytes_digest(data)}", notes=notes)


# --------------------------------------------------------------------------- per-target results


def target_scores(
    dataset: str, subject: str, model: str, instruction: str, layer: int
) -> dict[str, np.ndarray]:
    """Per-target scores (r, r2, nalign, nalign_var, nc, p, q, best_alpha) of one stored fit,
    with the last grid run's settings.

    Raises
    ------
    ArtifactError
        When that fit is not stored.
    """
    spec = FitSpec(dataset, subject, model, None if instruction == IMAGE else instruction, int(layer))
    return load_npz(fits_dir(dataset) / f"{spec.key(grid_settings(dataset))}.npz")


def best_instruction_labels(
    dataset: str,
    subject: str,
    model: str,
    layer: int,
    instructions: list[str],
    q_threshold: float = Q_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Per target, which instruction predicts it best (highest test r).

    Returns
    -------
    labels : array of shape (n_targets,), int
        Index into ``instructions``; -1 where the best fit is not significant (q >= threshold)
        or no fit is stored.
    best_r : array of shape (n_targets,), float32
    """
    rs, qs = [], []
    for ins in instructions:
        s = target_scores(dataset, subject, model, ins, layer)
        rs.append(s["r"])
        qs.append(s["q"])
    r = np.vstack(rs)
    q = np.vstack(qs)
    r_filled = np.where(np.isfinite(r), r, -np.inf)
    best = np.argmax(r_filled, axis=0)
    cols = np.arange(r.shape[1])
    best_q = q[best, cols]
    labels = np.where((best_q < q_threshold) & np.isfinite(r[best, cols]), best, -1)
    return labels.astype(np.int64), r[best, cols].astype(np.float32)


def label_counts(labels: np.ndarray, names: list[str]) -> pd.DataFrame:
    """How many targets each category (instruction) wins; -1 labels are not counted."""
    labels = np.asarray(labels)
    n = [int((labels == i).sum()) for i in range(len(names))]
    total = max(sum(n), 1)
    return pd.DataFrame(
        {"instruction": names, "targets": n, "share": [round(k / total, 3) for k in n]}
    )


def instruction_stars(
    table: pd.DataFrame,
    model: str,
    layer: int,
    reference: str,
    value: str = "nalign_mean",
    across: str = "subjects",
    dataset: str | None = None,
    subjects: list[str] | None = None,
) -> pd.DataFrame:
    """Significance of each instruction against ``reference``, per ROI.

    Parameters
    ----------
    table : DataFrame
        The ROI results table.
    across : {"subjects", "targets"}
        ``"subjects"``: paired test of the per-subject ROI means (needs >= 2 subjects);
        ``"targets"``: paired test over the targets of each ROI (per-target normalised
        alignment, targets of all chosen subjects pooled; needs ``dataset``).

    Returns
    -------
    DataFrame with columns roi, instruction, p, q, stars (FDR across ROIs, per instruction).
    """
    from core.encoding.significance import compare_rois

    sub = table[(table["model"] == model) & (table["layer"] == int(layer))]
    if subjects:
        sub = sub[sub["subject"].isin(subjects)]
    rois = list(dict.fromkeys(sub["roi"]))
    others = [i for i in dict.fromkeys(sub["instruction"]) if i != reference]
    out = []
    for ins in others:
        if across == "subjects":
            a, b = {}, {}
            for roi in rois:
                va = sub[(sub["instruction"] == ins) & (sub["roi"] == roi)].set_index("subject")
                vb = sub[(sub["instruction"] == reference) & (sub["roi"] == roi)]
                vb = vb.set_index("subject")
                common = va.index.intersection(vb.index)
                x, y = va.loc[common, value].to_numpy(), vb.loc[common, value].to_numpy()
                ok = np.isfinite(x) & np.isfinite(y)
                if ok.sum() >= 2:
                    a[roi], b[roi] = x[ok], y[ok]
        else:
            if dataset is None:
                raise ValueError("across='targets' needs the dataset name")
            a, b = _pooled_target_values(dataset, sub, model, layer, ins, reference, rois)
        if not a:
            continue
        res = compare_rois(a, b)
        res["instruction"] = ins
        out.append(res[["roi", "instruction", "p", "q", "stars"]])
    if not out:
        return pd.DataFrame(columns=["roi", "instruction", "p", "q", "stars"])
    return pd.concat(out, ignore_index=True)


def _pooled_target_values(dataset, sub, model, layer, ins, reference, rois):
    from core.data.registry import open_dataset

    ds = open_dataset(dataset)
    a: dict[str, list] = {}
    b: dict[str, list] = {}
    for subject in sorted(sub["subject"].unique()):
        try:
            sa = target_scores(dataset, subject, model, ins, layer)["nalign"]
            sb = target_scores(dataset, subject, model, reference, layer)["nalign"]
        except ArtifactError:
            continue
        masks = roi_masks(ds.subject(subject))
        for roi in rois:
            if roi not in masks:
                continue
            m = masks[roi] & np.isfinite(sa) & np.isfinite(sb)
            a.setdefault(roi, []).append(sa[m])
            b.setdefault(roi, []).append(sb[m])
    ca = {r: np.concatenate(v) for r, v in a.items()}
    cb = {r: np.concatenate(b[r]) for r in a}
    keep = [r for r in ca if ca[r].size >= 2]
    return {r: ca[r] for r in keep}, {r: cb[r] for r in keep}


def partition_arrays(
    dataset: str, subject: str, model: str, a: str, b: str
) -> dict[str, np.ndarray] | None:
    """Per-target variance parts (unique_a, shared, unique_b, r2_a, r2_b, r2_ab) of a stored
    partition, or None."""
    from core.pipeline.partitions import partitions_dir

    for path in sorted(partitions_dir(dataset).glob("*.json")):
        try:
            spec = read_json(path)["spec"]
        except (ArtifactError, KeyError):
            continue
        if (spec["subject"], spec["model"], spec["a"], spec["b"]) == (subject, model, a, b):
            try:
                return load_npz(path.with_suffix(".npz"))
            except ArtifactError:
                return None
    return None


def partition_job_args(dataset: str, model: str, a: str, b: str) -> list[str]:
    """``python -m core`` arguments that compute a new instruction pair's partition."""
    s = grid_settings(dataset)
    return [
        "partition", "--dataset", dataset, "--model", model, "--a", a, "--b", b,
        "--alphas", s.alphas, "--backend", s.backend, "--max-new-tokens", str(s.max_new_tokens),
    ]  # fmt: skip


def compute_partition(
    dataset: str, model: str, a: str, b: str, settings: FitSettings, progress: bool = True
) -> pd.DataFrame:
    """Extract what is missing and partition one instruction pair for every subject; the new
    rows are merged into ``partitions.parquet`` (replacing any earlier rows of that pair)."""
    from core.data.registry import open_dataset
    from core.features.extract import extract_model
    from core.features.infer import get_adapter
    from core.models.instructions import resolve_instruction
    from core.pipeline.grid import _write_table, results_dir
    from core.pipeline.partitions import (
        PartitionSpec,
        load_partition_table,
        partition_rows,
        run_partition,
    )

    ds = open_dataset(dataset)
    adapter = get_adapter(model)
    ins = [resolve_instruction(a), resolve_instruction(b)]
    extract_model(ds, adapter, ins, settings.generation_options(), progress=progress)
    layer = adapter.n_hidden_states - 1
    rows = []
    for subject in ds.subject_names:
        spec = PartitionSpec(dataset, subject, model, ins[0].id, ins[1].id, layer)
        arrays = run_partition(ds, spec, settings)
        rows.extend(partition_rows(spec, arrays, roi_masks(ds.subject(subject))))
    new = pd.DataFrame(rows)
    old = load_partition_table(dataset)
    if not old.empty:
        same = (old["model"] == model) & (old["a"] == ins[0].id) & (old["b"] == ins[1].id)
        new = pd.concat([old[~same], new], ignore_index=True)
    _write_table(new, results_dir(dataset) / "partitions")
    return new


def partition_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over subjects of each variance part per ROI (rows of ``partitions.parquet``)."""
    from core.pipeline.partitions import PARTS

    rois = list(dict.fromkeys(table["roi"]))
    out = table.groupby("roi", sort=False)[list(PARTS)].mean().reindex(rois).reset_index()
    out.insert(1, "n_subjects", table.groupby("roi", sort=False)["subject"].nunique().to_numpy())
    return out


def partition_long(means: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Long table (roi, part, value) for :func:`core.viz.charts.partition_bars`."""
    names = {"unique_a": f"unique {a}", "shared": "shared", "unique_b": f"unique {b}"}
    long = means.melt(id_vars=["roi"], value_vars=list(names), var_name="part", value_name="value")
    long["part"] = long["part"].map(names)
    return long


def slug(text: str) -> str:
    """Letters, digits and dashes only (for job names and file names)."""
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def model_comparison(table: pd.DataFrame, layer_mode: str, instruction_mode: str) -> pd.DataFrame:
    """One row per subject x model x ROI for the models-and-baselines chart.

    Parameters
    ----------
    table : DataFrame
        The ROI results table.
    layer_mode : {"best per model", "last"}
        Best: the layer with the highest mean normalised alignment in the general mask.
    instruction_mode : str
        ``"mean over instructions"``, ``"best instruction per ROI"`` or an instruction id
        (image-only baselines always use their single ``"image"`` row).
    """
    from core.pipeline.grid import best_layers

    if table.empty:
        return table
    if layer_mode == "last":
        layers = table.groupby("model")["layer"].max().to_dict()
    else:
        layers = best_layers(table)
    sel = table[table["layer"] == table["model"].map(layers)]
    sel = _pick_instruction(sel, instruction_mode)
    return sel


def _pick_instruction(sel: pd.DataFrame, instruction_mode: str) -> pd.DataFrame:
    keys = ["subject", "model", "layer", "roi"]
    if instruction_mode == "mean over instructions":
        return sel.groupby(keys, sort=False)[["nalign_mean", "r_mean"]].mean().reset_index()
    if instruction_mode == "best instruction per ROI":
        mean = sel.groupby(["model", "roi", "instruction"])["nalign_mean"].mean().reset_index()
        best = mean.loc[mean.groupby(["model", "roi"])["nalign_mean"].idxmax()]
        merged = sel.merge(best[["model", "roi", "instruction"]], on=["model", "roi", "instruction"])
        return merged[[*keys, "instruction", "nalign_mean", "r_mean"]]
    own = sel[(sel["instruction"] == instruction_mode) | (sel["instruction"] == IMAGE)]
    return own[[*keys, "nalign_mean", "r_mean"]]


def model_layers_used(rows: pd.DataFrame) -> pd.DataFrame:
    """(model, layer) pairs used in a :func:`model_comparison` table."""
    return rows.groupby("model", sort=False)["layer"].first().reset_index()


def layer_rows(table: pd.DataFrame, instruction_mode: str) -> pd.DataFrame:
    """Per subject x model x layer x ROI rows for layer curves (instructions combined as in
    :func:`model_comparison`; "best instruction per ROI" is taken at each layer)."""
    if table.empty:
        return table
    return _pick_instruction(table, instruction_mode)


def datasets_frame(entries: dict[str, dict]) -> pd.DataFrame:
    """The configured datasets as a table (name, kind, path, simulated)."""
    return pd.DataFrame(
        [
            {"name": n, "kind": e["kind"], "simulated": e["kind"] == "demo",
             "path": e.get("path") or "(built into <home>/datasets/demo)"}
            for n, e in entries.items()
        ]
    )  # fmt: skip


def grid_job_args(
    dataset: str,
    models: list[str],
    instructions: list[str],
    permutations: int,
    max_new_tokens: int,
    subjects: list[str] | None = None,
) -> list[str]:
    """``python -m core run`` arguments for the grid (resumable)."""
    args = ["run", "--dataset", dataset]
    if models:
        args += ["--models", *models]
    if instructions:
        args += ["--instructions", *instructions]
    if subjects:
        args += ["--subjects", *subjects]
    args += ["--permutations", str(int(permutations)), "--max-new-tokens", str(int(max_new_tokens))]
    return args


def jobs_frame() -> pd.DataFrame:
    """Every background job with its state, start time and duration."""
    import time as _time

    from core.config import subdir
    from core.pipeline.jobs import job_status

    rows = []
    for folder in sorted(subdir("jobs").iterdir()):
        if not folder.is_dir():
            continue
        try:
            st = job_status(folder.name)
        except ValueError:
            continue
        if st.state == "absent":
            continue
        end = st.finished or _time.time()
        rows.append(
            {
                "job": st.name,
                "state": st.state,
                "started": pd.Timestamp(st.started, unit="s").strftime("%Y-%m-%d %H:%M:%S")
                if st.started
                else "",
                "seconds": round(end - st.started, 1) if st.started else None,
                "command": "python -m core " + " ".join(st.argv),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- status and cache


def folder_size(path: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``path`` (0, 0 when absent)."""
    n = size = 0
    if not path.exists():
        return 0, 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                n += 1
                size += p.stat().st_size
        except OSError:
            continue
    return n, size


def artifact_status() -> pd.DataFrame:
    """What the BrainPrompt home holds: one row per kind of artifact with files and bytes."""
    root = home()
    kinds = [
        ("datasets", "built datasets (the demo world)"),
        ("features", "response-embedding shards"),
        ("encoders", "fitted encoders kept for predictions"),
        ("results", "fit scores, results tables, partitions"),
        ("cache/inference", "live-inference cache"),
        ("flatmaps", "flatmap rasters"),
        ("jobs", "background job status and logs"),
    ]
    rows = []
    for rel, what in kinds:
        n, size = folder_size(root / rel)
        rows.append(
            {"artifact": rel, "what": what, "files": n, "MB": round(size / 2**20, 2),
             "path": str(root / rel)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def inference_cache_entries() -> int:
    """Number of entries in the live-inference cache."""
    from core.features.infer import default_cache

    return len(default_cache())


def clear_inference_cache() -> int:
    """Remove every live-inference cache entry; returns how many were removed."""
    from core.features.infer import default_cache

    return default_cache().clear()


def validation_report(name: str) -> pd.DataFrame | None:
    """The validation report of a configured real dataset (None for the demo)."""
    from core.data.registry import configured

    entry = configured().get(name)
    if entry is None or entry["kind"] == "demo":
        return None
    if entry["kind"] == "nsd":
        from core.data.nsd_validate import validate_nsd

        return validate_nsd(entry["path"]).to_frame()
    from core.data.algonauts import validate_algonauts

    return validate_algonauts(entry["path"]).to_frame()


def describe_dataset(ds: Dataset) -> dict:
    """A few numbers about a dataset for a header (images, subjects, simulated)."""
    return {
        "name": ds.name,
        "kind": ds.kind,
        "simulated": bool(ds.simulated),
        "n_images": int(len(ds.stimuli.ids)),
        "subjects": list(ds.subject_names),
    }


__all__ = [
    "GENERAL",
    "IMAGE",
    "DatasetError",
    "ExplorePrediction",
    "artifact_status",
    "best_instruction_labels",
    "clear_inference_cache",
    "compute_encoder",
    "compute_partition",
    "content_filters",
    "describe_dataset",
    "encoder_job_args",
    "encoder_job_name",
    "encoder_table",
    "explore_prediction",
    "filter_gallery",
    "find_encoder",
    "grid_settings",
    "inference_cache_entries",
    "instruction_stars",
    "partition_arrays",
    "partition_job_args",
    "results_stamp",
    "target_scores",
    "validation_report",
]
