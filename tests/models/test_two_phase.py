"""Two-phase extraction (greedy ids, then one teacher-forced forward pass) against one-pass
``generate`` with hidden states, on the tiny random-weight model of every generative family.

Tolerance: float32 on the CPU, ``atol = rtol = 1e-4`` on the pooled embeddings (measured max abs
difference between the two methods: about 2e-6, on states of magnitude up to about 7). Token ids,
texts and token counts must be identical.
"""

import numpy as np
import pytest
import torch

from core.models.adapters import (
    FAMILIES,
    GENERATION_METHODS,
    TWO_PHASE_FAMILIES,
    GenerationOptions,
    adapter_class,
    load_adapter,
)
from core.models.pooling import pooled_counts

ATOL = RTOL = 1e-4
OPTS = GenerationOptions(max_new_tokens=8)
#: Extra tiny models: qwen2_vl-varied, the Qwen2-VL with larger decoder weights (its default twin
#: answers every input alike), so items differ and can stop at different steps; idefics-gated,
#: IDEFICS with open cross-attention gates (the default's are shut: the image has no effect).
VARIANTS = [*TWO_PHASE_FAMILIES, "qwen2_vl-varied", "idefics-gated"]
#: Models whose items' first tokens differ, so one item can end after one token while others go on.
MIXED = [f for f in VARIANTS if f not in ("qwen2_vl", "idefics-gated")]


@pytest.fixture(scope="module")
def adapters(tiny_models, tmp_path_factory):
    from core.models.tiny import build_idefics, build_qwen2vl

    cache = {}
    extra = {
        "qwen2_vl-varied": lambda folder: build_qwen2vl(folder, initializer_range=0.2),
        "idefics-gated": lambda folder: build_idefics(folder, open_gates=True),
    }

    def get(name):
        if name not in cache:
            if name in extra:
                folder = extra[name](tmp_path_factory.mktemp(name))
            else:
                folder = tiny_models(name)
            cache[name] = load_adapter(str(folder), device="cpu")
        return cache[name]

    return get


def assert_same(one, two):
    """Same responses (ids, texts, counts) and embeddings within the stated tolerance."""
    assert len(one) == len(two)
    for x, y in zip(one, two, strict=True):
        assert x.token_ids == y.token_ids and len(x.token_ids) == x.n_generated_tokens
        assert x.text == y.text and x.n_generated_tokens == y.n_generated_tokens
        assert x.layers == y.layers and x.embeddings.shape == y.embeddings.shape
        assert y.embeddings.dtype == np.float32
        np.testing.assert_allclose(y.embeddings, x.embeddings, atol=ATOL, rtol=RTOL)


class configured:
    """Temporarily set attributes of an adapter's model's generation config."""

    def __init__(self, adapter, **attrs):
        self.gc, self.attrs = adapter.model.generation_config, attrs

    def __enter__(self):
        self.old = {k: getattr(self.gc, k) for k in self.attrs}
        for k, v in self.attrs.items():
            setattr(self.gc, k, v)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            setattr(self.gc, k, v)


def stop_at(adapter, tokens):
    """Temporarily make ``tokens`` the end-of-sequence ids of an adapter's model."""
    return configured(adapter, eos_token_id=list(tokens))


def test_two_phase_families_are_flagged():
    assert GENERATION_METHODS == ("one-pass", "two-phase")
    for family in FAMILIES:
        cls = adapter_class(family)
        if cls.generative and not getattr(cls, "derived", False):  # controls follow their source
            assert cls.supports_two_phase == (family in TWO_PHASE_FAMILIES), family
    assert not adapter_class("mplug_owl").supports_two_phase
    assert not adapter_class("generic").supports_two_phase


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("family", VARIANTS)
def test_two_phase_matches_one_pass(family, pooling, adapters, images, questions):
    a = adapters(family)
    opts = GenerationOptions(max_new_tokens=8, pooling=pooling)
    one = a.generate(images, questions, opts)
    two = a.generate(images, questions, opts, method="two-phase")
    assert_same(one, two)
    assert all(r.embeddings.shape == (a.n_hidden_states, 32) for r in two)
    assert all(np.isfinite(r.embeddings).all() for r in two)
    # the default is one-pass, and a layer subset selects the same rows
    assert_same(one, a.generate(images, questions, opts, method="one-pass"))
    sub = a.generate(images, questions, GenerationOptions(8, (0, -1), pooling), method="two-phase")
    for s, r in zip(sub, two, strict=True):
        np.testing.assert_allclose(s.embeddings, r.embeddings[[0, -1]], atol=1e-6)


