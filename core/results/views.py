"""Views of stored results for the dashboard's pages, without streamlit.

- per-target scores of a stored fit (:func:`target_scores`), the best instruction per target
  (:func:`best_instruction_labels`, :func:`label_counts`) and significance stars per ROI
  (:func:`instruction_stars`);
- per-target variance parts of a stored partition (:func:`partition_arrays`) and ROI summaries of
  the partitions table (:func:`partition_summary`, :func:`partition_long`);
- models compared per ROI (:func:`model_comparison`, :func:`model_layers_used`) and across layers
  (:func:`layer_rows`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.rois import roi_masks
from core.results.fit import IMAGE, Q_THRESHOLD, FitSpec, load_fit_scores
from core.results.selection import best_layers, chosen_instructions
from core.results.tables import grid_settings
from core.storage import ArtifactError, load_npz, read_json


def target_scores(
    dataset: str, subject: str, model: str, instruction: str, layer: int, ds=None
) -> dict[str, np.ndarray]:
    """Per-target scores (r, r2, nalign, nalign_var, nc, p, q, best_alpha) of one stored fit,
    with the last grid run's settings.

    ``ds``: the dataset already opened (its loaded subjects are reused; opened by name when
    None).

    Raises
    ------
    ArtifactError
        When that fit is not stored.
    """
    from core.data.registry import open_dataset

    spec = FitSpec(dataset, subject, model, instruction, int(layer))
    return load_fit_scores(ds if ds is not None else open_dataset(dataset), spec,
                           grid_settings(dataset))  # fmt: skip


def best_instruction_labels(
    dataset: str,
    subject: str,
    model: str,
    layer: int,
    instructions: list[str],
    q_threshold: float = Q_THRESHOLD,
    ds=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per target, which instruction predicts it best: the highest cross-validated training
    score (chosen without the test set, :func:`core.results.selection.best_target_labels`),
    shown where that instruction's test fit is significant.

    Returns
    -------
    labels : array of shape (n_targets,), int
        Index into ``instructions``; -1 where the chosen fit is not significant on the test set
        (q >= threshold) or no fit is stored.
    best_r : array of shape (n_targets,), float32
        The chosen instruction's test r.
    """
    from core.data.registry import open_dataset
    from core.results.selection import best_target_labels

    ds = ds if ds is not None else open_dataset(dataset)
    rs, qs, cvs = [], [], []
    for ins in instructions:
        s = target_scores(dataset, subject, model, ins, layer, ds=ds)
        rs.append(s["r"])
        qs.append(s["q"])
        cvs.append(s["cv_score"] if "cv_score" in s else np.full(s["r"].shape, np.nan))
    r, q = np.vstack(rs), np.vstack(qs)
    chosen = best_target_labels(np.vstack(cvs))
    cols = np.arange(r.shape[1])
    pick = np.maximum(chosen, 0)
    best_r = np.where(chosen >= 0, r[pick, cols], np.nan)
    ok = (chosen >= 0) & (q[pick, cols] < q_threshold) & np.isfinite(best_r)
    return np.where(ok, chosen, -1).astype(np.int64), best_r.astype(np.float32)


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
    ds=None,
) -> pd.DataFrame:
    """Significance of each instruction against ``reference``, per ROI.

    ``"subjects"`` mode answers "is the difference real?" with two tests that must both
    agree (an intersection-union test, valid at the nominal level): the paired t-test of the
    per-subject ROI means (subjects as the sample; ``p_subjects``) and the paired bootstrap
    over the test images (the same resamples for both instructions and every subject, the
    difference averaged over subjects; ``p_images``, with its 95% interval ``ci_low`` /
    ``ci_high``). All subjects see the same test images, so the t-test alone treats those
    images as fixed and finds "differences" on a world where nothing is planted; the
    bootstrap covers the images. ``p`` is the larger of the two; Benjamini-Hochberg runs over
    the whole family the chart tests (every ROI x instruction against the reference), and
    stars come from that ``q``. Without a stored bootstrap (fits made before it existed, or a
    ``value`` other than ``nalign_mean``) only the t-test is used, and ``test`` says so.

    Parameters
    ----------
    table : DataFrame
        The ROI results table.
    across : {"subjects", "targets"}
        ``"subjects"``: the tests above (needs >= 2 subjects for the t-test; with one subject
        the bootstrap alone speaks for that subject); ``"targets"``: the targets of each ROI
        pooled over the chosen subjects (per-target normalised alignment; needs ``dataset``).
        Neighbouring targets are spatially correlated, so this is descriptive only: means
        and difference, no p, no stars.
    dataset : str, optional
        Default: the table's ``dataset`` column.

    Returns
    -------
    DataFrame with columns roi, instruction, n, test, mean_a, mean_b, difference, ci_low,
    ci_high, p_subjects, p_images, p, min_p, q, stars, descriptive.
    """
    from core.encoding.significance import compare_rois, fdr_bh, stars

    sub = table[(table["model"] == model) & (table["layer"] == int(layer))]
    if subjects:
        sub = sub[sub["subject"].isin(subjects)]
    if dataset is None and "dataset" in sub and not sub.empty:
        dataset = str(sub["dataset"].iloc[0])
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
                if ok.sum() >= 1:
                    a[roi], b[roi] = x[ok], y[ok]
        else:
            if dataset is None:
                raise ValueError("across='targets' needs the dataset name")
            a, b = _pooled_target_values(dataset, sub, model, layer, ins, reference, rois)
        if not a:
            continue
        tested = {r: v for r, v in a.items() if len(v) >= 2 or across == "targets"}
        if tested:
            res = compare_rois(tested, {r: b[r] for r in tested}, mode=across)
        else:
            res = pd.DataFrame({"roi": [], "n": [], "test": [], "mean_a": [], "mean_b": [],
                                "difference": [], "p": [], "min_p": [], "descriptive": []})  # fmt: skip
        res = _with_single_subject_rows(res, a, b)
        res["instruction"] = ins
        res["p_subjects"] = res["p"]
        boot = None
        if across == "subjects" and value == "nalign_mean" and dataset is not None:
            boot = _bootstrap_difference(dataset, sub, model, layer, ins, reference, ds)
        res = _combine_with_bootstrap(res, boot)
        out.append(res)
    if not out:
        return pd.DataFrame(columns=STAR_COLUMNS)
    family = pd.concat(out, ignore_index=True)
    # one family: every ROI x instruction the chart tests against the reference
    family["q"] = fdr_bh(family["p"].to_numpy(dtype=np.float64))
    family["stars"] = stars(family["q"].to_numpy())
    family.loc[family["descriptive"].astype(bool), "stars"] = ""
    return family[STAR_COLUMNS]


