"""``python -m core reproduce paper``: the paper's analysis in one command, its numbers beside ours.

:func:`paper_config` builds the paper's grid for a dataset (subjects 1, 2, 5, 7 where present; the
MLLMs, ViT-H, CLIP and the random-init controls; the 10 instructions; every layer; alphas
``logspace(1, 4, 60)``, 5 folds; the partition of IC vs IU2). On the demo it is the demo analog:
the demo model stands for the MLLMs, its vision tower for ViT-H, its random-init twin for the
controls. :func:`write_report` writes ``<home>/reports/<dataset>/paper/``:

- ``report.md``: what was run, then each table and figure with its caption;
- ``roi_groups.csv``: the ROI-group table of the paper (pRF visual, floc-places) with the
  published value, the measured mean and s.e.m. over subjects, and the difference;
- ``best_instructions.csv``: per ROI, the best and second-best instruction (and the paper's
  claim where it makes one);
- ``layer_curves.csv``; ``partition_ic_iu2.csv``;
- ``fig_*.png`` and ``fig_*.svg``; ``report.json`` (captions and file names, for the app's Paper
  page).

Measured values: normalized alignment (r / sqrt(NC)) per ROI, averaged over the instructions
(MLLMs) at each model's best layer (chosen on cross-validated training scores), averaged over
the ROIs of a group, then mean and s.e.m. over subjects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import subdir
from core.encoding.partition import partition_shares
from core.pipeline import paper
from core.storage import atomic_write_bytes, write_json


class ReproduceError(ValueError):
    """The paper's configuration cannot be run on this dataset (no paper subject, ...)."""


def paper_config(dataset: str, engine: str = "local", address: str | None = None,
                 mplug_owl: bool = False, max_new_tokens: int = 48,
                 n_boot: int = 1000):  # fmt: skip
    """The paper's grid for ``dataset`` and the map paper column -> model.

    Returns
    -------
    config : GridConfig
    columns : dict of str to str
        Paper column (``"InstructBLIP"``, ``"random init"``, ...) -> registry model name.
    """
    from core.data.registry import open_dataset
    from core.models.instructions import PAPER_IDS
    from core.pipeline.grid import GridConfig
    from core.results.fit import FitSettings

    ds = open_dataset(dataset)
    if ds.kind == "demo":
        subjects = list(ds.subject_names)
        columns = dict(paper.DEMO_MODELS)
    else:
        subjects = [s for s in paper.PAPER_SUBJECTS if s in ds.subject_names]
        if not subjects:
            raise ReproduceError(
                f"{dataset!r} has none of the paper's subjects {paper.PAPER_SUBJECTS}; it has "
                f"{ds.subject_names}"
            )
        columns = {k: v for k, v in paper.PAPER_MODELS.items() if k != "mPLUG-Owl" or mplug_owl}
        for name in ("InstructBLIP", "IDEFICS", "mPLUG-Owl"):
            if name in columns:
                columns[f"random init ({name})"] = f"random:{columns[name]}"
    config = GridConfig(
        dataset=dataset,
        models=list(dict.fromkeys(columns.values())),
        instructions=list(PAPER_IDS),
        layers=None,
        subjects=subjects,
        settings=FitSettings(alphas="paper", cv=5, max_new_tokens=max_new_tokens, n_boot=n_boot),
        keep_encoders="last",
        pairs=[paper.PAIR],
        engine=engine,
        address=address,
    )
    return config, columns


def _column_kind(column: str) -> str:
    return "random init" if column.startswith("random init") else column


def _best_layer_rows(table: pd.DataFrame) -> pd.DataFrame:
    from core.results.selection import best_layers

    layers = best_layers(table)
    return table[table["layer"] == table["model"].map(layers)]