def test_idefics_gated_reads_the_image(adapters, images, questions):
    """The gated IDEFICS twin's responses depend on its image (through image_attention_mask)."""
    a = adapters("idefics-gated")
    x = a.generate(images, questions, OPTS, method="two-phase")
    y = a.generate(images[::-1], questions, OPTS, method="two-phase")
    assert not np.allclose(x[0].embeddings, y[0].embeddings, atol=1e-3)


@pytest.mark.parametrize("family", VARIANTS)
def test_two_phase_batched_equals_one_by_one(family, adapters, images, questions):
    """Left padding (prompts of different lengths) must not change the two-phase result."""
    a = adapters(family)
    enc = a.encode(images, [a.prompt(q) for q in questions])
    assert not enc["attention_mask"].bool().all(), "the batch should be left padded"
    batched = a.generate(images, questions, OPTS, method="two-phase")
    singles = [
        a.generate([im], [q], OPTS, method="two-phase")[0]
        for im, q in zip(images, questions, strict=True)
    ]
    assert_same(singles, batched)


def _mixed_stop(a, images, questions):
    """Extra end-of-sequence ids (a token plus the model's own) on which some item stops after
    its first token while another goes on, and the items' resulting lengths."""
    rows = [r.token_ids for r in a.generate(images, questions, OPTS)]
    for stop in dict.fromkeys(r[0] for r in rows):
        lengths = [row.index(stop) + 1 if stop in row else len(row) for row in rows]
        if min(lengths) == 1 and max(lengths) > 1:
            return [stop, *a.eos_ids()], lengths
    pytest.skip("random model produced no stop token that ends one item after one token")


