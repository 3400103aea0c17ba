"""The target inspector, without streamlit: what one target (or a selection of targets) of a
subject does under every instruction and layer of a model.

- :func:`alignment_cube` stacks the stored per-target scores of every (instruction, layer) fit of
  a subject and model (normalized alignment, r, q, selected alpha) once;
- :func:`target_card` describes one target: its ROI labels, noise ceiling, best instruction,
  selected alpha and its alignment per instruction and layer (:func:`target_profile`);
- :func:`selection_frames` summarises a selection (clicked, box-selected or an ROI) as
  distributions;
- :func:`planted_truth` gives the simulated demo's planted ground truth of targets, beside them;
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.results.fit import IMAGE, Q_THRESHOLD


@dataclass(frozen=True)
class AlignmentCube:
    """Per-target scores of every stored (instruction, layer) fit of one subject and model.

    Attributes
    ----------
    instructions : list of str
    layers : list of int
    nalign, r, q, alpha, cv : arrays of shape (n_instructions, n_layers, n_targets), float32
        NaN where a fit is not stored (``cv``: the cross-validated training score that chooses
        the best instruction).
    nc : array of shape (n_targets,), float32
        Noise ceiling (fraction of explainable variance).
    """

    instructions: list[str]
    layers: list[int]
    nalign: np.ndarray
    r: np.ndarray
    q: np.ndarray
    alpha: np.ndarray
    nc: np.ndarray
    cv: np.ndarray

    @property
    def n_targets(self) -> int:
        return int(self.nc.shape[0])

    def index(self, instruction: str, layer: int) -> tuple[int, int] | None:
        if instruction not in self.instructions or int(layer) not in self.layers:
            return None
        return self.instructions.index(instruction), self.layers.index(int(layer))


def alignment_cube(
    dataset: str, subject: str, model: str, table: pd.DataFrame, ds=None
) -> AlignmentCube:
    """Load the stored per-target scores of every (instruction, layer) of ``subject`` x ``model``
    listed in the ROI results ``table`` (``ds``: the dataset already opened, optional).

    Raises
    ------
    ArtifactError
        When no fit of the pair is stored.
    """
    from core.data.registry import open_dataset
    from core.results.views import target_scores
    from core.storage import ArtifactError

    ds = ds if ds is not None else open_dataset(dataset)
    rows = table[(table["subject"] == subject) & (table["model"] == model)]
    instructions = list(dict.fromkeys(rows["instruction"]))
    layers = sorted(int(x) for x in rows["layer"].unique())
    if not instructions or not layers:
        raise ArtifactError(f"no stored fit of {subject} x {model}")
    combos = set(zip(rows["instruction"], rows["layer"].astype(int), strict=True))
    arrays: dict[str, np.ndarray] = {}
    nc = None
    for i, ins in enumerate(instructions):
        for j, lay in enumerate(layers):
            if (ins, lay) not in combos:
                continue
            try:
                s = target_scores(dataset, subject, model, ins, lay, ds=ds)
            except ArtifactError:
                continue
            if not arrays:
                n = s["nalign"].shape[0]
                shape = (len(instructions), len(layers), n)
                arrays = {k: np.full(shape, np.nan, np.float32)
                          for k in ("nalign", "r", "q", "alpha", "cv")}  # fmt: skip
            arrays["nalign"][i, j] = s["nalign"]
            arrays["r"][i, j] = s["r"]
            arrays["q"][i, j] = s["q"] if "q" in s else np.nan
            arrays["alpha"][i, j] = s["best_alpha"] if "best_alpha" in s else np.nan
            arrays["cv"][i, j] = s["cv_score"] if "cv_score" in s else np.nan
            nc = s["nc"] if nc is None else nc
    if not arrays:
        raise ArtifactError(f"no per-target scores stored for {subject} x {model}")
    return AlignmentCube(instructions, layers, nc=np.asarray(nc, np.float32), **arrays)


def target_rois(targets, index: int) -> dict[str, str]:
    """The ROI label of target ``index`` in every ROI family ('' where unlabelled), and whether
    it is in the general visual mask."""
    out = {}
    for fam_name, fam in targets.roi_families.items():
        value = int(fam.labels[index])
        out[fam_name] = fam.names.get(value, "") if value > 0 else ""
    out["general mask"] = "yes" if bool(targets.general_mask[index]) else "no"
    return out


def target_profile(cube: AlignmentCube, index: int) -> pd.DataFrame:
    """Long table (instruction, layer, nalign, r, q, alpha) of one target, for a small chart."""
    rows = []
    for i, ins in enumerate(cube.instructions):
        for j, lay in enumerate(cube.layers):
            v = cube.nalign[i, j, index]
            if np.isnan(cube.r[i, j, index]):
                continue
            rows.append({
                "instruction": ins, "layer": lay, "nalign": float(v), "r": float(cube.r[i, j, index]),
                "q": float(cube.q[i, j, index]), "alpha": float(cube.alpha[i, j, index]),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["instruction", "layer", "nalign", "r", "q", "alpha"])


def best_instruction(cube: AlignmentCube, index: int, layer: int) -> tuple[str | None, bool]:
    """(the instruction with the highest cross-validated training score for this target at
    ``layer``, whether its test fit is significant, q < 0.05). Chosen without the test set
    (:mod:`core.results.selection`); image-only rows are never "best instructions"."""
    from core.results.selection import best_target_labels

    if int(layer) not in cube.layers:
        return None, False
    j = cube.layers.index(int(layer))
    keep = np.array([ins != IMAGE for ins in cube.instructions])
    cv = np.where(keep, cube.cv[:, j, index], np.nan)[:, None]
    i = int(best_target_labels(cv)[0])
    if i < 0:
        return None, False
    return cube.instructions[i], bool(cube.q[i, j, index] < Q_THRESHOLD)


def target_card(
    cube: AlignmentCube, targets, index: int, instruction: str, layer: int
) -> dict[str, object]:
    """What the inspector shows for one target (JSON-able values).

    Keys: target, hemisphere, the ROI families' labels, ``general mask``, ``noise ceiling``,
    ``nalign`` and ``r`` (at ``instruction`` and ``layer``), ``selected alpha``,
    ``best instruction`` (at ``layer``) and whether it is significant.
    """
    card: dict[str, object] = {"target": int(index)}
    geo = getattr(targets, "geometry", None)
    if geo is not None:
        card["hemisphere"] = "left" if int(geo.hemi[index]) == 0 else "right"
        card["vertex"] = int(geo.vertex[index])
    card.update(target_rois(targets, index))
    card["noise ceiling"] = float(cube.nc[index])
    at = cube.index(instruction, layer)
    if at is not None:
        i, j = at
        card["nalign"] = float(cube.nalign[i, j, index])
        card["r"] = float(cube.r[i, j, index])
        card["q"] = float(cube.q[i, j, index])
        card["selected alpha"] = float(cube.alpha[i, j, index])
    best, significant = best_instruction(cube, index, layer)
    card["best instruction"] = best or "—"
    card["best is significant"] = significant
    return card


def selection_frames(
    cube: AlignmentCube, targets, idx: np.ndarray, instruction: str, layer: int
) -> dict[str, pd.DataFrame]:
    """Distributions over a selection of targets.

    Returns
    -------
    frames : dict of DataFrame
        ``values``: one row per selected target (target, nalign, r, alpha, nc, best, roi);
        ``profile``: mean and s.e.m. of nalign over the selection per instruction and layer;
        ``best``: how many selected targets each instruction predicts best (significant only);
        ``rois``: how many selected targets each ROI holds.
    """
    idx = np.asarray(idx, dtype=np.int64)
    at = cube.index(instruction, layer)
    nan = np.full(idx.size, np.nan)
    i, j = at if at is not None else (None, None)
    best_names = np.full(idx.size, "not significant", dtype=object)
    if int(layer) in cube.layers:
        lay_j = cube.layers.index(int(layer))
        r = cube.r[:, lay_j][:, idx].astype(np.float64)  # (instructions, selected)
        keep = np.array([ins != IMAGE for ins in cube.instructions])[:, None] & np.isfinite(r)
        r = np.where(keep, r, -np.inf)
        win = r.argmax(0)
        q = cube.q[:, lay_j][:, idx][win, np.arange(idx.size)]
        ok = np.isfinite(r[win, np.arange(idx.size)]) & (q < Q_THRESHOLD)
        names = np.array(cube.instructions, dtype=object)
        best_names[ok] = names[win[ok]]
    roi_names = np.full(idx.size, "", dtype=object)
    for fam in targets.roi_families.values():  # the first family's label wins
        labels = np.asarray(fam.labels)[idx]
        lookup = {int(v): n for v, n in fam.names.items() if int(v) > 0}
        named = np.array([lookup.get(int(v), "") for v in labels], dtype=object)
        fill = (roi_names == "") & (named != "")
        roi_names[fill] = named[fill]
    roi_names[roi_names == ""] = "no ROI"
    values = pd.DataFrame({
        "target": idx,
        "nalign": cube.nalign[i, j, idx] if at else nan,
        "r": cube.r[i, j, idx] if at else nan,
        "alpha": cube.alpha[i, j, idx] if at else nan,
        "nc": cube.nc[idx],
        "best": best_names.astype(str),
        "roi": roi_names.astype(str),
    })  # fmt: skip
    prof = []
    for a, ins in enumerate(cube.instructions):
        for b, lay in enumerate(cube.layers):
            v = cube.nalign[a, b, idx].astype(np.float64)
            v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            sem = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
            prof.append({"instruction": ins, "layer": lay, "mean": float(v.mean()), "sem": sem,
                         "n": int(v.size)})  # fmt: skip
    profile = pd.DataFrame(prof, columns=["instruction", "layer", "mean", "sem", "n"])
    best = values["best"].value_counts().rename_axis("instruction").reset_index(name="targets")
    rois = values["roi"].value_counts().rename_axis("roi").reset_index(name="targets")
    return {"values": values, "profile": profile, "best": best, "rois": rois}


def planted_truth(dataset, subject: str) -> dict[str, np.ndarray] | None:
    """The simulated demo's planted ground truth of ``subject`` (None for real data).

    Returns
    -------
    truth : dict of arrays of shape (n_targets,) or None
        Every array of the subject's ``truth.npz`` (``planted_ncsnr``, ``driver``, ...) plus
        ``driver_name`` (the planted driver in words).
    """
    if getattr(dataset, "kind", None) != "demo":
        return None
    from core.data.demo.store import load_truth
    from core.storage import ArtifactError

    try:
        truth = dict(load_truth(getattr(dataset.stimuli, "root", None), subject))
    except (ArtifactError, OSError):
        return None
    if "driver" in truth:
        from core.data.demo.subjects import DRIVER_GROUPS

        names = np.array([*DRIVER_GROUPS, "?"], dtype=object)
        drv = np.asarray(truth["driver"]).astype(np.int64)
        truth["driver_name"] = names[np.clip(drv, 0, len(DRIVER_GROUPS))]
    return truth


def truth_card(truth: dict[str, np.ndarray] | None, index: int) -> dict[str, object]:
    """One target's planted truth as a flat dict (empty for real data)."""
    if not truth:
        return {}
    out: dict[str, object] = {}
    for key, arr in truth.items():
        arr = np.asarray(arr)
        if arr.ndim != 1 or index >= arr.shape[0]:
            continue
        v = arr[index]
        out[key] = float(v) if np.issubdtype(arr.dtype, np.floating) else (
            int(v) if np.issubdtype(arr.dtype, np.integer) else str(v)
        )
    return out


def planted_driver_counts(truth: dict, idx: np.ndarray, n_targets: int) -> pd.DataFrame | None:
    """How many of the selected targets ``idx`` each planted driver drives (the demo's ground
    truth; None when the truth has no driver names). Columns: planted driver, targets."""
    names = truth.get("driver_name")
    if names is None or np.asarray(names).shape != (n_targets,):
        return None
    return (pd.Series(np.asarray(names)[idx]).value_counts()
            .rename_axis("planted driver").reset_index(name="targets"))  # fmt: skip
