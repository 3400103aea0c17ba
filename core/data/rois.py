"""ROI masks of a subject's targets: one home for the masks every fit, partition and view uses.

Each ROI is its label AND the general visual mask (NSD's nsdgeneral): targets outside it never
enter an ROI mean. ``"general"`` is the whole general mask.
"""

from __future__ import annotations

import numpy as np

from core.data.dataset import SubjectData

#: The ROI name used for "all targets of the general visual mask".
GENERAL = "general"


def roi_masks(subject: SubjectData) -> dict[str, np.ndarray]:
    """ROI masks (label AND general mask) plus the whole general mask as ``"general"``."""
    t = subject.targets
    masks = {GENERAL: t.general_mask.astype(bool)}
    for roi in t.roi_names():
        mask = t.roi_mask(roi)
        if mask.any():
            masks[roi] = mask
    return masks


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
