"""Tiny random-weight models of each family, built once per session from configs (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers():
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """family -> folder of a tiny model, built lazily."""
    from core.models.tiny import BUILDERS

    root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = str(BUILDERS[family](root / family, seed=0))
        return built[family]

    return get


@pytest.fixture(scope="session")
def images():
    """Three small RGB images of different sizes."""
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for h, w in ((40, 50), (32, 32), (60, 30))
    ]


@pytest.fixture(scope="session")
def questions():
    """Three instructions of different lengths."""
    return [
        "What is in this image?",
        "Describe the most dominant color in the image",
        "List any food items visible.",
    ]