@pytest.mark.parametrize("family", MIXED)
def test_two_phase_single_token_fallback(family, adapters, images, questions):
    """An item that stops after one token has no response state: it falls back to the prompt's
    last position, in a batch where other items go on (and stop at different steps)."""
    a = adapters(family)
    stops, lengths = _mixed_stop(a, images, questions)
    with stop_at(a, stops):
        for pooling in ("mean", "last"):
            opts = GenerationOptions(max_new_tokens=8, pooling=pooling)
            one = a.generate(images, questions, opts)
            two = a.generate(images, questions, opts, method="two-phase")
            assert [r.n_generated_tokens for r in two] == lengths
            assert_same(one, two)
            singles = [
                a.generate([im], [q], opts, method="two-phase")[0]
                for im, q in zip(images, questions, strict=True)
            ]
            assert_same(singles, two)
        # the fallback is the state that produced the only token: the prompt's last position
        k = lengths.index(1)
        prompt = a.to_device(a.encode(images[k : k + 1], [a.prompt(questions[k])]))
        prompt["position_ids"] = a.position_ids(prompt)
        with torch.inference_mode():
            states = a.forward_hidden_states(prompt)
        last = np.stack([s[0, -1].float().numpy() for s in states])
        np.testing.assert_allclose(two[k].embeddings, last, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("family", VARIANTS)
def test_two_phase_all_items_stop_after_one_token(family, adapters, images, questions):
    """Nothing is fed back at all (phase 2 is a prompt-only pass): every item falls back."""
    a = adapters(family)
    firsts = {r.token_ids[0] for r in a.generate(images, questions, OPTS)}
    with stop_at(a, firsts):
        one = a.generate(images, questions, OPTS)
        two = a.generate(images, questions, OPTS, method="two-phase")
    assert [r.n_generated_tokens for r in two] == [1, 1, 1]
    assert_same(one, two)


@pytest.mark.parametrize("family", VARIANTS)
def test_two_phase_with_a_generated_image_placeholder(family, adapters, images, questions):
    """A response token equal to the image placeholder is an ordinary token for generate (image
    features enter at step 0 only): phase 2 must not fill it with image features."""
    a = adapters(family)
    placeholders = sorted(a.placeholder_token_ids())
    assert placeholders or family.startswith("idefics")  # IDEFICS v1: cross-attention only
    token = placeholders[0] if placeholders else a.tokenizer.convert_tokens_to_ids("<image>")
    first = a.generate(images, questions, OPTS)[0].token_ids[0]
    with configured(a, sequence_bias={(first, token): 100.0}):  # force it after `first`
        one = a.generate(images, questions, OPTS)
        two = a.generate(images, questions, OPTS, method="two-phase")
    assert token in one[0].token_ids[:-1], "the placeholder should be fed back"
    assert_same(one, two)


def test_teacher_forced_inputs_reuse_generated_ids(adapters, images, questions):
    """Phase 2's sequence is the prompt plus the generated ids themselves (never re-tokenised
    text); post-EOS positions are masked and positions follow the left-padded mask."""
    a = adapters("llava")
    stops, lengths = _mixed_stop(a, images, questions)
    inputs = a.to_device(a.encode(images, [a.prompt(q) for q in questions]))
    n_prompt = inputs["input_ids"].shape[1]
    with stop_at(a, stops), torch.inference_mode():
        seq = a.model.generate(**inputs, **a.generation_kwargs(OPTS, hidden_states=False))
    new = seq[:, n_prompt:]
    counts = pooled_counts(new, np.array(lengths), stops)  # EOS dropped, truncated answers whole
    full = a.teacher_forced_inputs(inputs, new, counts)
    width = int(max(counts))
    assert full["input_ids"].shape == (3, n_prompt + width)
    assert torch.equal(full["input_ids"][:, :n_prompt], inputs["input_ids"])
    assert torch.equal(full["input_ids"][:, n_prompt:], new[:, :width])
    assert torch.equal(full["pixel_values"], inputs["pixel_values"])
    for i, c in enumerate(counts):
        fed = full["attention_mask"][i, n_prompt:]
        assert fed.tolist() == [1] * c + [0] * (width - c)
        real = int(inputs["attention_mask"][i].sum())
        pos = full["position_ids"][i, n_prompt : n_prompt + c]
        assert pos.tolist() == list(range(real, real + c))


def test_phase_one_generates_ids_only_with_the_same_config(
    adapters, images, questions, monkeypatch
):
    a = adapters("llava")
    one = a.generation_kwargs(OPTS)["generation_config"].to_dict()
    ids = a.generation_kwargs(OPTS, hidden_states=False)["generation_config"].to_dict()
    assert one["output_hidden_states"] and one["return_dict_in_generate"]
    assert not ids["output_hidden_states"] and not ids["return_dict_in_generate"]
    # one-pass asks for one token beyond the budget (the last answer token's state)
    assert one["max_new_tokens"] == ids["max_new_tokens"] + 1 == OPTS.max_new_tokens + 1
    drop = ("output_hidden_states", "return_dict_in_generate", "max_new_tokens")
    assert {k: v for k, v in one.items() if k not in drop} == {
        k: v for k, v in ids.items() if k not in drop
    }
    # the manifest's record of the generation settings is unchanged
    assert a.effective_generation(OPTS)["output_hidden_states"] is True
    seen = []
    generate = a.model.generate

    def spy(**kwargs):
        seen.append(kwargs["generation_config"])
        return generate(**kwargs)

    monkeypatch.setattr(a.model, "generate", spy)
    a.generate(images[:2], questions[:2], OPTS, method="two-phase")
    assert len(seen) == 1 and not seen[0].output_hidden_states
    assert not seen[0].return_dict_in_generate


def test_qwen2vl_two_phase_with_mrope_positions(adapters, images, questions, monkeypatch):
    """With ``mm_token_type_ids`` (as the full Qwen2-VL processor returns them) the image tokens
    get 3D M-RoPE positions; phase 2 recomputes them over the whole sequence like generate."""
    a = adapters("qwen2_vl-varied")
    encode = type(a).encode
    image_token = a.model.config.image_token_id

    def with_types(self, ims, prompts):
        enc = encode(self, ims, prompts)
        enc["mm_token_type_ids"] = (enc["input_ids"] == image_token).int()
        return enc

    plain = a.generate(images, questions, OPTS)
    monkeypatch.setattr(type(a), "encode", with_types)
    inputs = a.to_device(a.encode(images, [a.prompt(q) for q in questions]))
    pos = a.position_ids(inputs)
    assert pos.shape[0] == 4  # text row + temporal, height, width rows
    assert not torch.equal(pos[2], pos[3]), "image tokens should have 2D (h, w) positions"
    one = a.generate(images, questions, OPTS)
    two = a.generate(images, questions, OPTS, method="two-phase")
    assert_same(one, two)
    assert any(
        not np.allclose(p.embeddings, o.embeddings, atol=1e-3)
        for p, o in zip(plain, one, strict=True)
    ), "M-RoPE positions should change the states"
    singles = [
        a.generate([im], [q], OPTS, method="two-phase")[0]
        for im, q in zip(images, questions, strict=True)
    ]
    assert_same(singles, two)


def test_methods_are_checked(adapters, tiny_models, images, questions):
    a = adapters("llava")
    with pytest.raises(ValueError, match="method"):
        a.generate(images[:1], questions[:1], OPTS, method="fast")
    generic = adapter_class("generic")(a.spec, a.model, a.processor, a.device, a.dtype)
    with pytest.raises(NotImplementedError, match="two-phase"):
        generic.generate(images[:1], questions[:1], OPTS, method="two-phase")
    assert generic.generate(images[:1], questions[:1], OPTS)[0].n_generated_tokens >= 1
    # encoders generate nothing: either method gives the same features
    vit = load_adapter(tiny_models("vit"), device="cpu")
    x = vit.generate(images, ["ignored"] * 3, method="two-phase")
    y = vit.generate(images, ["ignored"] * 3)
    assert all(np.array_equal(p.embeddings, q.embeddings) for p, q in zip(x, y, strict=True))
    with pytest.raises(ValueError, match="method"):
        vit.generate(images, ["ignored"] * 3, method="fast")


def test_truncated_answers_keep_their_last_token_in_both_methods(adapters, images, questions):
    """An answer cut at the budget pools all of its tokens: one-pass (one step beyond the
    budget) and two-phase (the answer's ids fed back) pool the same 4 positions."""
    a = adapters("llava")
    opts = GenerationOptions(max_new_tokens=4)
    with stop_at(a, [-1]):  # no token ends an answer: every answer is cut at the budget
        one = a.generate(images, questions, opts)
        two = a.generate(images, questions, opts, method="two-phase")
    assert all(r.n_generated_tokens == 4 and len(r.token_ids) == 4 for r in one)
    assert_same(one, two)
    # the 4th token's state is in the mean: pooling only 3 gives another embedding
    inputs = a.to_device(a.encode(images, [a.prompt(q) for q in questions]))
    new = torch.tensor([r.token_ids for r in one])
    with torch.inference_mode():
        states = a.teacher_forced_states(inputs, new, np.array([4] * len(one)))
    n_prompt = inputs["input_ids"].shape[1]
    layer = one[0].layers[-1]
    four = states[layer][:, n_prompt : n_prompt + 4].float().mean(1).numpy()
    three = states[layer][:, n_prompt : n_prompt + 3].float().mean(1).numpy()
    got = np.stack([r.embeddings[-1] for r in one])
    np.testing.assert_allclose(got, four, atol=ATOL, rtol=RTOL)
    assert not np.allclose(got, three, atol=ATOL)
