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
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per worker process (BLAS, OpenMP, torch and the subprocesses tests start):
    # the workers share the cores, and oversubscribed BLAS threads slow every worker down
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    # and the encoder fits stay in the worker: spawning fit processes costs each grid ~10 s of
    # CPU the other worker needed (tests/pipeline/test_grid.py checks worker-process fits)
    os.environ["BRAINPROMPT_JOBS"] = "1"

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
    from core.data.demo.build import default_demo_root
    from tests.small_demo import install_small_demo

    return install_small_demo(default_demo_root())


@pytest.fixture(scope="session")
def tiny_llava_source(tmp_path_factory) -> Path:
    """A tiny random LLaVA checkpoint folder (seed 0), built once per test process; read only
    (a test that changes weights copies it first)."""
    from transformers.utils import logging

    from core.models.tiny import build_llava

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    return build_llava(tmp_path_factory.mktemp("tiny-llava-src") / "llava", seed=0)


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


#: Test files that share what a session fixture left in the test home (the recovery grid's
#: embeddings and fits are what the reproduction reuses): one worker runs them, in this order.
SHARED_STATE_GROUPS = {
    "tests/pipeline/test_recovery.py": "demo-grid",
    "tests/pipeline/test_reproduce.py": "demo-grid",
}
#: The longest files first, so that with ``-n 2`` (``--dist loadfile``, in scripts/test.sh) no
#: long file starts last and leaves one worker idle (measured with ``--durations``).
LONGEST_FIRST = (
    "tests/pipeline/test_recovery.py",
    "tests/pipeline/test_reproduce.py",
    "tests/pipeline/test_null_world.py",
    "tests/app/test_app_browser.py",
    "tests/pipeline/test_ray_engine.py",
    "tests/pipeline/test_provenance.py",
    "tests/pipeline/test_discover.py",
)


def _relative(item) -> str:
    return Path(str(item.path)).resolve().relative_to(Path(str(item.config.rootpath))).as_posix()


def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist's ``--dist loadfile``: one test file per worker at a time (its module
    fixtures are built once), the files of :data:`SHARED_STATE_GROUPS` as one unit. (xdist's
    ``loadgroup`` marks do not reach its scheduler under pytest 9: nodes no longer take a
    renamed id.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_STATE_GROUPS.get(path, path)

    return FileGroups(config, log)


def pytest_collection_modifyitems(config, items):
    """The longest files first (:data:`LONGEST_FIRST`), so no long file starts last."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_relative(item), len(rank)))  # stable: file order kept
