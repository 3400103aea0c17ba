"""The command lines that make results, for messages that tell a user what to run (and for the
background jobs the app starts): one home for how fit settings are spelled on the command line.
"""

from __future__ import annotations

import shlex

from core.results.fit import FitSettings


def settings_args(s: FitSettings) -> list[str]:
    """The command-line options that give back the :class:`FitSettings` ``s`` (the inverse of
    the ``run`` / ``fit`` options of ``python -m core``).

    Returns
    -------
    args : list of str
        Every option, defaults included.
    """
    args = [
        "--alphas", s.alphas, "--folds", str(s.cv), "--solver", s.solver, "--backend", s.backend,
        "--permutations", str(s.n_permutations), "--p-values", s.p_values,
        "--max-new-tokens", str(s.max_new_tokens), "--device", s.device, "--dtype", s.dtype,
        "--method", s.method,
    ]  # fmt: skip
    return args + ([] if s.prefix_reuse else ["--no-prefix-reuse"])


def changed_settings_args(s: FitSettings) -> list[str]:
    """Only the options of :func:`settings_args` whose value differs from the default, so a
    printed command stays short and still gives back ``s``."""
    base = _options(settings_args(FitSettings()))
    return [x for k, v in _options(settings_args(s)).items() if base.get(k) != v
            for x in (k, *v)]  # fmt: skip


#: Fit settings the command line does not set (a grid started from Python may change them).
UNSPELLED = ("n_boot", "seed")


def unspelled_settings(s: FitSettings) -> dict[str, object]:
    """Settings of ``s`` that differ from the defaults and have no command-line option: a
    printed command would not give them back."""
    base = FitSettings()
    return {k: getattr(s, k) for k in UNSPELLED if getattr(s, k) != getattr(base, k)}


def _options(args: list[str]) -> dict[str, tuple[str, ...]]:
    """``["--a", "1", "--flag"]`` -> ``{"--a": ("1",), "--flag": ()}``."""
    out: dict[str, tuple[str, ...]] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            out[arg] = (args[i + 1],) if has_value else ()
    return out


def run_command(
    dataset: str,
    models: list[str],
    instructions: list[str] | None = None,
    subjects: list[str] | None = None,
    settings: FitSettings | None = None,
) -> str:
    """``python -m core run ...`` for these models, with the settings of the results it adds
    to (a run with other settings would replace the table's rows of the old settings).

    Parameters
    ----------
    instructions, subjects : list of str, optional
        Omitted from the command when None (the grid's defaults: the paper's 10, every subject).
    settings : FitSettings, optional
        Default: the defaults (no option printed).
    """
    args = ["python", "-m", "core", "run", "--dataset", dataset, "--models", *models]
    if instructions:
        args += ["--instructions", *instructions]
    if subjects:
        args += ["--subjects", *subjects]
    args += changed_settings_args(settings or FitSettings())
    return shlex.join(args)
