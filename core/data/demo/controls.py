"""Scoring the pipeline's claims against what a demo world planted (negative controls, issue 21).

The planted world plants one driver per area; the control worlds plant nothing image-linked
(``null``) or the same tuning everywhere (``uniform``; see :mod:`core.data.demo.subjects`). On
a control world the pipeline's claims must appear at their nominal rate. These functions turn
per-target scores or the results table into the rates the tests and the README report:

- :func:`planted_instruction_sets` and :func:`cv_best_share`: the share of targets whose
  cross-validated best instruction is the one naming their planted driver, with its chance level.

ROI winners and whether ROI pairs disagree (the app's claims) are results views:
:func:`core.results.views.roi_winners` and :func:`core.results.views.winner_disagreement`.
Nothing here imports the pipeline or the results: the inputs are plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.data.demo.subjects import DRIVER_GROUPS, GROUP_INSTRUCTIONS


def planted_instruction_sets(driver: np.ndarray) -> list[frozenset[str]]:
    """The instruction(s) naming each target's planted driver.

    Parameters
    ----------
    driver : int array of shape (n_targets,)
        Index into :data:`~core.data.demo.subjects.DRIVER_GROUPS` (a ``truth.npz``'s ``driver``
        or ``planted_world_driver``).

    Returns
    -------
    sets : list of frozenset of str, length n_targets
        Empty for ``none`` and ``mixed`` (no single planted instruction).
    """
    names = [GROUP_INSTRUCTIONS.get(g, ()) for g in DRIVER_GROUPS]
    return [frozenset(names[int(d)]) if 0 <= int(d) < len(names) else frozenset() for d in driver]


@dataclass(frozen=True)
class DriverShare:
    """How often the cross-validated best instruction names the planted driver.

    Attributes
    ----------
    share : float
        Share of the scored targets whose CV-best instruction is (one of) the instruction(s)
        naming their planted driver; NaN when no target was scored.
    chance : float
        The same share expected when the best instruction is drawn uniformly at random: the mean
        over scored targets of (number of planted instructions offered) / (instructions offered).
    n_targets : int
        Targets scored: a planted driver named by at least one offered instruction and finite
        scores for every instruction.
    """

    share: float
    chance: float
    n_targets: int


def cv_best_share(
    cv_scores: np.ndarray,
    instructions: Sequence[str],
    planted: Sequence[frozenset[str]] | np.ndarray,
    mask: np.ndarray | None = None,
) -> DriverShare:
    """Share of targets whose cross-validated best instruction is their planted driver.

    Parameters
    ----------
    cv_scores : array of shape (n_instructions, n_targets)
        Per-target cross-validated score on the training images (e.g. the fits' ``cv_score``),
        one row per instruction; the test set plays no part in choosing the best.
    instructions : sequence of str, length n_instructions
        Instruction id of each row.
    planted : sequence of frozenset of str, length n_targets, or int array of shape (n_targets,)
        The planted instruction(s) per target (:func:`planted_instruction_sets`), or driver codes
        (converted with it). On a control world pass the ``planted_world_driver`` to get the
        share a world without area-specific tuning reaches by chance.
    mask : bool array of shape (n_targets,), optional
        Only these targets (e.g. ROI AND general mask).

    Returns
    -------
    DriverShare

    Raises
    ------
    ValueError
        When the shapes disagree.
    """
    scores = np.asarray(cv_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(instructions):
        raise ValueError(
            f"cv_scores must be (n_instructions={len(instructions)}, n_targets), got {scores.shape}"
        )
    if isinstance(planted, np.ndarray) and np.issubdtype(planted.dtype, np.integer):
        planted = planted_instruction_sets(planted)
    if len(planted) != scores.shape[1]:
        raise ValueError(f"planted has {len(planted)} targets, cv_scores {scores.shape[1]}")
    offered = list(instructions)
    # which rows name the planted driver: (n_instructions, n_targets)
    hit = np.array([[ins in p for p in planted] for ins in offered], dtype=bool).reshape(
        len(offered), -1
    )
    ok = hit.any(0) & np.isfinite(scores).all(0)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    n = int(ok.sum())
    if n == 0:
        return DriverShare(np.nan, np.nan, 0)
    best = np.argmax(scores[:, ok], axis=0)
    share = float(hit[:, ok][best, np.arange(n)].mean())
    chance = float(hit[:, ok].sum(0).mean() / len(offered))
    return DriverShare(share, chance, n)
