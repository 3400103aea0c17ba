"""Shared test fixtures: a hermetic environment, a seeded rng, and the small demo world.

The environment is made hermetic *before* ``core`` is imported: BrainPrompt's home (and with it
the config and data folders of pycortex, nilearn, Hugging Face and matplotlib) points at a fresh
temporary folder, and Hugging Face is offline.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_TEST_HOME = Path(tempfile.mkdtemp(prefix="brainprompt-test-home-"))
atexit.register(shutil.rmtree, _TEST_HOME, True)
os.environ["BRAINPROMPT_HOME"] = str(_TEST_HOME)
for _var in ("XDG_CONFIG_HOME", "HF_HOME", "NILEARN_DATA", "MPLCONFIGDIR"):
    os.environ.pop(_var, None)  # core.setup_environment() points them inside the test home
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import core  # noqa: E402,F401  (runs setup_environment with the test home)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator, fresh for each test."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def test_home() -> Path:
    """The temporary BrainPrompt home used by this test session."""
    return _TEST_HOME


@pytest.fixture(scope="session")
def demo_small_root(tmp_path_factory) -> Path:
    """The small demo world, built once per test session (seed 0) where ``open_dataset("demo")``
    finds it (inside the test home)."""
    from core.data.demo.build import build_demo, default_demo_root

    root = default_demo_root()
    build_demo(root=root, size="small", seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def demo_small(demo_small_root):
    """The small demo world opened as a Dataset."""
    from core.data.demo.store import open_demo

    return open_demo(path=demo_small_root)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
