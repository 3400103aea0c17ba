"""The text-only and length controls (``text:<m>``, ``length:<m>``): specs, shards read from the
source model's stored answers, a hand computation of the text-only embedding, and keys that
follow the source's weights and answers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from core.features import extract as ex
from core.features.identity import adapter_extraction
from core.features.store import (
    ShardWriter,
    open_shard,
    read_answers,
    shard_dir,
    shard_fields,
    shard_header,
    source_shard,
)
from core.models.adapters import GenerationOptions, load_adapter
from core.models.instructions import resolve_instruction, resolve_instructions
from core.models.registry import ModelError, control_source, resolve
from core.storage import ArtifactError

OPTS = GenerationOptions(max_new_tokens=6)
INS = ["IU1", "IC"]


@pytest.fixture(scope="module")
def llava(tiny_llava):
    return load_adapter(tiny_llava, device="cpu")


@pytest.fixture(scope="module")
def text_control(tiny_llava):
    return load_adapter(f"text:{tiny_llava}", device="cpu")


def _extract(dataset, models, **kw):
    return ex.extract_dataset(dataset, models, INS, OPTS, device="cpu", batch_size=4,
                              chunk_size=4, progress=False, **kw)  # fmt: skip


def _hand_text_embedding(adapter, ids: list[int]) -> np.ndarray:
    """[bos] + the answer's content ids through the decoder alone, mean over the answer.

    Returns
    -------
    features : array of shape (n_hidden_states, d)
    """
    decoder = adapter.model.get_decoder()
    bos = adapter.tokenizer.bos_token_id
    with torch.inference_mode():
        out = decoder(input_ids=torch.tensor([[bos, *ids]]), output_hidden_states=True)
    return np.stack([h[0, 1:].float().mean(0).numpy() for h in out.hidden_states])


def _content(token_ids: np.ndarray, eos: list[int]) -> list[int]:
    ids = [int(t) for t in token_ids]
    return ids[:-1] if ids and ids[-1] in eos else ids


def test_control_specs_names_roles_and_errors(tiny_llava, tiny_vit):
    from core.models.roles import is_generative, model_role

    text, length = resolve(f"text:{tiny_llava}"), resolve(f"length:{tiny_llava}")
    source = resolve(tiny_llava)
    assert text.display_name() == f"text:{tiny_llava}" and text.family == "text_control"
    assert length.display_name() == f"length:{tiny_llava}"
    assert text.slug().startswith("text-") and length.slug().startswith("length-")
    assert text.identity() == {**source.identity(), "control": "text"}
    assert control_source(text) == source and control_source(source) is None
    twin = resolve(f"text:random:{tiny_llava}")
    assert twin.random_init and twin.display_name() == f"text:random:{tiny_llava}"
    assert control_source(twin) == resolve(f"random:{tiny_llava}")
    assert text.identity() != twin.identity() != length.identity()
    for bad in (f"random:text:{tiny_llava}", f"text:vision:{tiny_llava}", f"length:{tiny_vit}",
                f"text:text:{tiny_llava}"):  # fmt: skip
        with pytest.raises(ModelError):
            resolve(bad)
    assert model_role(f"text:{tiny_llava}") == "text-only control"
    assert model_role(f"length:{tiny_llava}") == "length control"
    assert is_generative(f"text:{tiny_llava}") and is_generative(f"length:{tiny_llava}")


def test_extracted_controls_match_hand_computation(fake_dataset, tiny_llava, llava):
    src_paths = _extract(fake_dataset, [tiny_llava])
    paths = _extract(fake_dataset, [f"text:{tiny_llava}", f"length:{tiny_llava}"])
    assert len(paths) == 4  # (text, length) x (IU1, IC)
    eos = llava.eos_ids()
    for ins, src in zip(INS, src_paths, strict=True):
        ids, texts, n_tokens, token_ids = read_answers(src)
        assert all(t is not None and t.size == n for t, n in zip(token_ids, n_tokens, strict=True))
        # the text-only control: one (n_images, d) matrix per hidden state, equal to the
        # decoder run by hand over [bos] + the stored generated ids (end of sequence dropped)
        hand = np.stack([_hand_text_embedding(llava, _content(t, eos)) for t in token_ids])
        for layer in range(llava.n_hidden_states):
            got_ids, X = ex.load_embeddings(fake_dataset, f"text:{tiny_llava}", ins, layer, OPTS)
            assert got_ids.tolist() == ids.tolist() and X.shape == (6, 32)
            np.testing.assert_allclose(X, hand[:, layer], atol=1e-5)
        # it differs from the response embedding (the image is gone)
        _, R = ex.load_embeddings(fake_dataset, tiny_llava, ins, -1, OPTS)
        assert not np.allclose(R, hand[:, -1], atol=1e-3)
        # the length control: (n_images, 2) = (n_tokens, n_tokens^2), one layer
        got_ids, L = ex.load_embeddings(fake_dataset, f"length:{tiny_llava}", ins, -1, OPTS)
        assert got_ids.tolist() == ids.tolist() and L.shape == (6, 2)
        np.testing.assert_array_equal(L[:, 0], n_tokens)
        np.testing.assert_array_equal(L[:, 1], n_tokens.astype(np.float64) ** 2)
        # the controls keep the source's answers, and their manifests name the source shard
        _, ctexts, cn = ex.load_responses(fake_dataset, f"text:{tiny_llava}", ins, OPTS)
        assert ctexts == texts and cn.tolist() == n_tokens.tolist()
        for model in (f"text:{tiny_llava}", f"length:{tiny_llava}"):
            shard = ex._shard_for(fake_dataset, model, ins, OPTS)
            manifest = open_shard(shard).manifest
            assert manifest["source_shard"] == str(src)
            assert manifest["model"]["identity"]["control"] == model.split(":")[0]
    assert open_shard(ex._shard_for(fake_dataset, f"length:{tiny_llava}", "IU1", OPTS)).layers == [0]


def test_text_control_retokenises_answers_without_stored_ids(fake_dataset, text_control, llava):
    """Shards written before ids were stored: the answer text is tokenised again."""
    from core.models.adapters.base import Response

    texts = ["red cat on grass", "two dogs", ""]
    answers = [Response(t, 7, np.zeros((0, 0), np.float32), ()) for t in texts]
    got = text_control.derive(answers, OPTS)
    for text, response in zip(texts, got, strict=True):
        ids = llava.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert response.text == text and response.n_generated_tokens == 7
        if ids:
            np.testing.assert_allclose(
                response.embeddings, _hand_text_embedding(llava, ids), atol=1e-5
            )
        else:  # an empty answer pools the prefix's last state (the <s> token's)
            bos = llava.tokenizer.bos_token_id
            with torch.inference_mode():
                hs = llava.model.get_decoder()(
                    input_ids=torch.tensor([[bos]]), output_hidden_states=True
                ).hidden_states
            want = np.stack([h[0, 0].numpy() for h in hs])
            np.testing.assert_allclose(response.embeddings, want, atol=1e-5)
    # the store: a chunk without ids reads back as None rows
    spec = resolve(text_control.source_spec)
    ins = resolve_instruction("IU1")
    extraction = adapter_extraction(llava, "one-pass", True)
    path = shard_dir(fake_dataset, spec, ins, OPTS, extraction)
    header = shard_header(fake_dataset, spec, ins, OPTS, extraction, [0], 3, "llava")
    with ShardWriter(path, header) as writer:
        writer.append([100, 101], np.zeros((2, 1, 4)), [2, 3], ["a", "b"])
        writer.append([102], np.zeros((1, 1, 4)), [2], ["c"], token_ids=[(5, 2)])
    ids, _, _, toks = read_answers(path)
    assert ids.tolist() == [100, 101, 102] and toks[:2] == [None, None]
    assert toks[2].tolist() == [5, 2]


def test_live_generate_equals_the_extracted_control(fake_dataset, tiny_llava, text_control):
    _extract(fake_dataset, [tiny_llava, f"text:{tiny_llava}"])
    image = fake_dataset.stimuli.load_image(102)
    live = text_control.generate([image], [resolve_instruction("IC").text], OPTS)
    _, X = ex.load_embeddings(fake_dataset, f"text:{tiny_llava}", "IC", 2, OPTS)
    np.testing.assert_allclose(live[0].embeddings[2], X[2], atol=1e-5)


def test_control_needs_the_source_answers(fake_dataset, tiny_llava):
    with pytest.raises(ArtifactError, match="extract .* first"):
        _extract(fake_dataset, [f"text:{tiny_llava}"])
    with pytest.raises(ArtifactError, match="extract .* first"):
        _extract(fake_dataset, [f"length:{tiny_llava}"])


def _control_key(dataset, model: str, ins: str = "IU1") -> str:
    adapter = load_adapter(model, device="cpu")
    extraction = adapter_extraction(adapter, "one-pass", True)
    return shard_dir(dataset, adapter.spec, resolve_instruction(ins), OPTS, extraction).name


def test_control_key_follows_the_source_answers_and_weights(fake_dataset, tiny_llava, tmp_path):
    for kind in ("text", "length"):
        model = f"{kind}:{tiny_llava}"
        spec = resolve(model)
        ins = resolve_instruction("IU1")
        extraction = adapter_extraction(load_adapter(model, device="cpu"), "one-pass", True)
        fields = shard_fields(fake_dataset, spec, ins, OPTS, extraction)
        assert fields["source_shard"] == source_shard(fake_dataset, spec, ins, OPTS, extraction).name
        assert fields["model"]["control"] == kind
    # another answer set: the source's answers stored in bfloat16 only, then in float32 too
    # (the variant a reader on this machine uses): the control reads the new answers, new key
    ds = fake_dataset
    ex.extract_dataset(ds, [tiny_llava], ["IU1"], OPTS, device="cpu", dtype="bfloat16",
                       progress=False)  # fmt: skip
    before = {k: _control_key(ds, f"{k}:{tiny_llava}") for k in ("text", "length")}
    assert ex._shard_for(ds, f"length:{tiny_llava}", "IU1", OPTS).name == before["length"]
    ex.extract_dataset(ds, [tiny_llava], ["IU1"], OPTS, device="cpu", progress=False)
    after = {k: _control_key(ds, f"{k}:{tiny_llava}") for k in ("text", "length")}
    assert before["text"] != after["text"] and before["length"] != after["length"]
    # with both variants stored, a control reads the one of its own device and dtype
    from core.features.identity import ExtractionSettings

    length, iu1 = resolve(f"length:{tiny_llava}"), resolve_instruction("IU1")
    for dtype in ("bfloat16", "float32"):
        ext = adapter_extraction(load_adapter(length, device="cpu", dtype=dtype), "one-pass", True)
        want = ex._shard_for(ds, tiny_llava, "IU1", OPTS, ExtractionSettings("cpu", dtype))
        assert source_shard(ds, length, iu1, OPTS, ext) == want
    # other options (other answers) and another instruction: other keys
    other = GenerationOptions(max_new_tokens=3)
    spec = resolve(f"length:{tiny_llava}")
    ext = adapter_extraction(load_adapter(spec, device="cpu"), "one-pass", True)
    ins = resolve_instruction("IU1")
    assert shard_dir(ds, spec, ins, other, ext).name != after["length"]
    assert _control_key(ds, f"length:{tiny_llava}", "IC") != after["length"]
    # new weights of the source model: new key
    from core.models.tiny import build_llava

    folder = tmp_path / "llava"
    shutil.copytree(tiny_llava, folder)
    first = _control_key(ds, f"text:{folder}")
    build_llava(folder, seed=1)
    assert _control_key(ds, f"text:{folder}") != first


def test_fit_specs_give_controls_one_fit_per_instruction(tiny_llava):
    from core.pipeline.grid import GridConfig, fit_specs

    models = [tiny_llava, f"text:{tiny_llava}", f"length:{tiny_llava}"]
    config = GridConfig(dataset="fake", models=models, instructions=INS, layers=[-1])
    layers_of = {tiny_llava: [0, 1, 2], models[1]: [0, 1, 2], models[2]: [0]}
    specs = fit_specs(config, ["s1"], layers_of)
    got = {(s.model, s.instruction, s.layer) for s in specs}
    assert got == {(m, i, 0 if m == models[2] else 2) for m in models for i in INS}
    assert load_adapter(models[2], device="cpu").n_hidden_states == 1
    assert resolve_instructions(INS)  # the paper ids resolve
