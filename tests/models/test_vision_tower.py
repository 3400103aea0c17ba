"""The vision tower of a VLM as the vision-only baseline ("vision:<model>").

Each tower's pooled features are checked against a hand computation that uses transformers' own
``output_hidden_states`` (or, for IDEFICS v1's encoder, which has none, the layers run one by
one), image by image, so the adapter's hooks, masks and batching are checked too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models.adapters import load_adapter
from core.models.adapters.vision_tower import (
    TOWER_TYPES,
    find_tower,
    tile_inputs,
    tower_type,
)
from core.models.registry import ModelError, resolve
from core.models.tiny import TOWER_BUILDERS, build_idefics3, build_instructblip

TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def tower_folders(tiny_models, tmp_path_factory):
    """name -> folder of a tiny checkpoint: the families, the tower-only builders, Idefics3 with
    image splitting, and InstructBLIP with a non-degenerate tower (its default vision weights
    are ~1e-10, so every state would be ~0)."""
    root = tmp_path_factory.mktemp("towers")
    built: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in built:
            if name in TOWER_BUILDERS:
                built[name] = str(TOWER_BUILDERS[name](root / name, seed=0))
            elif name == "idefics3_split":
                built[name] = str(build_idefics3(root / name, seed=0, image_splitting=True))
            elif name == "instructblip_init":
                folder = build_instructblip(root / name, seed=0, vision_initializer_range=0.2)
                built[name] = str(folder)
            else:
                built[name] = tiny_models(name)
        return built[name]

    return get


@pytest.fixture(scope="module")
def towers(tower_folders):
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_adapter(f"vision:{tower_folders(name)}", device="cpu")
        return cache[name]

    return get


def image_processor(folder: str):
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder)


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


# ----- the pooling rule is explicit ---------------------------------------------------------
@pytest.mark.parametrize(
    "name, tower_class, pooling",
    [
        ("llava", "CLIPVisionModel", "cls"),
        ("instructblip", "InstructBlipVisionModel", "cls"),
        ("idefics", "IdeficsVisionTransformer", "cls"),
        ("idefics3", "Idefics3VisionTransformer", "mean_patch"),
        ("idefics2", "Idefics2VisionTransformer", "mean_patch"),
        ("smolvlm", "SmolVLMVisionTransformer", "mean_patch"),
        ("qwen2_vl", "Qwen2VisionTransformerPretrainedModel", "mean_patch"),
        ("qwen2_5_vl", "Qwen2_5_VisionTransformerPretrainedModel", "mean_patch"),
    ],
)
def test_tower_pooling_is_declared(towers, name, tower_class, pooling):
    adapter = towers(name)
    assert type(adapter.tower).__name__ == tower_class
    assert adapter.tower_pooling == pooling == TOWER_TYPES[tower_class].pooling
    assert adapter.n_hidden_states == 3  # 2 layers + the first layer's input


def test_unknown_tower_is_an_error():
    with pytest.raises(ModelError, match="no pooling rule for vision tower Linear"):
        tower_type(torch.nn.Linear(2, 2), "mystery")
    with pytest.raises(ModelError, match="no vision tower found on Linear"):
        find_tower(torch.nn.Linear(2, 2), "mystery")


def test_cls_pooling_is_refused_without_a_cls_token(towers, images):
    with pytest.raises(ValueError, match="no CLS token"):
        towers("idefics3").encode_images(images[:1], pooling="cls")


def test_generate_uses_the_tower_pooling(towers, images):
    for name in ("llava", "idefics3"):
        adapter = towers(name)
        out = adapter.generate(images, ["ignored"] * 3)
        np.testing.assert_array_equal(
            np.stack([r.embeddings for r in out]), adapter.encode_images(images)
        )
        assert out[0].n_generated_tokens == 0 and out[0].text == ""


# ----- hand computations, image by image -----------------------------------------------------
@pytest.mark.parametrize(
    "name, tower_path", [("llava", "model.vision_tower"), ("instructblip_init", "vision_model")]
)
def test_clip_style_towers_pool_the_cls_state(towers, tower_folders, images, name, tower_path):
    adapter = towers(name)
    tower = adapter.model
    for part in tower_path.split("."):
        tower = getattr(tower, part)
    proc = image_processor(tower_folders(name))
    feats = adapter.encode_images(images)
    patch_mean = adapter.encode_images(images, layers=[-1], pooling="mean_patch")
    for i, image in enumerate(images):
        pixel_values = proc(images=[image], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            hidden = tower(pixel_values=pixel_values, output_hidden_states=True).hidden_states
        assert len(hidden) == feats.shape[1]
        for layer, h in enumerate(hidden):
            np.testing.assert_allclose(feats[i, layer], h[0, 0].numpy(), **TOL)
            assert not np.allclose(h[0, 0].numpy(), h[0, 1].numpy(), atol=1e-3)  # not degenerate
        np.testing.assert_allclose(patch_mean[i, 0], hidden[-1][0, 1:].mean(0).numpy(), **TOL)


def test_idefics_v1_tower_pools_the_cls_state(towers, tower_folders, images):
    """IDEFICS v1's encoder reports no hidden states: run its layers one by one."""
    adapter = towers("idefics")
    tower = adapter.model.model.vision_model
    proc = image_processor(tower_folders("idefics"))
    feats = adapter.encode_images(images)
    for i, image in enumerate(images):
        pixel_values = proc(images=[image], return_tensors="pt")
        with torch.inference_mode():
            h = tower.pre_layrnorm(tower.embeddings(pixel_values))
            hidden = [h]
            for layer in tower.encoder.layers:
                h = layer(h, None)
                h = h[0] if isinstance(h, tuple) else h
                hidden.append(h)
        for layer, h in enumerate(hidden):
            np.testing.assert_allclose(feats[i, layer], h[0, 0].numpy(), **TOL)
            assert not np.allclose(h[0, 0].numpy(), h[0, 1].numpy(), atol=1e-3)  # not degenerate


