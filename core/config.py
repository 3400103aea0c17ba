"""Where BrainPrompt keeps its files, and the hermetic environment it runs in.

Everything BrainPrompt writes (datasets, caches, artifacts, third-party config) lives under one
home folder: ``$BRAINPROMPT_HOME`` if set, else ``cache/`` at the repository root. Third-party
libraries that write config or data (pycortex, nilearn, Hugging Face, matplotlib) are pointed at
folders inside it, so a fresh virtual environment never trips on another one's config.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Bumped whenever a change alters what an artifact contains; part of every artifact key.
CODE_VERSION = "0.1.0"

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """Return the BrainPrompt home folder, creating it (mode 0700) if needed.

    Returns
    -------
    path : Path
        ``$BRAINPROMPT_HOME`` when set, else ``<repo>/cache``.
    """
    env = os.environ.get("BRAINPROMPT_HOME")
    path = Path(env).expanduser().resolve() if env else REPO_ROOT / "cache"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def subdir(*parts: str) -> Path:
    """Return (and create) a folder under :func:`home`, e.g. ``subdir("datasets", "demo")``."""
    path = home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def setup_environment() -> None:
    """Point third-party config and data folders at project-local folders (idempotent).

    Sets, unless already set: ``XDG_CONFIG_HOME`` (pycortex writes its options.cfg there on first
    import), ``HF_HOME``, ``HF_HUB_OFFLINE=1`` (no hub downloads at run time), ``NILEARN_DATA``,
    ``MPLCONFIGDIR`` and ``MPLBACKEND=Agg``.
    """
    base = home() / "env"
    defaults = {
        "XDG_CONFIG_HOME": str(base / "xdg"),
        "HF_HOME": str(base / "huggingface"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NILEARN_DATA": str(base / "nilearn"),
        "MPLCONFIGDIR": str(base / "matplotlib"),
        "MPLBACKEND": "Agg",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    for key in ("XDG_CONFIG_HOME", "HF_HOME", "NILEARN_DATA", "MPLCONFIGDIR"):
        Path(os.environ[key]).mkdir(parents=True, exist_ok=True)