#: Columns of :func:`instruction_stars`.
STAR_COLUMNS = [
    "roi", "instruction", "n", "test", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
    "p_subjects", "p_images", "p", "min_p", "q", "stars", "descriptive",
]  # fmt: skip


def roi_winners(
    table: pd.DataFrame,
    model: str,
    layer: int,
    rois: list[str] | None = None,
    q_threshold: float = Q_THRESHOLD,
    ds=None,
) -> pd.DataFrame:
    """Per ROI, the chosen instruction, the runner-up, and whether the runner-up is
    distinguishable.

    Both are ranked by the cross-validated training score (:mod:`core.results.selection`);
    their difference is reported on the test set and tested as the stars are (the paired
    t-test across subjects AND the paired bootstrap over test images, :func:`instruction_stars`),
    with Benjamini-Hochberg across the ROIs.

    Returns
    -------
    DataFrame, one row per ROI: roi, winner, runner_up, winner_score, runner_up_score,
    difference, ci_low, ci_high, p, q, significant.
    """
    from core.encoding.significance import fdr_bh
    from core.results.selection import rank_instructions

    cols = ["roi", "winner", "runner_up", "winner_score", "runner_up_score", "difference",
            "ci_low", "ci_high", "p", "q", "significant"]  # fmt: skip
    sub = table[(table["model"] == model) & (table["layer"] == int(layer))]
    sub = sub[sub["instruction"] != IMAGE]
    if rois is None:
        rois = [r for r in dict.fromkeys(sub["roi"]) if r != "general"]
    if sub.duplicated(["instruction", "roi", "subject"]).any():
        # several rows of one instruction, ROI and subject: the general path handles them
        return _roi_winners_by_stars(sub, model, layer, rois, q_threshold, ds)[cols]
    ranked = rank_instructions(sub[sub["roi"].isin(rois)])
    # what instruction_stars(pair, model, layer, runner_up) gives for one ROI, computed directly:
    # the ROI's paired t-test alone (per ROI, so not over every ROI for every pair) and the
    # bootstrap once per (winner, runner-up) pair, each fit's bootstrap loaded once
    ins_col, roi_col = sub["instruction"].to_numpy(), sub["roi"].to_numpy()
    subj_col = sub["subject"].to_numpy()
    val_col = sub["nalign_mean"].to_numpy()
    cells: dict[tuple, tuple[list, dict]] = {}  # (instruction, roi) -> (subjects in order, values)
    for i, r, s, v in zip(ins_col, roi_col, subj_col, val_col, strict=True):
        got = cells.setdefault((i, r), ([], {}))
        got[0].append(s)
        got[1][s] = v
    subjects_of = {i: set(subj_col[ins_col == i]) for i in dict.fromkeys(ins_col)}
    has_dataset = "dataset" in sub
    first_dataset = {}
    if has_dataset:
        for i, d in zip(ins_col, sub["dataset"].to_numpy(), strict=True):
            first_dataset.setdefault(i, d)
    first_row = {i: k for k, i in reversed(list(enumerate(ins_col)))}
    draws: dict[tuple, object] = {}
    boots: dict[tuple, dict | None] = {}

    def boot_of(win, run):
        if (win, run) in boots:
            return boots[(win, run)]
        got = None
        if has_dataset:
            dataset = str(first_dataset[win if first_row[win] < first_row[run] else run])
            subjects = tuple(sorted(subjects_of[win] | subjects_of[run]))
            for ins in (win, run):
                if (ins, subjects) not in draws:
                    draws[(ins, subjects)] = _boot_draws(dataset, list(subjects), model, layer,
                                                         ins, ds)  # fmt: skip
            got = _bootstrap_from_draws(draws[(win, subjects)], draws[(run, subjects)])
            if got is not None:  # ROI -> (its first column, ci_low, ci_high, p_images)
                arrays = [got[c].to_numpy(np.float64) for c in ("ci_low", "ci_high", "p_images")]
                got = {r: (k, *arrays) for k, r in reversed(list(enumerate(got["roi"])))}
        boots[(win, run)] = got
        return got

    rows = []
    for roi, d in ranked.groupby("roi", sort=False):
        if len(d) < 2:
            continue
        win, run = d["instruction"].iloc[0], d["instruction"].iloc[1]
        diff = ci_low = ci_high = p = np.nan
        order, va = cells.get((win, roi), ([], {}))
        vb = cells.get((run, roi), ([], {}))[1]
        common = [s for s in order if s in vb]
        x = np.asarray([va[s] for s in common], dtype=np.float64)
        y = np.asarray([vb[s] for s in common], dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if len(x) >= 1:
            if len(x) >= 2:
                res = _compare_one(roi, x, y)
                diff, p_s = float(res["difference"]), float(res["p"])
            else:
                diff, p_s = float(x[0] - y[0]), np.nan
            boot = boot_of(win, run)
            if boot is None:
                p = p_s
            elif roi in boot:
                k, lows, highs, ps = boot[roi]
                ci_low, ci_high, p_i = lows[k], highs[k], ps[k]
                if np.isfinite(p_i):  # the intersection-union test; NaN without p_images
                    p = max(p_s, p_i) if np.isfinite(p_s) else p_i
        rows.append({
            "roi": roi, "winner": win, "runner_up": run,
            "winner_score": float(d["nalign_mean"].iloc[0]),
            "runner_up_score": float(d["nalign_mean"].iloc[1]),
            "difference": float(diff), "ci_low": float(ci_low), "ci_high": float(ci_high),
            "p": float(p),
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=[c for c in cols if c not in ("q", "significant")])
    out["q"] = fdr_bh(out["p"].to_numpy(float)) if len(out) else []
    out["significant"] = out["q"] < q_threshold
    return out[cols]


def _compare_one(roi, x, y):
    """The paired t-test row :func:`instruction_stars` gives one ROI."""
    from core.encoding.significance import compare_rois

    return compare_rois({roi: x}, {roi: y}, mode="subjects").iloc[0]


def _roi_winners_by_stars(sub, model, layer, rois, q_threshold=Q_THRESHOLD, ds=None) -> pd.DataFrame:
    """:func:`roi_winners` through :func:`instruction_stars` (one call per ROI): the general
    path, and the reference the direct one is tested against."""
    from core.encoding.significance import fdr_bh
    from core.results.selection import rank_instructions

    ranked = rank_instructions(sub[sub["roi"].isin(rois)])
    rows = []
    for roi, d in ranked.groupby("roi", sort=False):
        if len(d) < 2:
            continue
        win, run = d["instruction"].iloc[0], d["instruction"].iloc[1]
        pair = sub[sub["instruction"].isin([win, run])]
        st = instruction_stars(pair, model, layer, run, ds=ds)
        row = st[(st["roi"] == roi) & (st["instruction"] == win)]
        rows.append({
            "roi": roi, "winner": win, "runner_up": run,
            "winner_score": float(d["nalign_mean"].iloc[0]),
            "runner_up_score": float(d["nalign_mean"].iloc[1]),
            "difference": float(row["difference"].iloc[0]) if len(row) else np.nan,
            "ci_low": float(row["ci_low"].iloc[0]) if len(row) else np.nan,
            "ci_high": float(row["ci_high"].iloc[0]) if len(row) else np.nan,
            "p": float(row["p"].iloc[0]) if len(row) else np.nan,
        })  # fmt: skip
    cols = ["roi", "winner", "runner_up", "winner_score", "runner_up_score", "difference",
            "ci_low", "ci_high", "p"]  # fmt: skip
    out = pd.DataFrame(rows, columns=cols)
    out["q"] = fdr_bh(out["p"].to_numpy(float)) if len(out) else []
    out["significant"] = out["q"] < q_threshold
    return out


def metric_agreement(table: pd.DataFrame, model: str, layer: int) -> pd.DataFrame:
    """Do the two metrics rank the instructions alike? Per ROI, Kendall's tau between the
    instruction rankings under encoding (normalised alignment) and under representational
    similarity (``rsa``), both averaged over subjects; rankings that flip (tau <= 0) or whose
    winner changes are flagged (:func:`core.encoding.rsa.flag_flips`).

    Returns
    -------
    DataFrame, one row per ROI: roi, n_instructions, tau, p, top_a (encoding's best), top_b
    (RSA's best), top_agrees, n_discordant, n_pairs, flip, winner_changed, flagged; empty when
    the table has no RSA column or fewer than 2 instructions.
    """
    from core.encoding.rsa import flag_flips, ranking_agreement

    sub = table[(table["model"] == model) & (table["layer"] == int(layer))]
    sub = sub[sub["instruction"] != IMAGE]
    if "rsa" not in sub or sub["instruction"].nunique() < 2:
        return pd.DataFrame()
    enc = sub.pivot_table(index="instruction", columns="roi", values="nalign_mean")
    rsa = sub.pivot_table(index="instruction", columns="roi", values="rsa")
    rois = [r for r in dict.fromkeys(sub["roi"]) if r in enc and r in rsa]
    both = enc.index.intersection(rsa.index)  # pivot_table drops an all-NaN instruction
    enc, rsa = enc.loc[both, rois], rsa.loc[both, rois]
    # an instruction without a score under one metric (an RDM of a constant feature, e.g. an
    # answer length that never varies) is left out, then ROIs still missing a score
    scored = enc.notna().any(axis=1) & rsa.notna().any(axis=1)
    enc, rsa = enc[scored], rsa[scored]
    common = [r for r in rois if enc[r].notna().all() and rsa[r].notna().all()]
    if not common or len(enc) < 2:
        return pd.DataFrame()
    return flag_flips(ranking_agreement(enc[common], rsa[common]))


def winner_disagreement(winners: pd.DataFrame) -> tuple[float, int]:
    """Share of ROI pairs that both have a significant winner and whose winners differ (the
    ROI-specific claims :func:`roi_winners` makes; chance on a world with the same tuning
    everywhere).

    Returns
    -------
    share : float
        Over all ROI pairs (NaN with fewer than 2 ROIs).
    n_pairs : int
    """
    from itertools import combinations

    pairs = list(combinations(range(len(winners)), 2))
    if not pairs:
        return np.nan, 0
    sig = winners["significant"].to_numpy(bool)
    win = winners["winner"].to_numpy()
    return float(np.mean([sig[i] and sig[j] and win[i] != win[j] for i, j in pairs])), len(pairs)


def _with_single_subject_rows(res: pd.DataFrame, a: dict, b: dict) -> pd.DataFrame:
    """Rows for ROIs with a single subject (no t-test: p NaN)."""
    extra = [
        {"roi": r, "n": 1, "test": "none", "mean_a": float(a[r][0]), "mean_b": float(b[r][0]),
         "difference": float(a[r][0] - b[r][0]), "p": np.nan, "min_p": np.nan,
         "descriptive": False}
        for r in a if r not in set(res["roi"])
    ]  # fmt: skip
    if not extra:
        return res
    order = {r: i for i, r in enumerate(a)}
    both = pd.concat([res, pd.DataFrame(extra)], ignore_index=True)
    return both.sort_values("roi", key=lambda c: c.map(order)).reset_index(drop=True)


def _boot_draws(dataset, subjects, model, layer, ins, ds=None) -> tuple[list[str], np.ndarray] | None:
    """The stored bootstrap of ``ins`` for each subject: (ROI names, array of shape
    (n_subjects, n_boot, n_rois) of normalised alignment); None when one is missing."""
    from core.data.registry import open_dataset
    from core.results.fit import load_fit_bootstrap

    ds = ds if ds is not None else open_dataset(dataset)
    settings = grid_settings(dataset)
    names, draws = None, []
    for subject in subjects:
        try:
            rois, arrays = load_fit_bootstrap(
                ds, FitSpec(dataset, subject, model, ins, int(layer)), settings
            )
        except (ArtifactError, ValueError):
            return None
        if names is not None and (rois != names or arrays["nalign"].shape != draws[0].shape):
            return None
        names = rois
        draws.append(arrays["nalign"].astype(np.float64))
    return (names, np.stack(draws)) if draws else None


def _bootstrap_difference(dataset, sub, model, layer, ins, reference, ds=None) -> pd.DataFrame | None:
    """Per ROI, the paired bootstrap over test images of the difference ``ins - reference`` in
    normalised alignment, averaged over the subjects (the same resamples everywhere): columns
    roi, ci_low, ci_high, p_images. None when a fit's bootstrap is not stored."""
    subjects = sorted(sub["subject"].unique())
    a = _boot_draws(dataset, subjects, model, layer, ins, ds)
    b = _boot_draws(dataset, subjects, model, layer, reference, ds)
    return _bootstrap_from_draws(a, b)


def _bootstrap_from_draws(a, b) -> pd.DataFrame | None:
    """:func:`_bootstrap_difference` from the two instructions' :func:`_boot_draws`."""
    from core.encoding.bootstrap import bootstrap_pvalue, percentile_interval

    if a is None or b is None or a[0] != b[0] or a[1].shape != b[1].shape:
        return None
    mean = (a[1] - b[1]).mean(axis=0)  # (n_boot, n_rois): the same resamples in every subject
    ok = np.isfinite(mean).all(axis=0)
    ci = np.full((2, mean.shape[1]), np.nan)
    p = np.full(mean.shape[1], np.nan)
    if ok.any():
        ci[:, ok] = percentile_interval(mean[:, ok], 0.95, axis=0)
        p[ok] = bootstrap_pvalue(mean[:, ok], axis=0)
    return pd.DataFrame({"roi": a[0], "ci_low": ci[0], "ci_high": ci[1], "p_images": p})


def bootstrap_intervals(
    dataset: str, model: str, layer: int, instructions: list[str], subjects: list[str], ds=None
) -> pd.DataFrame:
    """95% intervals over resampled test images of each instruction's ROI score (normalised
    alignment, mean over ``subjects``, the same resamples in every subject).

    Returns
    -------
    DataFrame with columns roi, instruction, ci_low, ci_high (empty when a fit's bootstrap is
    not stored).
    """
    from core.encoding.bootstrap import percentile_interval

    out = []
    for ins in instructions:
        got = _boot_draws(dataset, sorted(subjects), model, layer, ins, ds)
        if got is None:
            return pd.DataFrame(columns=["roi", "instruction", "ci_low", "ci_high"])
        mean = got[1].mean(axis=0)
        ok = np.isfinite(mean).all(axis=0)
        ci = np.full((2, mean.shape[1]), np.nan)
        if ok.any():
            ci[:, ok] = percentile_interval(mean[:, ok], 0.95, axis=0)
        out.append(pd.DataFrame({"roi": got[0], "instruction": ins, "ci_low": ci[0],
                                 "ci_high": ci[1]}))  # fmt: skip
    return pd.concat(out, ignore_index=True)


def _combine_with_bootstrap(res: pd.DataFrame, boot: pd.DataFrame | None) -> pd.DataFrame:
    """``p`` = max(p_subjects, p_images) where both exist (the intersection-union test), the
    bootstrap alone for one subject, the t-test alone without a bootstrap."""
    if boot is None:
        res["ci_low"] = res["ci_high"] = res["p_images"] = np.nan
        res["test"] = [f"{t} (no bootstrap stored)" if t != "none" else t for t in res["test"]]
        return res
    res = res.merge(boot, on="roi", how="left")
    p_s, p_i = res["p_subjects"].to_numpy(float), res["p_images"].to_numpy(float)
    both = np.isfinite(p_s) & np.isfinite(p_i)
    res["p"] = np.where(both, np.maximum(p_s, p_i), np.where(np.isfinite(p_i), p_i, np.nan))
    res["test"] = np.where(both, "t-test across subjects AND bootstrap over test images",
                           np.where(np.isfinite(p_i), "bootstrap over test images (1 subject)",
                                    res["test"]))  # fmt: skip
    return res


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
    partition made from the dataset's current content with the last grid's settings, or None."""
    from core.data.registry import open_dataset
    from core.results.partition import PartitionSpec, partitions_dir

    ds = open_dataset(dataset)
    settings = grid_settings(dataset)
    for path in sorted(partitions_dir(dataset).glob("*.json")):
        try:
            info = read_json(path)
            spec = PartitionSpec(**info["spec"])
        except (ArtifactError, KeyError, TypeError):
            continue
        if (spec.subject, spec.model, spec.a, spec.b) != (subject, model, a, b):
            continue
        if info.get("key") != spec.key(ds, settings):
            continue  # made from other content or settings
        try:
            arrays = load_npz(path.with_suffix(".npz"))
        except ArtifactError:
            return None
        n = ds.subject(subject).n_targets
        return arrays if all(v.shape == (n,) for v in arrays.values()) else None
    return None


def partition_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over subjects of each variance part per ROI (rows of ``partitions.parquet``)."""
    from core.results.partition import PARTS

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


#: Normalisations of alignment offered beside each other (see :mod:`core.results.ceilings`).
CEILINGS = ("ncsnr", "cross-subject")


def model_comparison(
    table: pd.DataFrame, layer_mode: str, instruction_mode: str, ceiling: str = "ncsnr",
    ds=None,
) -> pd.DataFrame:  # fmt: skip
    """One row per subject x model x ROI for the models-and-baselines chart.

    Parameters
    ----------
    table : DataFrame
        The ROI results table.
    layer_mode : {"best per model", "last"}
        Best: the layer with the highest cross-validated training score in the general mask
        (:func:`core.results.selection.best_layers`; the test set only reports it).
    instruction_mode : str
        ``"mean over instructions"``, ``"best instruction per ROI"`` or an instruction id
        (image-only baselines always use their single ``"image"`` row).
    ceiling : {"ncsnr", "cross-subject"}
        ``nalign_mean`` normalised by NSD's ncsnr ceiling (the table's), or by the cross-subject
        ceiling (:func:`core.results.ceilings.cross_subject_normalized`; needs ``ds``).
    """
    if table.empty:
        return table
    if ceiling not in CEILINGS:
        raise ValueError(f"unknown ceiling {ceiling!r}; expected one of {CEILINGS}")
    if layer_mode == "last":
        layers = table.groupby("model")["layer"].max().to_dict()
    else:
        layers = best_layers(table)
    sel = table[table["layer"] == table["model"].map(layers)]
    if ceiling == "cross-subject":
        from core.results.ceilings import cross_subject_normalized

        sel = cross_subject_normalized(ds, sel, grid_settings(ds.name))
        sel = sel.assign(nalign_mean=sel["nalign_cross"])
    return _pick_instruction(sel, instruction_mode)


def _pick_instruction(sel: pd.DataFrame, instruction_mode: str) -> pd.DataFrame:
    keys = ["subject", "model", "layer", "roi"]
    if instruction_mode == "mean over instructions":
        return sel.groupby(keys, sort=False)[["nalign_mean", "r_mean"]].mean().reset_index()
    if instruction_mode == "best instruction per ROI":
        # chosen per model, layer and ROI by the cross-validated training score, reported on
        # the test set (never the test score's own maximum: the winner's curse)
        chosen = chosen_instructions(sel, by=("model", "layer", "roi"))
        merged = sel.merge(chosen, on=["model", "layer", "roi", "instruction"])
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


def alpha_edge_warnings(table: pd.DataFrame, roi: str = "general") -> list[str]:
    """Fits whose selected alpha sits at either end of the grid for more than
    :data:`~core.results.fit.ALPHA_EDGE_WARN` of their targets (in ``roi``): the grid may be
    too narrow there, and those targets' encoders are over- or under-regularised.

    Returns
    -------
    warnings : list of str
        One line per model x layer with such fits (empty when none, or when the table predates
        the diagnostic).
    """
    from core.results.fit import ALPHA_EDGE_WARN

    if table.empty or "alpha_low_frac" not in table:
        return []
    sub = table[table["roi"] == roi].copy()
    sub["edge"] = sub["alpha_low_frac"].fillna(0) + sub["alpha_high_frac"].fillna(0)
    bad = sub[sub["edge"] > ALPHA_EDGE_WARN]
    out = []
    for (model, layer), g in bad.groupby(["model", "layer"], sort=False):
        low, high = g["alpha_low_frac"].mean(), g["alpha_high_frac"].mean()
        out.append(
            f"{model} layer {layer}: in {len(g)} fit(s), {100 * g['edge'].max():.0f}% of targets with "
            "cross-validated signal "
            f"(at most) chose an alpha at the edge of the grid (on average {100 * low:.0f}% the "
            f"smallest, {100 * high:.0f}% the largest); widen the alpha grid for these fits"
        )
    return out


def pvalue_note(table: pd.DataFrame, dataset: str | None = None) -> str:
    """One sentence on how per-target significance was computed in ``table`` (method, smallest
    attainable p), or that it was not computed."""
    from core.encoding.significance import pvalue_method_description
    from core.results.tables import grid_settings

    methods = set(table["p_values"].dropna()) if "p_values" in table else set()
    if not methods or methods == {"none"}:
        return "Fraction significant: not computed (p-values were switched off for these fits)."
    settings = grid_settings(dataset) if dataset else None
    n_test = None
    if dataset is not None:
        try:
            from core.data.registry import open_dataset

            n_test = int(open_dataset(dataset).shared_test_ids().size)
        except Exception:
            n_test = None
    parts = []
    for method in sorted(methods - {"none"}):
        if n_test:
            n_perm = settings.n_permutations if settings else 0
            gen = table[table["roi"] == "general"] if "roi" in table else table
            n_targets = int(gen["n_targets"].max()) if "n_targets" in gen and len(gen) else None
            parts.append(
                pvalue_method_description(
                    method, n_test, n_perm, n_targets if method == "permutation" else None
                )
            )
        else:
            parts.append(f"{method} p-values")
    return " ".join(parts) + " Targets are significant at BH-FDR q < 0.05 within each fit."
