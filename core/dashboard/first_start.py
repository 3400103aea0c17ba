"""A first start, without streamlit: whether the app starts the grid by itself (:func:`due`),
what its progress reads (:func:`progress`) and when the pages have something new to show
(:func:`landed_stamp`).

On a home with the simulated demo and no results, the app starts ``python -m core first-start``
in the background with no button (the encoders of the view Explore opens on first, then the
whole grid; see :mod:`core.pipeline.commands.first_start`), as the grid's job, so every page's
empty state shows it running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.pipeline.commands.first_start import STEP


def has_results(dataset: str) -> bool:
    """Whether the home holds any result of ``dataset``: a results table or a stored fit."""
    from core.results.fit import fits_dir
    from core.results.tables import results_dir

    if (results_dir(dataset) / "roi_scores.parquet").exists():
        return True
    return any(fits_dir(dataset).glob("*.json"))


def due(ds, job_state: str) -> bool:
    """Whether the app should start the first start now: ``ds`` is the simulated demo, the home
    has no result of it, and its grid job never ran here (``job_state`` ``"absent"``; a failed
    or finished job is not restarted by itself)."""
    return ds.kind == "demo" and job_state == "absent" and not has_results(ds.name)


def landed_stamp(dataset: str) -> str:
    """Changes when a page has something new to show while a first start runs: the results
    table is rewritten or an encoder is stored (not at every fit the grid stores, so a page
    that reruns on it does not rerun every few seconds)."""
    from core.config import subdir
    from core.results.tables import results_dir

    table = results_dir(dataset) / "roi_scores.parquet"
    mtime = table.stat().st_mtime_ns if table.exists() else 0
    n_encoders = sum(1 for _ in subdir("encoders").iterdir())
    return f"{mtime}|{n_encoders}"


@dataclass(frozen=True)
class FirstStartProgress:
    """What a running first start is doing: ``step`` (1 or 2) of ``steps``, its ``text``, and
    the current progress bar's ``detail`` (what it counts, ``"done/total"``) and ``fraction``
    done (``""`` and None when no bar has started in this step)."""

    step: int
    steps: int
    text: str
    detail: str
    fraction: float | None


_STEP_LINE = re.compile(re.escape(STEP) + r" (\d+)/(\d+)\] (.*)")
_BAR = re.compile(r"(?:^|[\s|])([^|:]*?):? *\d+%\|[^|]*\| *(\d+)/(\d+) \[")


def progress(log: str) -> FirstStartProgress | None:
    """The progress of a first start from its log (None before its first step line)."""
    step = None
    detail, fraction = "", None
    for line in log.splitlines():
        found = _STEP_LINE.search(line)
        if found:
            step, detail, fraction = found, "", None
            continue
        bars = _BAR.findall(line)
        if bars:
            what, done, total = bars[-1][0].strip(), int(bars[-1][1]), int(bars[-1][2])
            detail = f"{what}: {done}/{total}" if what else f"{done}/{total}"
            fraction = done / total if total else None
    if step is None:
        return None
    return FirstStartProgress(int(step.group(1)), int(step.group(2)), step.group(3), detail,
                              fraction)  # fmt: skip
