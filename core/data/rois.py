"""ROI masks of a subject's targets: one home for the masks every fit, partition and view uses.

Each ROI is its label AND the general visual mask (NSD's nsdgeneral): targets outside it never
enter an ROI mean. ``"general"`` is the whole general mask.

A dataset labelled finely (NSD and Algonauts: V1v, V1d, FFA-1, ...) also gets the paper's ROIs
(V1 = V1v + V1d, FFA = FFA-1 + FFA-2, ...) and their groups (early visual, bodies, faces, places,
words) from :mod:`core.data.roi_groups`, so every fit scores all three levels; a page shows one
*view* of them (:data:`VIEWS`): ``"paper"`` (the default: the groups, each followed by its paper
ROIs; maps outline the paper ROIs) or ``"fine"`` (every label the dataset names, streams
included). A dataset labelled at the paper's level (the demo: V1, FFA, ...) gets nothing added and
both views show its labels as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.data.dataset import SubjectData
from core.data.roi_groups import DEFAULT_LEVEL, ROI_GROUPS, paper_name, roi_catalog

#: The ROI name used for "all targets of the general visual mask".
GENERAL = "general"

#: The two views a page offers: the paper's ROIs and groups, or every fine label.
VIEWS = (DEFAULT_LEVEL, "fine")
DEFAULT_VIEW = DEFAULT_LEVEL
#: What the page toggle calls each view.
VIEW_LABELS = {"paper": "paper groups", "fine": "NSD fine labels"}


def roi_masks(subject: SubjectData) -> dict[str, np.ndarray]:
    """ROI masks (label AND general mask) plus the whole general mask as ``"general"``."""
    t = subject.targets
    masks = {GENERAL: t.general_mask.astype(bool)}
    for roi in t.roi_names():
        mask = t.roi_mask(roi)
        if mask.any():
            masks[roi] = mask
    if is_fine_labelled(masks):  # the paper's ROIs and groups beside the fine labels
        for entry in roi_catalog(t):
            if entry.level != "fine":
                masks.setdefault(entry.name, entry.mask)
    return masks


def is_fine_labelled(names: Iterable[str]) -> bool:
    """True when some ROI name is a finer label of a paper ROI under another name (NSD's
    ``V1v``, ``FFA-1``); then the paper's ROIs and groups are added and the views differ."""
    return any(paper_name(n) not in (None, n) for n in names)


def _unions(names: list[str]) -> set[str]:
    """The paper ROIs among ``names`` that unite other names present (V1 when V1v is there)."""
    return {paper_name(n) for n in names if paper_name(n) not in (None, n)}


def view_rois(names: Iterable[str], view: str = DEFAULT_VIEW) -> list[str]:
    """The ROIs a view shows, in its order, among ``names`` (a results table's ROIs or a mask
    dict's keys); ``"general"`` first when present.

    Parameters
    ----------
    names : iterable of str
    view : {"paper", "fine"}
        ``"paper"``: each group followed by its paper ROIs (early visual, V1, V2, V3, hV4,
        bodies, EBA, ...); ``"fine"``: every fine label, in the given order. Names of a dataset
        labelled at the paper's level come back as given, in either view.

    Returns
    -------
    rois : list of str
    """
    if view not in VIEWS:
        raise ValueError(f"unknown ROI view {view!r}; expected one of {VIEWS}")
    names = list(dict.fromkeys(names))
    if not is_fine_labelled(names):
        return names
    head = [GENERAL] if GENERAL in names else []
    present = set(names)
    if view == "fine":
        derived = _unions(names) | set(ROI_GROUPS)
        return head + [n for n in names if n != GENERAL and n not in derived]
    out = []
    for group, rois in ROI_GROUPS.items():
        out += [n for n in (group, *rois) if n in present]
    return head + out


def map_rois(names: Iterable[str], view: str = DEFAULT_VIEW) -> list[str]:
    """The ROIs a view outlines and names on flat and 3D maps: :func:`view_rois` without the
    general mask and without the groups (a group's border is its members' outer border)."""
    return [n for n in view_rois(names, view) if n != GENERAL and n not in ROI_GROUPS]


def select_view(table, view: str = DEFAULT_VIEW):
    """The rows of a results table (column ``roi``) that a view shows, in the view's ROI order
    (a table of a dataset labelled at the paper's level comes back unchanged).

    A finely labelled table without any group row (scored before the paper's ROIs were added)
    shows its fine labels in either view.

    Parameters
    ----------
    table : DataFrame
        With a ``roi`` column (other tables come back unchanged).
    view : {"paper", "fine"}

    Returns
    -------
    table : DataFrame
    """
    if "roi" not in getattr(table, "columns", ()) or table.empty:
        return table
    names = list(dict.fromkeys(table["roi"].astype(str)))
    if not is_fine_labelled(names):
        return table
    if view == "paper" and not set(ROI_GROUPS) & set(names):
        view = "fine"
    order = {n: k for k, n in enumerate(view_rois(names, view))}
    rank = table["roi"].map(order)
    keep = rank.notna().to_numpy()
    return table[keep].iloc[np.argsort(rank[keep].to_numpy(), kind="stable")]


def view_masks(masks: dict[str, np.ndarray], view: str = DEFAULT_VIEW) -> dict[str, np.ndarray]:
    """The masks a view outlines on maps (see :func:`map_rois`), in its order."""
    return {n: masks[n] for n in map_rois(masks, view)}


def roi_masks_only(subject: SubjectData) -> dict[str, np.ndarray]:
    """The ROI masks without the whole general mask (for outlines and ROI means)."""
    return {k: v for k, v in roi_masks(subject).items() if k != GENERAL}


def first_roi_labels(masks: dict[str, np.ndarray], n_targets: int) -> np.ndarray:
    """The first ROI (in ``masks`` order) each target belongs to, '' for none.

    Returns
    -------
    labels : array of shape (n_targets,), object (str)
    """
    out = np.full(n_targets, "", dtype=object)
    for roi, mask in reversed(list(masks.items())):
        out[mask] = roi
    return out
