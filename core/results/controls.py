"""Is it the image, the words or the length? The controls of an instruction's alignment, read
back from the results tables.

- :func:`text_control_shares`: per ROI and instruction, the share of the instruction's
  alignment that its text-only control (``text:<model>``: the model's own language model over
  the answer alone, no image) keeps; both feature spaces at their own layer chosen by the
  cross-validated training score (:func:`core.results.selection.best_layers`), reported on the
  test set.
- :func:`answer_lengths` and :func:`length_alignment`: the mean answer length (tokens) of each
  instruction on the shared test images, and its correlation across instructions with the
  instruction's alignment, per ROI.
- :func:`image_adds`: the variance partition of each instruction against its own text-only
  control (rows the grid writes when its models hold ``text:<model>``): the instruction's unique
  part is what the image adds to what the answer's words carry.
- :func:`controls_hint`: what is missing and the exact command that fits it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.models.roles import control_of
from core.results.fit import IMAGE, FitSettings
from core.results.selection import best_layers

#: Below this instruction score (normalized alignment) a share is not computed: dividing by a
#: score near zero turns noise into huge ratios.
MIN_SCORE = 0.05
#: Below this R² of the instruction the image's share of it is not computed (same reason).
MIN_R2 = 1e-3
#: Fewest instructions a length-alignment correlation is computed over.
MIN_INSTRUCTIONS = 3

SHARE_COLUMNS = ["roi", "instruction", "layer", "control_layer", "n_subjects", "score",
                 "control_score", "share"]  # fmt: skip


def _at_best_layer(rows: pd.DataFrame, models: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """``rows`` of ``models``, each at its layer chosen by the CV training score."""
    sub = rows[rows["model"].isin(models) & (rows["instruction"] != IMAGE)]
    if sub.empty:
        return sub, {}
    layers = best_layers(sub)
    return sub[sub["layer"] == sub["model"].map(layers)], layers


def text_control_shares(
    table: pd.DataFrame, model: str, subjects: list[str] | None = None
) -> pd.DataFrame:
    """Per ROI and instruction, how much of the instruction's alignment the text-only control
    keeps: ``share = control_score / score``, both the mean over subjects of the normalized
    alignment (``nalign_mean``) at each feature space's CV-chosen layer.

    Parameters
    ----------
    table : DataFrame
        The ROI results table (rows of ``model`` and of ``text:<model>``).
    subjects : list of str, optional
        Default: every subject with both fits.

    Returns
    -------
    DataFrame with columns roi, instruction, layer (the model's), control_layer, n_subjects
    (those with both fits), score, control_score, share (NaN where score < :data:`MIN_SCORE`);
    in the table's ROI order; empty when the control has no rows.
    """
    text = control_of(model)
    rows = table if subjects is None else table[table["subject"].isin(subjects)]
    sel, layers = _at_best_layer(rows, [model, text])
    if model not in layers or text not in layers:
        return pd.DataFrame(columns=SHARE_COLUMNS)
    key = ["subject", "instruction", "roi"]
    a = sel[sel["model"] == model][[*key, "nalign_mean"]]
    b = sel[sel["model"] == text][[*key, "nalign_mean"]]
    both = a.merge(b, on=key, suffixes=("", "_control"))
    g = both.groupby(["roi", "instruction"], sort=False)
    out = g.agg(n_subjects=("subject", "nunique"), score=("nalign_mean", "mean"),
                control_score=("nalign_mean_control", "mean")).reset_index()  # fmt: skip
    out["share"] = np.where(out["score"] >= MIN_SCORE, out["control_score"] / out["score"], np.nan)
    out["layer"], out["control_layer"] = layers[model], layers[text]
    order = {r: i for i, r in enumerate(dict.fromkeys(table["roi"]))}
    out = out.sort_values("roi", key=lambda c: c.map(order), kind="stable")
    return out[SHARE_COLUMNS].reset_index(drop=True)


def answer_lengths(ds, model: str, instructions: list[str], settings: FitSettings) -> pd.DataFrame:
    """Mean answer length of each instruction over the test images every subject saw.

    The length is the stored ``n_generated_tokens`` of each answer (its end-of-sequence token
    included), from the response shard the fits read (``settings`` select it).

    Returns
    -------
    DataFrame with columns instruction, mean_tokens, n_images; instructions whose answers are
    not stored are left out.
    """
    from core.features.extract import load_responses
    from core.models.instructions import resolve_instruction
    from core.storage import ArtifactError

    test = ds.shared_test_ids()
    rows = []
    for ins in instructions:
        try:
            ids, _, n_tokens = load_responses(ds, model, resolve_instruction(ins),
                                              settings.generation_options(),
                                              settings.extraction())  # fmt: skip
        except (ArtifactError, KeyError, ValueError):
            continue
        keep = np.isin(ids, test)
        if keep.any():
            rows.append({"instruction": ins, "mean_tokens": float(np.mean(n_tokens[keep])),
                         "n_images": int(keep.sum())})  # fmt: skip
    return pd.DataFrame(rows, columns=["instruction", "mean_tokens", "n_images"])


def length_alignment(
    table: pd.DataFrame, lengths: pd.DataFrame, model: str, subjects: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Does a longer answer align better? Per ROI, the correlation across instructions between
    the mean answer length and the normalized alignment (mean over subjects, ``model`` at its
    CV-chosen layer). Descriptive: N is the number of instructions, and the p-value is not
    corrected over ROIs.

    Parameters
    ----------
    lengths : DataFrame
        From :func:`answer_lengths`.

    Returns
    -------
    points : DataFrame
        roi, instruction, mean_tokens, alignment (one point per ROI and instruction).
    correlations : DataFrame
        roi, n, pearson_r, p, spearman_rho (NaN with fewer than :data:`MIN_INSTRUCTIONS`
        instructions or constant lengths or alignments).
    """
    from scipy import stats

    rows = table if subjects is None else table[table["subject"].isin(subjects)]
    sel, layers = _at_best_layer(rows, [model])
    cols = ["roi", "n", "pearson_r", "p", "spearman_rho"]
    if sel.empty or lengths.empty:
        return pd.DataFrame(columns=["roi", "instruction", "mean_tokens", "alignment"]), \
            pd.DataFrame(columns=cols)  # fmt: skip
    mean = sel.groupby(["roi", "instruction"], sort=False)["nalign_mean"].mean()
    points = mean.rename("alignment").reset_index().merge(lengths[["instruction", "mean_tokens"]],
                                                          on="instruction")  # fmt: skip
    points = points[["roi", "instruction", "mean_tokens", "alignment"]]
    out = []
    for roi, d in points.groupby("roi", sort=False):
        d = d[np.isfinite(d["alignment"])]
        x, y = d["mean_tokens"].to_numpy(float), d["alignment"].to_numpy(float)
        r = p = rho = np.nan
        if len(d) >= MIN_INSTRUCTIONS and np.ptp(x) > 0 and np.ptp(y) > 0:
            r, p = stats.pearsonr(x, y)
            rho = stats.spearmanr(x, y)[0]
        out.append({"roi": roi, "n": len(d), "pearson_r": float(r), "p": float(p),
                    "spearman_rho": float(rho)})  # fmt: skip
    return points.reset_index(drop=True), pd.DataFrame(out, columns=cols)


IMAGE_ADDS_COLUMNS = ["roi", "instruction", "layer", "control_layer", "n_subjects", "unique",
                      "shared", "unique_text", "r2", "r2_text", "image_share"]  # fmt: skip


def control_pair_rows(partitions: pd.DataFrame) -> pd.DataFrame:
    """Rows of the partitions table that pair an instruction with another feature space (its
    text-only control): ``model_b`` set and not ``model``."""
    if partitions.empty or "model_b" not in partitions:
        return partitions.iloc[0:0]
    other = partitions["model_b"].notna() & (partitions["model_b"] != partitions["model"])
    return partitions[other]


def instruction_pair_rows(partitions: pd.DataFrame) -> pd.DataFrame:
    """Rows of the partitions table that pair two instructions of one model (the rest of
    :func:`control_pair_rows`)."""
    if partitions.empty or "model_b" not in partitions:
        return partitions
    return partitions.drop(control_pair_rows(partitions).index)


def image_adds(partitions: pd.DataFrame, model: str, subjects: list[str] | None = None) -> pd.DataFrame:
    """What the image adds: per ROI and instruction, the variance partition of the instruction
    (A: ``model``'s response embedding) against its own text-only control (B:
    ``text:<model>`` with the same instruction), mean over subjects.

    ``unique`` = R²(A∪B) − R²(B) is what only the image-conditioned embedding explains;
    ``image_share`` = unique / R²(A) (NaN where R²(A) < :data:`MIN_R2`).

    Returns
    -------
    DataFrame with columns :data:`IMAGE_ADDS_COLUMNS` (test R² parts, ROI means), in the
    table's ROI order; empty when no such partition is stored.
    """
    rows = control_pair_rows(partitions)
    if rows.empty:  # no partitions table at all (a grid run without pairs) has no columns
        return pd.DataFrame(columns=IMAGE_ADDS_COLUMNS)
    rows = rows[(rows["model"] == model) & (rows["model_b"] == control_of(model))
                & (rows["a"] == rows["b"])]  # fmt: skip
    if subjects is not None:
        rows = rows[rows["subject"].isin(subjects)]
    if rows.empty:
        return pd.DataFrame(columns=IMAGE_ADDS_COLUMNS)
    g = rows.groupby(["roi", "a"], sort=False)
    out = g.agg(layer=("layer", "first"), control_layer=("layer_b", "first"),
                n_subjects=("subject", "nunique"), unique=("unique_a", "mean"),
                shared=("shared", "mean"), unique_text=("unique_b", "mean"), r2=("r2_a", "mean"),
                r2_text=("r2_b", "mean")).reset_index().rename(columns={"a": "instruction"})  # fmt: skip
    out["image_share"] = np.where(out["r2"] >= MIN_R2, out["unique"] / out["r2"], np.nan)
    return out[IMAGE_ADDS_COLUMNS].reset_index(drop=True)


def controls_hint(
    dataset: str,
    table: pd.DataFrame,
    model: str,
    settings: FitSettings | None = None,
    partitions: pd.DataFrame | None = None,
) -> str:
    """'' when ``model``'s text-only and length controls are fitted for every instruction it
    has (and, with ``partitions``, each instruction is partitioned against its text control);
    else one sentence naming what is missing and the exact command that makes it.

    The command keeps ``settings`` (the last grid's; a run with other settings would replace
    the table's rows) and the model's instructions (when they are not the paper's 10).
    """
    from core.models.instructions import PAPER_IDS
    from core.results.commands import run_command, unspelled_settings

    own = table[(table["model"] == model) & (table["instruction"] != IMAGE)]
    instructions = list(dict.fromkeys(own["instruction"]))
    if not instructions:
        return ""
    missing = []
    for prefix, what in (("text:", "text-only control"), ("length:", "length control")):
        have = set(table.loc[table["model"] == control_of(model, prefix), "instruction"])
        if not set(instructions) <= have:
            missing.append(f"the {what} ({control_of(model, prefix)})")
    if not missing and partitions is not None:
        done = set(image_adds(partitions, model)["instruction"])
        if not set(instructions) <= done:
            missing.append("the partition of each instruction against its text-only control")
    if not missing:
        return ""
    models = [model, control_of(model, "text:"), control_of(model, "length:")]
    cmd = run_command(dataset, models,
                      None if sorted(instructions) == sorted(PAPER_IDS) else instructions,
                      None, settings)  # fmt: skip
    odd = unspelled_settings(settings or FitSettings())
    note = (f" These results were made with {', '.join(f'{k}={v}' for k, v in odd.items())}, "
            "which the command line does not set: run the grid from Python with these "
            "settings (core.pipeline.grid.GridConfig) instead." if odd else "")  # fmt: skip
    return (f"{' and '.join(missing).capitalize()} of {model} "
            f"{'is' if len(missing) == 1 else 'are'} not fitted yet; run `{cmd}` (the stored "
            "answers are reused; only the controls are extracted and fitted)." + note)  # fmt: skip