def roi_group_table(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The paper's ROI-group table, measured beside published.

    Returns
    -------
    DataFrame with columns roi_group, column, model, layer, n_subjects, measured, sem, paper,
    difference (measured - paper).
    """
    best = _best_layer_rows(table)
    rows = []
    for group, rois in paper.ROI_GROUPS.items():
        for column, model in columns.items():
            sub = best[(best["model"] == model) & best["roi"].isin(rois)]
            published = paper.ROI_GROUP_TABLE[group].get(_column_kind(column), np.nan)
            if sub.empty:
                continue
            per_roi = sub.groupby(["subject", "roi"])["nalign_mean"].mean()  # over instructions
            per_subject = per_roi.groupby("subject").mean()  # over the group's ROIs
            n = int(per_subject.size)
            measured = float(per_subject.mean())
            sem = float(per_subject.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            rows.append({
                "roi_group": group, "column": column, "model": model,
                "layer": int(sub["layer"].iloc[0]), "n_subjects": n, "measured": measured,
                "sem": sem, "paper": published, "difference": measured - published,
            })  # fmt: skip
    return pd.DataFrame(rows)


def best_instruction_table(table: pd.DataFrame, model: str) -> pd.DataFrame:
    """Per ROI, the best and second instruction of ``model`` at its best layer, chosen by the
    cross-validated training score (mean over subjects) and reported on the test set, with
    the paper's claim where it makes one. ``spread`` is the range of test scores over the
    instructions (descriptive)."""
    from core.results.selection import rank_instructions

    best = _best_layer_rows(table)
    sub = best[(best["model"] == model) & (best["roi"] != "general")]
    rows = []
    for roi, d in rank_instructions(sub).groupby("roi", sort=False):
        claim = paper.INSTRUCTION_CLAIMS.get(
            "early visual" if roi in paper.EARLY_VISUAL else roi, ""
        )
        rows.append({
            "roi": roi, "best": d["instruction"].iloc[0],
            "best_value": float(d["nalign_mean"].iloc[0]),
            "second": d["instruction"].iloc[1] if len(d) > 1 else "",
            "spread": float(d["nalign_mean"].max() - d["nalign_mean"].min()),
            "chosen_by": "cross-validated training score",
            "paper": claim,
        })  # fmt: skip
    return pd.DataFrame(rows)


def layer_curve_table(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Per paper column, ROI group and layer: normalized alignment (mean over instructions,
    the group's ROIs and subjects)."""
    rows = []
    for column, model in columns.items():
        for group, rois in paper.ROI_GROUPS.items():
            sub = table[(table["model"] == model) & table["roi"].isin(rois)]
            if sub.empty:
                continue
            per = sub.groupby(["layer", "subject", "roi"])["nalign_mean"].mean()
            per = per.groupby(["layer", "subject"]).mean().groupby("layer").mean()
            for layer, value in per.items():
                rows.append({"column": column, "model": model, "roi_group": group,
                             "layer": int(layer), "nalign": float(value)})  # fmt: skip
    return pd.DataFrame(rows)


def partition_table(parts: pd.DataFrame, model: str) -> pd.DataFrame:
    """IC vs IU2 per ROI group: measured test-R2 parts (mean over the group's ROIs and the
    subjects), their shares of the explained variance, and the published values."""
    a, b = paper.PAIR
    sub = parts[(parts["model"] == model) & (parts["a"] == a) & (parts["b"] == b)]
    rows = []
    for group, rois in (("early visual", paper.EARLY_VISUAL),
                        ("higher visual", paper.HIGHER_VISUAL)):  # fmt: skip
        g = sub[sub["roi"].isin(rois)]
        if g.empty:
            continue
        means = g.groupby("subject")[["unique_a", "shared", "unique_b"]].mean().mean()
        labels = {"unique_a": f"unique {a}", "shared": "shared", "unique_b": f"unique {b}"}
        shares = partition_shares({labels[p]: float(means[p]) for p in labels})
        for part, label in labels.items():
            value = float(means[part])
            rows.append({
                "roi_group": group, "part": label, "measured_r2": value,
                # shares of the non-negative parts; a negative part is flagged, share 0
                "measured_share": shares[label], "negative": bool(value < 0),
                "paper": paper.PARTITION_IC_IU2[group][label],
                "n_subjects": int(g["subject"].nunique()),
            })  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def _save_figure(fig, folder: Path, stem: str) -> list[str]:
    import io

    import matplotlib.pyplot as plt

    names = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight")
        atomic_write_bytes(folder / f"{stem}.{fmt}", buf.getvalue())
        names.append(f"{stem}.{fmt}")
    plt.close(fig)
    return names


def _fig_roi_groups(groups: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paper.ROI_GROUPS), figsize=(11, 3.6), sharey=True)
    for ax, group in zip(np.atleast_1d(axes), paper.ROI_GROUPS, strict=True):
        d = groups[groups["roi_group"] == group]
        x = np.arange(len(d))
        ax.bar(x - 0.2, d["measured"], 0.4, yerr=d["sem"].fillna(0), label="measured",
               color="#3b6ea8")  # fmt: skip
        ax.bar(x + 0.2, d["paper"], 0.4, label="paper (+-0.02)", color="#c9c9c9")
        ax.set_xticks(x, d["column"], rotation=30, ha="right", fontsize=8)
        ax.set_title(group, fontsize=10)
        ax.axhline(1.0, ls="--", lw=0.8, color="k")
    np.atleast_1d(axes)[0].set_ylabel("normalized alignment (r / sqrt(NC))")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return fig


