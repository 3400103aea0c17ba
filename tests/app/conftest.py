"""App fixtures: the small demo world plus a tiny grid in the session's test home.

The grid is a subset of tests/pipeline's (same tiny LLaVA, instructions and settings; without the
random twin, to keep this folder near two minutes), so in a full test session each side finds the
other's extraction and fits on disk and reuses them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
PAGES = [
    "pages/explore.py",
    "pages/instructions.py",
    "pages/models.py",
    "pages/partitions.py",
    "pages/pipeline.py",
    "pages/paper.py",
    "pages/ground_truth.py",
]

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def tiny_grid(demo_small, tiny_llava_source):
    """The results of a tiny grid on the small demo (tiny LLaVA and its vision tower; IU1 and
    IC; partitions of IC vs IU1)."""
    from transformers.utils import logging

    from core.models.registry import register_local
    from core.pipeline.grid import GridConfig, run_grid
    from core.results.fit import FitSettings

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    register_local("tiny-llava", tiny_llava_source)
    config = GridConfig(
        dataset="demo",
        models=["tiny-llava", "vision:tiny-llava"],
        instructions=["IU1", "IC"],
        settings=FitSettings(n_permutations=50, max_new_tokens=6, n_boot=200),
        pairs=[("IC", "IU1")],
        extract_batch_size=16,
    )
    return run_grid(config, progress=False)


@pytest.fixture
def app(tiny_grid):
    """A fresh AppTest of the router (caches cleared), not yet run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(APP, default_timeout=120)
