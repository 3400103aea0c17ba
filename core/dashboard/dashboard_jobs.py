"""The background work the dashboard starts, without streamlit: ``python -m core`` arguments and
job names for one encoder (:func:`encoder_job_args`, :func:`encoder_job_name`), one instruction
pair's partition (:func:`partition_job_args`, :func:`slug`), the grid (:func:`grid_job_args`,
:func:`grid_job_name`) or a first start (:func:`first_start_args`);
what the ``encoder`` and ``partition`` commands run is :mod:`core.pipeline.on_demand`.
"""

from __future__ import annotations

from core.pipeline.commands.grid import settings_args
from core.results.fit import IMAGE
from core.results.tables import grid_settings


def grid_job_name(dataset: str) -> str:
    """The job name of the grid on ``dataset`` (one per dataset, whoever starts it: the Pipeline
    page, an empty state's button or a first start)."""
    return f"grid-{dataset}"


def load_job_name(dataset: str) -> str:
    """The job name of a dataset's first load (one per dataset)."""
    return f"load-{slug(dataset)}"


def load_job_args(dataset: str) -> list[str]:
    """``python -m core`` arguments of a dataset's first load: every uncached subject read once
    and cached (see :func:`core.data.nsd_cache.pending_subjects`)."""
    return ["datasets", "load", dataset]


def first_start_args(dataset: str) -> list[str]:
    """``python -m core`` arguments of a first start: the encoders of the view Explore opens
    on, then the default grid (see :mod:`core.pipeline.commands.first_start`)."""
    return ["first-start", "--dataset", dataset]


def encoder_job_name(subject: str, model: str, instruction: str, layer: int) -> str:
    """A job name (letters, digits, dashes) for computing one encoder."""
    from core.hashing import content_key

    key = content_key("encoder-job", {"s": subject, "m": model, "i": instruction, "l": layer})
    return f"encoder-{key[:12]}"


def encoder_job_args(
    dataset: str, subject: str, model: str, instruction: str, layer: int
) -> list[str]:
    """``python -m core`` arguments that extract (if needed) and fit one encoder, keeping it."""
    s = grid_settings(dataset)
    args = ["encoder", "--dataset", dataset, "--subject", subject, "--model", model]
    if instruction != IMAGE:
        args += ["--instruction", instruction]
    return [*args, "--layer", str(int(layer)), *settings_args(s)]


def partition_job_args(dataset: str, model: str, a: str, b: str) -> list[str]:
    """``python -m core`` arguments that compute a new instruction pair's partition."""
    return ["partition", "--dataset", dataset, "--model", model, "--a", a, "--b", b,
            *settings_args(grid_settings(dataset))]  # fmt: skip


def slug(text: str) -> str:
    """Letters, digits and dashes only (for job names and file names)."""
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def grid_job_args(
    dataset: str,
    models: list[str],
    instructions: list[str],
    permutations: int,
    max_new_tokens: int,
    subjects: list[str] | None = None,
    p_values: str = "analytic",
) -> list[str]:
    """``python -m core run`` arguments for the grid (resumable); ``p_values`` is the per-target
    p-value method (``permutations`` only counts for ``"permutation"``)."""
    args = ["run", "--dataset", dataset]
    if models:
        args += ["--models", *models]
    if instructions:
        args += ["--instructions", *instructions]
    if subjects:
        args += ["--subjects", *subjects]
    args += ["--p-values", p_values, "--permutations", str(int(permutations))]
    args += ["--max-new-tokens", str(int(max_new_tokens))]
    return args