def _fig_layer_curves(curves: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paper.ROI_GROUPS), figsize=(11, 3.4), sharey=True)
    for ax, group in zip(np.atleast_1d(axes), paper.ROI_GROUPS, strict=True):
        for column, d in curves[curves["roi_group"] == group].groupby("column", sort=False):
            ax.plot(d["layer"], d["nalign"], marker="o", ms=3, label=column)
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("layer (hidden-state index)")
    np.atleast_1d(axes)[0].set_ylabel("normalized alignment")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return fig


def _fig_partition(parts: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    groups = list(dict.fromkeys(parts["roi_group"]))
    colors = {"unique IC": "#3b6ea8", "shared": "#8a8a8a", "unique IU2": "#d08c2f"}
    for j, (col, label) in enumerate((("measured_share", "measured"), ("paper", "paper"))):
        for i, group in enumerate(groups):
            left = 0.0
            d = parts[parts["roi_group"] == group]
            for _, row in d.iterrows():
                ax.barh(i * 2.5 + j, row[col], left=left, color=colors[row["part"]],
                        label=row["part"] if (i, j) == (0, 0) else None)  # fmt: skip
                left += row[col]
            ax.text(left + 0.01, i * 2.5 + j, label, va="center", fontsize=7)
    ax.set_yticks([i * 2.5 + 0.5 for i in range(len(groups))], groups)
    ax.set_xlabel("share of explained variance (measured) / published value (paper)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def report_dir(dataset: str) -> Path:
    return subdir("reports", dataset, "paper")


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(dataset: str, config, columns: dict[str, str]) -> Path:
    """Write the report folder from the stored results (see the module docstring).

    Raises
    ------
    ReproduceError
        When the results of this configuration are not in the results table yet.
    """
    from core.data.registry import open_dataset
    from core.data.rois import select_view
    from core.results.partition import load_partition_table
    from core.results.tables import load_roi_table
    from core.results.views import alpha_edge_warnings, pvalue_note

    ds = open_dataset(dataset)
    table = select_view(load_roi_table(dataset, ds))  # the paper's ROIs of NSD, not V1v and V1
    if table.empty:
        raise ReproduceError(f"no results for {dataset!r}: run `python -m core reproduce paper`")
    table = table[table["model"].isin(config.models) & table["subject"].isin(config.subjects)]
    table = table[table["instruction"].isin([*config.instructions, "image"])]
    missing = [m for m in config.models if m not in set(table["model"])]
    if missing:
        raise ReproduceError(f"no results yet for {missing}: run `python -m core reproduce paper`")
    folder = report_dir(dataset)
    mllm = next(m for c, m in columns.items() if _column_kind(c) not in ("random init", "ViT-H",
                                                                         "CLIP"))  # fmt: skip
    groups = roi_group_table(table, columns)
    best = best_instruction_table(table, mllm)
    curves = layer_curve_table(table, columns)
    parts = partition_table(select_view(load_partition_table(dataset, ds)), mllm)
    for name, df in (("roi_groups", groups), ("best_instructions", best),
                     ("layer_curves", curves), ("partition_ic_iu2", parts)):  # fmt: skip
        atomic_write_bytes(folder / f"{name}.csv", df.to_csv(index=False).encode())
    run = (
        f"{'SIMULATED demo analog: ' if ds.simulated else ''}dataset {dataset}, subjects "
        f"{', '.join(config.subjects)}; models "
        + ", ".join(f"{c} = {m}" for c, m in columns.items())
        + f"; {len(config.instructions)} instructions, greedy responses of up to "
        f"{config.settings.max_new_tokens} tokens; every layer, each model's best layer "
        "chosen on cross-validated training scores; ridge alphas logspace(1, 4, 60), 5-fold CV, "
        "train-only z-scoring; normalized alignment r / sqrt(NC) on the shared test images."
    )
    figures = []
    if not groups.empty:
        figures.append({
            "files": _save_figure(_fig_roi_groups(groups), folder, "fig_roi_groups"),
            "caption": "Normalized alignment per ROI group: measured (mean +- s.e.m. over "
            "subjects, mean over instructions at the best layer) beside the paper's values "
            "(read off its figures, +-0.02). " + run,
        })  # fmt: skip
    if not curves.empty:
        figures.append({
            "files": _save_figure(_fig_layer_curves(curves), folder, "fig_layer_curves"),
            "caption": "Layer curves: normalized alignment per hidden state (mean over "
            "instructions, the group's ROIs and subjects). " + run,
        })  # fmt: skip
    if not parts.empty:
        figures.append({
            "files": _save_figure(_fig_partition(parts), folder, "fig_partition_ic_iu2"),
            "caption": f"Variance partitioning IC vs IU2 at {mllm}'s cross-validated best layer "
            "(the layer its scores are reported at): measured shares of the explained test "
            "variance, computed from the non-negative parts (a negative unique part, the joint "
            "model predicting worse than one space alone, is listed as negative in "
            "partition_ic_iu2.csv and counts as 0), beside the paper's published values (their "
            "scale is not stated in the paper). " + run,
        })  # fmt: skip
    notes = [pvalue_note(table, dataset), *[f"WARNING: {w}" for w in alpha_edge_warnings(table)]]
    md = [
        f"# Reproduction of Oota et al., ICLR 2025 on `{dataset}`",
        "",
        ("**SIMULATED data**: the demo analog of the paper's analysis (the demo model stands "
         "for the MLLMs, its vision tower for ViT-H, its random-init twin for the controls; no "
         "CLIP). Numbers are not comparable to the paper's; the format is.\n"
         if ds.simulated else ""),
        f"What was run: {run}",
        "",
        "## ROI groups: measured vs paper",
        _md_table(groups),
        "",
        "## Best instruction per ROI",
        f"Model {mllm}, its best layer, mean over subjects; 'paper' is the paper's claim.",
        "",
        _md_table(best),
        "",
        "## Variance partitioning IC vs IU2",
        _md_table(parts),
        "",
        "## Figures",
    ]
    for fig in figures:
        md += [f"![{fig['files'][0]}]({fig['files'][0]})", "", f"*{fig['caption']}*", ""]
    md += ["## Notes", *[f"- {n}" for n in notes]]
    atomic_write_bytes(folder / "report.md", "\n".join(md).encode())
    write_json(folder / "report.json", {
        "dataset": dataset, "simulated": bool(ds.simulated), "run": run, "columns": columns,
        "subjects": list(config.subjects), "models": list(config.models),
        "tables": {"roi_groups": "roi_groups.csv", "best_instructions": "best_instructions.csv",
                   "layer_curves": "layer_curves.csv", "partition": "partition_ic_iu2.csv"},
        "figures": figures, "notes": notes,
    })  # fmt: skip
    return folder


def read_report(dataset: str) -> dict | None:
    """The report's ``report.json`` with its tables loaded (DataFrames), or None."""
    folder = report_dir(dataset)
    try:
        info = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return None
    info["folder"] = str(folder)
    info["frames"] = {}
    for key, name in info.get("tables", {}).items():
        try:
            info["frames"][key] = pd.read_csv(folder / name)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            info["frames"][key] = pd.DataFrame()
    return info


def reproduce_paper(dataset: str, engine: str = "local", address: str | None = None,
                    dry_run: bool = False, progress: bool = True,
                    mplug_owl: bool = False, max_new_tokens: int = 48,
                    n_boot: int = 1000) -> str:  # fmt: skip
    """Run (or plan) the paper's grid and write the report; returns what to print."""
    from core.pipeline.grid import run_grid
    from core.pipeline.plan import model_weights, plan_grid

    config, columns = paper_config(dataset, engine, address, mplug_owl, max_new_tokens, n_boot)
    if dry_run:
        return plan_grid(config).format()
    missing = [(m, where) for m in config.models
               for status, where, _ in [model_weights(m)] if status == "missing"]  # fmt: skip
    if missing:
        raise ReproduceError(
            "missing weights (nothing was run; `--dry-run` shows the whole plan):\n"
            + "\n".join(f"  {m}: {where}" for m, where in missing)
        )
    run_grid(config, progress=progress)
    folder = write_report(dataset, config, columns)
    return f"report written to {folder / 'report.md'}"
