"""The stored encoders the app predicts with, without streamlit: which exist for a dataset
(:func:`encoder_table`), the one for a choice (:func:`find_encoder`), the models to offer
(:func:`model_choices`) and the layer to fit a missing one at (:func:`default_layer`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.models.roles import model_role
from core.results.fit import IMAGE, fits_table
from core.results.tables import grid_settings


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
    fits = fits[current_provenance(dataset, fits)]
    if fits.empty:
        return pd.DataFrame(columns=cols)
    preferred = grid_settings(dataset).max_new_tokens
    fits["_pref"] = (fits["max_new_tokens"] == preferred).astype(int)
    fits = fits.sort_values("_pref").drop_duplicates(
        ["subject", "model", "instruction", "layer"], keep="last"
    )
    return fits[cols].sort_values(cols[:4]).reset_index(drop=True)


def current_provenance(dataset: str, fits: pd.DataFrame) -> np.ndarray:
    """Which fits (rows of :func:`core.results.fit.fits_table`) were made from the dataset's
    current content and the model's current weights: their subject key is the subject's and
    their features key is what the model would extract now with the fit's token budget.

    Returns
    -------
    ok : array of shape (n_fits,), bool
    """
    from core.data.registry import open_dataset
    from core.results.fit import FitSettings, features_key

    if fits.empty or "subject_key" not in fits or "features_key" not in fits:
        return np.zeros(len(fits), bool)
    ds = open_dataset(dataset)
    subject_keys: dict[str, str | None] = {}
    feature_keys: dict[tuple, str | None] = {}
    ok = []
    for row in fits.itertuples(index=False):
        if row.subject not in subject_keys:
            try:
                subject_keys[row.subject] = ds.subject_key(row.subject)
            except Exception:  # subject gone from the dataset
                subject_keys[row.subject] = None
        fk = (row.model, row.instruction, int(row.max_new_tokens))
        if fk not in feature_keys:
            try:
                settings = FitSettings(max_new_tokens=int(row.max_new_tokens))
                feature_keys[fk] = features_key(ds, row.model, row.instruction, settings)
            except Exception:  # model no longer available
                feature_keys[fk] = None
        ok.append(
            row.subject_key == subject_keys[row.subject] and row.features_key == feature_keys[fk]
        )
    return np.asarray(ok, bool)


def model_choices(encoders: pd.DataFrame, table: pd.DataFrame, default: str) -> list[str]:
    """Models to offer, most useful first: ``default`` when it has encoders, then MLLMs,
    random-init twins and image-only baselines with encoders, then the rest (``default`` last
    when it has none)."""
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


def default_layer(table: pd.DataFrame, model: str) -> int | None:
    """The layer Explore uses and fits a missing encoder at: the model's cross-validated best
    layer in the results table (the layer every page reports), or None when the table has no
    row of that model."""
    from core.results.selection import best_layers

    if table.empty or model not in set(table["model"]):
        return None
    return best_layers(table[table["model"] == model]).get(model)
