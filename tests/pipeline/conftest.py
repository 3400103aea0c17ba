"""A tiny grid on the small demo world with a tiny random LLaVA (no downloads, ~30 s once)."""

from __future__ import annotations

import pytest

from core.pipeline.grid import GridConfig
from core.results.fit import FitSettings


@pytest.fixture(scope="session")
def tiny_llava(tiny_llava_source):
    from core.models.registry import register_local

    register_local("tiny-llava", tiny_llava_source)
    return "tiny-llava"


@pytest.fixture(scope="session")
def grid_config(tiny_llava, demo_small) -> GridConfig:
    return GridConfig(
        dataset="demo",
        models=[tiny_llava, f"random:{tiny_llava}@3", f"vision:{tiny_llava}"],
        instructions=["IU1", "IC"],
        settings=FitSettings(n_permutations=50, max_new_tokens=6, n_boot=200),
        pairs=[("IC", "IU1")],
        extract_batch_size=16,
    )


@pytest.fixture(scope="session")
def grid_table(grid_config):
    from core.pipeline.grid import run_grid

    return run_grid(grid_config, progress=False)


def populate_home(root, llava_source):
    """Fill the current BrainPrompt home (``root``) with the small demo (seed 0) and a copy of
    a tiny LLaVA registered as ``tiny-llava``; returns the model's folder (a copy, so a test
    may change its weights)."""
    import shutil
    from pathlib import Path

    from core.data.demo.build import default_demo_root
    from core.models.registry import register_local
    from tests.small_demo import install_small_demo

    install_small_demo(default_demo_root())
    folder = Path(root) / "llava"
    if not folder.exists():
        shutil.copytree(llava_source, folder)
    register_local("tiny-llava", folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llava_folder(tiny_llava_source):
    """A tiny random LLaVA checkpoint folder (not registered)."""
    return tiny_llava_source