@pytest.mark.parametrize("name", ["idefics3", "idefics3_split", "smolvlm", "idefics2"])
def test_siglip_towers_average_valid_patches_of_real_tiles(towers, tower_folders, images, name):
    """Tile by tile: keep tiles whose pixel mask is not empty and the patches with any valid
    pixel (transformers' rule), average those patch states over the image's tiles."""
    adapter = towers(name)
    tower = adapter.model.model.vision_model
    patch = tower.config.patch_size
    proc = image_processor(tower_folders(name))
    feats = adapter.encode_images(images)
    n_tiles, n_partial = [], 0
    for i, image in enumerate(images):
        pix = proc(images=[[image]], return_tensors="pt")
        tiles = pix["pixel_values"][0]
        masks = pix["pixel_attention_mask"][0].bool()
        per_layer = [[] for _ in range(feats.shape[1])]
        real = [t for t in range(tiles.shape[0]) if masks[t].any()]
        n_tiles.append(len(real))
        for t in real:
            m = masks[t].unfold(0, patch, patch).unfold(1, patch, patch).sum((-1, -2)) > 0
            n_partial += int(not m.all())
            with torch.inference_mode():
                out = tower(
                    pixel_values=tiles[t : t + 1],
                    patch_attention_mask=m[None],
                    output_hidden_states=True,
                )
            for layer, h in enumerate(out.hidden_states):
                per_layer[layer].append(h[0][m.flatten()])
        for layer, states in enumerate(per_layer):
            expected = torch.cat(states).mean(0).numpy()
            np.testing.assert_allclose(feats[i, layer], expected, **TOL)
    assert not np.allclose(feats[0], feats[1], atol=1e-3)  # not degenerate
    if name in ("idefics3_split", "smolvlm"):
        assert n_tiles == [5, 5, 3]  # split tiles plus the global one
    if name == "idefics2":
        assert n_tiles == [5, 5, 5] and n_partial > 0  # crops padded to the whole image


@pytest.mark.parametrize("name", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_towers_average_each_image_patches(towers, tower_folders, images, name):
    adapter = towers(name)
    tower = adapter.model.model.visual
    proc = image_processor(tower_folders(name))
    feats = adapter.encode_images(images)
    n_patches = []
    for i, image in enumerate(images):
        pix = proc(images=[image], return_tensors="pt")
        n_patches.append(int(pix["image_grid_thw"].prod()))
        with torch.inference_mode():
            out = tower(
                pix["pixel_values"], grid_thw=pix["image_grid_thw"], output_hidden_states=True
            )
        assert len(out.hidden_states) == feats.shape[1]
        for layer, h in enumerate(out.hidden_states):
            assert h.shape[0] == n_patches[-1]
            np.testing.assert_allclose(feats[i, layer], h.mean(0).numpy(), **TOL)
    assert len(set(n_patches)) > 1  # images of different patch counts in one batch
    assert not np.allclose(feats[0], feats[1], atol=1e-3)  # not degenerate


# ----- tile bookkeeping ------------------------------------------------------------------------
def test_tile_inputs_drops_padded_tiles(tower_folders, images):
    proc = image_processor(tower_folders("smolvlm"))
    pix = proc(images=[[im] for im in images], return_tensors="pt")
    assert pix["pixel_values"].shape[:2] == (3, 5)  # the third image is padded with 2 tiles
    tiles, patch_mask, owner = tile_inputs(pix["pixel_values"], pix["pixel_attention_mask"], 8)
    assert tiles.shape[0] == 13 and owner.tolist() == [0] * 5 + [1] * 5 + [2] * 3
    assert patch_mask.shape == (13, 4, 4) and patch_mask.all()
    # without a mask, all-zero tiles are the padding (the Idefics2/3 rule)
    tiles2, _, owner2 = tile_inputs(pix["pixel_values"], None, 8)
    assert torch.equal(tiles2, tiles) and torch.equal(owner2, owner)


def test_tile_inputs_masks_padded_patches():
    pixel_values = torch.randn(1, 2, 3, 16, 16)
    mask = torch.zeros(1, 2, 16, 16, dtype=torch.long)
    mask[0, 0] = 1
    mask[0, 1, :9, :8] = 1  # rows 0-8 reach into the second patch row
    tiles, patch_mask, owner = tile_inputs(pixel_values, mask, 8)
    assert tiles.shape[0] == 2 and owner.tolist() == [0, 0]
    assert patch_mask[0].all()
    assert patch_mask[1].tolist() == [[True, False], [True, False]]
    mask[0, 0] = 0
    mask[0, 1] = 0
    with pytest.raises(ValueError, match="no real tile"):
        tile_inputs(pixel_values, mask, 8)
