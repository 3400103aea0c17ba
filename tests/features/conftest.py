"""A tiny in-memory dataset and a tiny LLaVA for the feature-store, extraction and cache tests."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.dataset import Dataset


class FakeStimuli:
    """An in-memory :class:`core.data.dataset.StimulusSet` of small random images."""

    def __init__(self, n: int = 6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.ids = np.arange(100, 100 + n, dtype=np.int64)
        self._pixels = {int(i): rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in self.ids}
        self.loads = 0

    def load_image(self, stimulus_id: int) -> Image.Image:
        self.loads += 1
        return Image.fromarray(self._pixels[int(stimulus_id)])

    def attributes(self):
        return None


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers():
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


@pytest.fixture
def fake_dataset(request) -> Dataset:
    """A 6-image dataset with a name unique to the test (so shards never collide)."""
    name = "fake-" + request.node.name.replace("[", "-").replace("]", "")
    return Dataset(
        name=name,
        kind="demo",
        simulated=True,
        stimuli=FakeStimuli(),
        subject_names=[],
        loader=None,
        # each test's images are its own stimulus set (shards are keyed by stimulus content,
        # and the fake images are the same in every test)
        stimulus_identity={"kind": "fake", "test": name},
    )


@pytest.fixture(scope="session")
def tiny_llava(tiny_llava_source) -> str:
    return str(tiny_llava_source)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> str:
    from core.models.tiny import build_vit

    return str(build_vit(tmp_path_factory.mktemp("models") / "vit", seed=0))
