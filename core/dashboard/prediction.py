"""The Explore page's prediction for one image x instruction x model x layer x subject, without
streamlit (:func:`explore_prediction`): the (cached) response of live inference
(:func:`run_inference`), the responses a stored encoder predicts from its embedding, the measured
ones for dataset images (:func:`measured_response`) and their ROI means (:func:`roi_means`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data.dataset import Dataset, SubjectData
from core.data.rois import roi_masks
from core.models.roles import is_generative
from core.results.fit import IMAGE


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
