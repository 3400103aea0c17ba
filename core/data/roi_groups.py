"""ROIs at the paper's level and in its groups, built from NSD's fine labels.

NSD labels ROIs finely (``prf-visualrois`` 1 V1v, 2 V1d, ...; ``floc-faces`` 2 FFA-1, 3 FFA-2, ...);
the paper reports V1, FFA, ... and groups them as early visual, bodies, faces, places and words.
Three levels, every mask being label AND the general mask (``nsdgeneral``):

- ``"group"``: :data:`ROI_GROUPS`, e.g. faces = OFA + FFA + mTL-faces + aTL-faces (a whole
  category-selective family, like the paper's "floc-places (OPA/PPA/RSC)"; early visual = V1-hV4);
- ``"paper"`` (the default view): :data:`PAPER_ROIS`, e.g. V1 = V1v + V1d, FFA = FFA-1 + FFA-2,
  FBA = FBA-1 + FBA-2, VWFA = VWFA-1 + VWFA-2; single-label ROIs keep their name (EBA, PPA, ...);
- ``"fine"``: every label a dataset names (:meth:`core.data.dataset.TargetSet.roi_names`),
  ``streams`` included.

The same names hold for func1pt8mm and fsaverage (both use NSD's ``<family>.mgz.ctab``), for
Algonauts 2023 (NSD's families on fsaverage) and for the demo, whose labels already are
paper-level (its ``V1`` counts as the paper's V1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import TargetSet

#: Paper-level ROI -> the fine NSD labels it unites (the name itself too, for datasets labelled at
#: the paper's level). Ordered as the paper's figures: early visual, bodies, faces, places, words.
PAPER_ROIS: dict[str, tuple[str, ...]] = {
    "V1": ("V1", "V1v", "V1d"),
    "V2": ("V2", "V2v", "V2d"),
    "V3": ("V3", "V3v", "V3d"),
    "hV4": ("hV4",),
    "EBA": ("EBA",),
    "FBA": ("FBA", "FBA-1", "FBA-2"),
    "mTL-bodies": ("mTL-bodies",),
    "OFA": ("OFA",),
    "FFA": ("FFA", "FFA-1", "FFA-2"),
    "mTL-faces": ("mTL-faces",),
    "aTL-faces": ("aTL-faces",),
    "OPA": ("OPA",),
    "PPA": ("PPA",),
    "RSC": ("RSC",),
    "OWFA": ("OWFA",),
    "VWFA": ("VWFA", "VWFA-1", "VWFA-2"),
    "mfs-words": ("mfs-words",),
    "mTL-words": ("mTL-words",),
}

#: ROI group -> its paper-level ROIs (each group is one NSD family: prf-visualrois, floc-bodies,
#: floc-faces, floc-places, floc-words).
ROI_GROUPS: dict[str, tuple[str, ...]] = {
    "early visual": ("V1", "V2", "V3", "hV4"),
    "bodies": ("EBA", "FBA", "mTL-bodies"),
    "faces": ("OFA", "FFA", "mTL-faces", "aTL-faces"),
    "places": ("OPA", "PPA", "RSC"),
    "words": ("OWFA", "VWFA", "mfs-words", "mTL-words"),
}

#: The levels, coarse to fine; "paper" is the default view.
ROI_LEVELS = ("group", "paper", "fine")
DEFAULT_LEVEL = "paper"


@dataclass(frozen=True)
class RoiEntry:
    """One ROI at one level.

    Parameters
    ----------
    name : str
        e.g. ``"faces"``, ``"FFA"``, ``"FFA-1"``.
    level : {"group", "paper", "fine"}
    members : tuple of str
        The fine labels present in the dataset that make it up (``("FFA-1", "FFA-2")``).
    group : str or None
        The group it belongs to (None for groups and labels outside every group, e.g. streams).
    mask : array of shape (n_targets,), bool
        Label AND general mask.
    """

    name: str
    level: str
    members: tuple[str, ...]
    group: str | None
    mask: np.ndarray


def paper_name(fine: str) -> str | None:
    """The paper-level ROI of a fine label (``"V1v"`` -> ``"V1"``); None outside them (streams)."""
    return next((p for p, members in PAPER_ROIS.items() if fine in members), None)


def group_of(name: str) -> str | None:
    """The group of a paper-level ROI or fine label (``"FFA-1"`` -> ``"faces"``), or None."""
    paper = name if name in PAPER_ROIS else paper_name(name)
    return next((g for g, rois in ROI_GROUPS.items() if paper in rois), None)


def paper_members(targets: TargetSet) -> dict[str, tuple[str, ...]]:
    """Paper-level ROI -> the fine labels of ``targets`` that make it up (ROIs without any are
    left out)."""
    present = set(targets.roi_names())
    out = {}
    for paper, members in PAPER_ROIS.items():
        found = tuple(m for m in members if m in present)
        if found:
            out[paper] = found
    return out


def roi_catalog(targets: TargetSet, drop_empty: bool = True) -> list[RoiEntry]:
    """Every ROI of ``targets`` at the three levels: groups, then paper-level ROIs, then fine labels.

    Parameters
    ----------
    targets : TargetSet
    drop_empty : bool
        Leave out ROIs without a target inside the general mask.

    Returns
    -------
    entries : list of RoiEntry
    """
    paper = paper_members(targets)
    fine_masks = {n: targets.roi_mask(n, within_general=True) for n in targets.roi_names()}
    entries = []
    for group, rois in ROI_GROUPS.items():
        fine = tuple(m for r in rois for m in paper.get(r, ()))
        if fine:
            mask = np.logical_or.reduce([fine_masks[m] for m in fine])
            entries.append(RoiEntry(group, "group", fine, None, mask))
    for name, fine in paper.items():
        mask = np.logical_or.reduce([fine_masks[m] for m in fine])
        entries.append(RoiEntry(name, "paper", fine, group_of(name), mask))
    for name, mask in fine_masks.items():
        entries.append(RoiEntry(name, "fine", (name,), group_of(name), mask))
    return [e for e in entries if e.mask.any() or not drop_empty]


def level_masks(
    targets: TargetSet, level: str = DEFAULT_LEVEL, drop_empty: bool = True
) -> dict[str, np.ndarray]:
    """ROI name -> mask (label AND general mask) at one level.

    Parameters
    ----------
    targets : TargetSet
    level : {"group", "paper", "fine"}
    drop_empty : bool
        Leave out ROIs without a target inside the general mask.

    Returns
    -------
    masks : dict of str to array of shape (n_targets,), bool
    """
    if level not in ROI_LEVELS:
        raise ValueError(f"unknown ROI level {level!r}; expected one of {ROI_LEVELS}")
    return {e.name: e.mask for e in roi_catalog(targets, drop_empty) if e.level == level}
