"""The vision tower of a VLM as the vision-only baseline ("vision:<model>")."""

from __future__ import annotations

import numpy as np

from core.models.adapters import load_adapter
from core.models.registry import resolve


def test_vision_prefix_resolves_to_the_tower(tiny_models):
    spec = resolve(f"vision:{tiny_models('llava')}")
    assert spec.family == "vision_tower" and spec.role == "vision"
    assert spec.slug().startswith("vision-")
    assert spec.identity() != resolve(tiny_models("llava")).identity()


def test_tower_features_per_layer(tiny_models, images):
    adapter = load_adapter(f"vision:{tiny_models('llava')}", device="cpu")
    feats = adapter.encode_images(images[:2])
    assert feats.shape[:2] == (2, adapter.n_hidden_states)
    assert np.isfinite(feats).all()
    assert not adapter.generative


def test_random_tower_twin_differs(tiny_models, images):
    trained = load_adapter(f"vision:{tiny_models('llava')}", device="cpu")
    twin = load_adapter(f"random:vision:{tiny_models('llava')}@7", device="cpu")
    assert resolve(f"random:vision:{tiny_models('llava')}@7").random_init
    a, b = trained.encode_images(images[:1]), twin.encode_images(images[:1])
    assert a.shape == b.shape and not np.allclose(a, b)
