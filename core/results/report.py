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
    layers were chosen and significance computed, and alpha-grid warnings (ROIs in the default
    view: the paper's ROIs and groups of a finely labelled dataset, :func:`select_view`)."""
    from core.data.rois import select_view
    from core.results.views import alpha_edge_warnings, metric_agreement, pvalue_note

    if table.empty:
        return "no results"
    table = select_view(table)
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
    out += _ceiling_lines(dataset)
    out += [f"WARNING: {w}" for w in alpha_edge_warnings(table)]
    said_ceiling = False
    for model, lay in layers.items():
        wide = instruction_roi_table(table, model, lay)
        out.append(f"\n{model} (layer {lay}):")
        out.append(wide.to_string(float_format=lambda v: f"{v:.3f}"))
        if len(wide) > 1:
            agree = metric_agreement(table, model, lay)
            if not agree.empty:
                flagged = agree[agree["flagged"]]
                out.append(
                    "encoding vs RSA (Kendall's tau of the instruction rankings per ROI): "
                    + ", ".join(f"{r.roi} {r.tau:+.2f}" for r in agree.itertuples())
                    + ("; rankings that flip or change winner: "
                       + ", ".join(f"{r.roi} (encoding {r.top_a}, RSA {r.top_b})"
                                   for r in flagged.itertuples())
                       if len(flagged) else "; no ROI's ranking flips")
                )
                out += _rsa_ceiling_lines(table, model, lay, dataset, ceiling=not said_ceiling)
                said_ceiling = True  # the ceiling is the data's: printed once, not per model
            tops = top_instructions(table[(table["model"] == model) & (table["layer"] == lay)])
            line = _chosen_with_intervals(table, model, lay, tops, dataset)
            if line:
                out.append(line)
            out.append(
                "best instructions (chosen by the cross-validated training score; the table "
                "shows test scores): "
                + "; ".join(f"{r}: {', '.join(t)}" for r, t in tops.items())
            )
        out += _control_lines(table, model, dataset)
    return "\n".join(out)


def _control_lines(table, model, dataset) -> list[str]:
    """For a trained MLLM: the share of each instruction's alignment its text-only control
    keeps, answer length vs alignment across instructions, and what the image adds (the
    partition against the text-only control); or the command that fits what is missing."""
    from core.models.roles import model_role
    from core.results.controls import (
        answer_lengths,
        controls_hint,
        image_adds,
        length_alignment,
        text_control_shares,
    )
    from core.results.partition import load_partition_table
    from core.results.tables import grid_settings

    try:
        if model_role(model) != "mllm" or dataset is None:
            return []
    except Exception:  # a model that no longer resolves
        return []
    from core.data.registry import open_dataset

    ds, settings = open_dataset(dataset), grid_settings(dataset)
    out = []
    fmt = lambda v: f"{v:.2f}"  # noqa: E731
    shares = text_control_shares(table, model)
    if not shares.empty:
        wide = shares.pivot_table(index="instruction", columns="roi", values="share", sort=False)
        out.append(
            f"text-only control (layer {shares['control_layer'].iloc[0]} of text:{model} against "
            f"layer {shares['layer'].iloc[0]}, each chosen by the CV training score): share of "
            f"each instruction's alignment it keeps (control / instruction, test set, mean "
            f"over subjects; blank where the instruction scores below 0.05)"
        )
        out.append(wide[list(dict.fromkeys(shares["roi"]))].to_string(float_format=fmt,
                                                                      na_rep=""))  # fmt: skip
    instructions = list(dict.fromkeys(table.loc[table["model"] == model, "instruction"]))
    _, corr = length_alignment(table, answer_lengths(ds, model, instructions, settings), model)
    if not corr.empty:
        out.append(
            "answer length vs alignment across instructions (mean tokens on the shared test "
            "images; Pearson r (p, uncorrected) / Spearman rho, N instructions): "
            + ", ".join(f"{r.roi} {r.pearson_r:+.2f} (p {r.p:.2g}) / {r.spearman_rho:+.2f}, "
                        f"N={r.n}" for r in corr.itertuples())  # fmt: skip
        )
    partitions = load_partition_table(dataset, ds)
    adds = image_adds(partitions, model)
    if not adds.empty:
        wide = adds.pivot_table(index="instruction", columns="roi", values="image_share",
                                sort=False)  # fmt: skip
        out.append(
            "what the image adds: the instruction's unique share of its R² over its text-only "
            "control ((R²(both) - R²(text)) / R²(instruction), test set, mean over subjects)"
        )
        out.append(wide[list(dict.fromkeys(adds["roi"]))].to_string(float_format=fmt, na_rep=""))
    hint = controls_hint(dataset, table, model, settings, partitions)
    if hint:
        out.append(hint)
    return out


def _rsa_ceiling_lines(table, model, layer, dataset, ceiling: bool = True) -> list[str]:
    """RSA's noise-ceiling analog per ROI beside encoding's (when ``ceiling``), and the model's
    RSA normalised by it; or why the dataset has none."""
    from core.results.rsa_ceiling import metric_ceilings, unavailable_reason

    if dataset is None:
        return []
    from core.data.registry import open_dataset

    ds = open_dataset(dataset)
    why = unavailable_reason(ds)
    if why:
        return [f"RSA noise ceiling: not available ({why})"] if ceiling else []
    m = metric_ceilings(ds, table, model, layer)
    if m.empty:
        return []
    per_roi = m.drop_duplicates("roi")
    wide = m.pivot_table(index="instruction", columns="roi", values="rsa_normalized", sort=False)
    head = [
        "RSA ceiling per ROI (sqrt of the split-half reliability of the test-image RDM from the "
        "single repeats, Spearman-Brown; mean over subjects) / encoding's sqrt(NC): "
        + ", ".join(f"{r.roi} {r.rsa_ceiling:.2f}/{r.encoding_ceiling:.2f}"
                    for r in per_roi.itertuples()),  # fmt: skip
    ]
    return [
        *(head if ceiling else []),
        f"RSA / RSA ceiling ({model}, mean over subjects):",
        wide[list(per_roi["roi"])].to_string(float_format=lambda v: f"{v:.2f}", na_rep=""),
    ]


def _chosen_with_intervals(table, model, layer, tops, dataset) -> str:
    """The chosen instruction per ROI with its test score and the 95% bootstrap interval over
    the test images (subjects averaged); '' without a dataset or a stored bootstrap."""
    from core.results.views import bootstrap_intervals

    if dataset is None:
        return ""
    rows = table[(table["model"] == model) & (table["layer"] == layer)]
    chosen = {roi: t[0] for roi, t in tops.items() if t}
    ci = bootstrap_intervals(dataset, model, layer, sorted(set(chosen.values())),
                             sorted(rows["subject"].unique()))  # fmt: skip
    if ci.empty:
        return ""
    ci = ci.set_index(["roi", "instruction"])
    score = rows.groupby(["roi", "instruction"])["nalign_mean"].mean()
    parts = [f"{roi} {ins} {score[(roi, ins)]:.3f} [{ci.loc[(roi, ins), 'ci_low']:.3f}, "
             f"{ci.loc[(roi, ins), 'ci_high']:.3f}]"
             for roi, ins in chosen.items() if (roi, ins) in ci.index]  # fmt: skip
    return ("chosen instruction per ROI, test score [95% bootstrap interval over test images, "
            "subjects averaged]: " + "; ".join(parts))


def _ceiling_lines(dataset) -> list[str]:
    """Both noise ceilings per ROI (mean over subjects), when the grid computed them."""
    from core.data.dataset import DatasetError
    from core.data.registry import open_dataset
    from core.results.ceilings import ceiling_table

    if dataset is None:
        return []
    try:
        t = ceiling_table(open_dataset(dataset))
    except (DatasetError, ValueError):
        return []
    from core.data.rois import select_view

    g = select_view(t).groupby("roi", sort=False)[["nc_ncsnr", "nc_cross_subject"]].mean()
    return [
        "noise ceilings per ROI (fraction of variance, mean over subjects): ncsnr / "
        "cross-subject (the other subjects' responses predicting a subject's; normalise by it "
        "with `nalign_cross`): "
        + ", ".join(f"{roi} {r.nc_ncsnr:.2f}/{r.nc_cross_subject:.2f}" for roi, r in g.iterrows())
    ]
