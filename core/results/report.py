"""Text summaries of the results table (for the CLI), built on the same tables the app shows."""

from __future__ import annotations

import pandas as pd

from core.results.selection import best_layers


def instruction_roi_table(
    table: pd.DataFrame, model: str, layer: int, value: str = "nalign_mean"
) -> pd.DataFrame:
    """Mean over subjects of ``value``: rows = instructions, columns = ROIs (one model, one layer)."""
    sub = table[(table["model"] == model) & (table["layer"] == layer)]
    wide = sub.groupby(["instruction", "roi"], sort=False)[value].mean().unstack("roi")
    rois = list(dict.fromkeys(sub["roi"]))
    return wide[rois]


def top_instructions(rows: pd.DataFrame, k: int = 2) -> dict[str, list[str]]:
    """Per ROI, the ``k`` instructions with the highest cross-validated training score (mean
    over subjects) among ``rows`` (one model, one layer)."""
    from core.results.selection import rank_instructions

    ranked = rank_instructions(rows)
    return {roi: d["instruction"].tolist()[:k] for roi, d in ranked.groupby("roi", sort=False)}


def format_report(
    table: pd.DataFrame, layer: str | int = "best", dataset: str | None = None
) -> str:
    """A plain-text report: per model, instruction x ROI normalised alignment, the winners, how
    layers were chosen and significance computed, and alpha-grid warnings."""
    from core.results.views import alpha_edge_warnings, pvalue_note

    if table.empty:
        return "no results"
    layers = (
        best_layers(table) if layer == "best" else {m: int(layer) for m in table["model"].unique()}
    )
    out = [
        "normalized brain alignment (r / sqrt(NC), mean over targets in ROI AND general mask, "
        f"mean over {table['subject'].nunique()} subjects)"
    ]
    if layer == "best":
        out.append(
            "layers: per model, the best cross-validated score on the training images in the "
            "general mask (the test set only reports)"
        )
    out.append(pvalue_note(table, dataset))
    out += [f"WARNING: {w}" for w in alpha_edge_warnings(table)]
    for model, lay in layers.items():
        wide = instruction_roi_table(table, model, lay)
        out.append(f"\n{model} (layer {lay}):")
        out.append(wide.to_string(float_format=lambda v: f"{v:.3f}"))
        if len(wide) > 1:
            tops = top_instructions(table[(table["model"] == model) & (table["layer"] == lay)])
            out.append(
                "best instructions (chosen by the cross-validated training score; the table "
                "shows test scores): "
                + "; ".join(f"{r}: {', '.join(t)}" for r, t in tops.items())
            )
    return "\n".join(out)
