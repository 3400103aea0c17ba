"""Every family end to end with a tiny random-weight model."""

import numpy as np
import pytest
import torch

from core.models.adapters import GenerationOptions, load_adapter

FAMILIES = ["llava", "instructblip", "idefics", "idefics3", "qwen2_vl"]
OPTS = GenerationOptions(max_new_tokens=6)


@pytest.fixture(scope="module")
def adapters(tiny_models):
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = load_adapter(tiny_models(family), device="cpu")
        return cache[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_family_end_to_end(family, adapters, images, questions):
    a = adapters(family)
    assert a.family == family and a.dtype == torch.float32
    out = a.generate(images, questions, OPTS)
    assert len(out) == 3
    for r in out:
        assert r.embeddings.shape == (a.n_hidden_states, 32) and r.embeddings.dtype == np.float32
        assert 1 <= r.n_generated_tokens <= 6 and isinstance(r.text, str)
        assert np.isfinite(r.embeddings).all()
    # greedy decoding is deterministic, to the byte
    again = a.generate(images, questions, OPTS)
    for x, y in zip(out, again, strict=True):
        assert x.text == y.text and x.embeddings.tobytes() == y.embeddings.tobytes()
    # batched (left padded) == one by one
    for im, q, r in zip(images, questions, out, strict=True):
        single = a.generate([im], [q], OPTS)[0]
        assert single.text == r.text and single.n_generated_tokens == r.n_generated_tokens
        np.testing.assert_allclose(single.embeddings, r.embeddings, atol=1e-5)
    # a layer subset, negative indices, last-token pooling
    sub = a.generate(images[:1], questions[:1], GenerationOptions(6, layers=(0, -1)))[0]
    assert sub.layers == (0, a.n_hidden_states - 1)
    np.testing.assert_allclose(sub.embeddings, out[0].embeddings[[0, -1]], atol=1e-6)
    last = a.generate(images[:1], questions[:1], GenerationOptions(6, pooling="last"))[0]
    assert last.embeddings.shape == out[0].embeddings.shape


def test_embedding_is_mean_over_generated_tokens_only(adapters, images, questions):
    """Recompute the hidden states with one forward pass over prompt + response."""
    a = adapters("llava")
    r = a.generate(images[:1], questions[:1], OPTS)[0]
    inputs = a.encode(images[:1], [a.prompt(questions[0])])
    with torch.inference_mode():
        gen = a.model.generate(**inputs, **a.generation_kwargs(OPTS))
        seq = gen.sequences
        full = a.model(
            input_ids=seq, pixel_values=inputs["pixel_values"], output_hidden_states=True
        )
    n_prompt = inputs["input_ids"].shape[1]
    n = r.n_generated_tokens
    assert n >= 2
    for layer in range(a.n_hidden_states):
        states = full.hidden_states[layer][0, n_prompt : n_prompt + n - 1]
        np.testing.assert_allclose(r.embeddings[layer], states.mean(0).numpy(), atol=1e-5)


def test_padding_after_eos_is_excluded(adapters, images, questions):
    """Pick a stop token that ends the items at different steps: batched still equals single."""
    a = adapters("llava")
    inputs = a.encode(images, [a.prompt(q) for q in questions])
    with torch.inference_mode():
        seq = a.model.generate(**inputs, **a.generation_kwargs(OPTS)).sequences
    new = seq[:, inputs["input_ids"].shape[1] :].tolist()

    def lengths(stop):
        return [row.index(stop) + 1 if stop in row else len(row) for row in row_list]

    row_list = new
    candidates = sorted({t for row in new for t in row}, key=lambda t: -len(set(lengths(t))))
    stop = candidates[0]
    if len(set(lengths(stop))) < 2:
        pytest.skip("random model produced no stop token that separates the items")
    old = a.model.generation_config.eos_token_id
    a.model.generation_config.eos_token_id = stop
    try:
        batched = a.generate(images, questions, OPTS)
        singles = [a.generate([im], [q], OPTS)[0] for im, q in zip(images, questions, strict=True)]
    finally:
        a.model.generation_config.eos_token_id = old
    assert len({b.n_generated_tokens for b in batched}) >= 2
    for b, s in zip(batched, singles, strict=True):
        assert b.n_generated_tokens == s.n_generated_tokens
        np.testing.assert_allclose(b.embeddings, s.embeddings, atol=1e-5)


def test_llava_prefix_reuse_matches_plain_generation(adapters, images, questions):
    a = adapters("llava")
    assert a.supports_prefix_cache
    grid = a.generate_grid(images[:2], questions, OPTS)
    for i, im in enumerate(images[:2]):
        plain = a.generate([im] * 3, questions, OPTS)
        for j in range(3):
            assert grid[i][j].text == plain[j].text
            np.testing.assert_allclose(grid[i][j].embeddings, plain[j].embeddings, atol=1e-5)


def test_random_init_twin_is_seeded_and_differs(tiny_models, images, questions):
    from core.models.registry import register_local

    register_local("tiny-llava", tiny_models("llava"))
    trained = load_adapter("tiny-llava", device="cpu")
    twin = load_adapter("random:tiny-llava@5", device="cpu")
    twin2 = load_adapter("random:tiny-llava@5", device="cpu")
    other = load_adapter("random:tiny-llava@6", device="cpu")
    w = lambda m: m.model.lm_head.weight  # noqa: E731
    assert not torch.equal(w(trained), w(twin))
    assert torch.equal(w(twin), w(twin2))
    assert not torch.equal(w(twin), w(other))
    r = twin.generate(images[:1], questions[:1], OPTS)[0]
    assert r.embeddings.shape == (trained.n_hidden_states, 32)


def test_vit_and_clip_baselines(tiny_models, images):
    vit = load_adapter(tiny_models("vit"), device="cpu")
    cls = vit.encode_images(images, pooling="cls")
    patch = vit.encode_images(images, layers=[-1], pooling="mean_patch")
    assert cls.shape == (3, 3, 32) and patch.shape == (3, 1, 32)
    assert not np.allclose(cls[:, -1], patch[:, 0])
    clip = load_adapter(tiny_models("clip"), device="cpu")
    assert clip.encode_images(images).shape == (3, 16)
    text = clip.encode_texts(["a red cat", "two dogs on the street"])
    assert text.shape == (2, 16) and not np.allclose(text[0], text[1])
    r = clip.generate(images, ["ignored"] * 3)
    assert r[0].embeddings.shape == (1, 16) and r[0].n_generated_tokens == 0


def test_qwen2vl_encode_returns_tensors(adapters, images, questions, monkeypatch):
    """encode asks for tensors: the real Qwen2VLProcessor, like the image-processor + tokenizer
    fallback used here (no torchvision), returns lists and arrays unless asked."""
    a = adapters("qwen2_vl")
    prompts = [a.prompt(q) for q in questions]
    plain = a.processor(images=images, text=prompts, padding=True)
    assert not isinstance(plain["input_ids"], torch.Tensor)
    enc = a.encode(images, prompts)
    assert set(enc) == {"input_ids", "attention_mask", "pixel_values", "image_grid_thw"}
    assert all(isinstance(v, torch.Tensor) for v in enc.values())
    assert enc["image_grid_thw"].shape == (3, 3) and enc["input_ids"].shape[0] == 3
    # whichever processor is loaded gets return_tensors="pt"
    seen = {}
    processor = a.processor

    def spy(**kwargs):
        seen.update(kwargs)
        return processor(**kwargs)

    monkeypatch.setattr(a, "processor", spy)
    a.encode(images, prompts)
    assert seen["return_tensors"] == "pt"
