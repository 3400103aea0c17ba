import pytest

from core.models import registry
from core.models.adapters import detect_family, load_adapter
from core.models.registry import ModelError, register_local, resolve


def test_unknown_model_id_lists_known_names():
    with pytest.raises(ModelError, match="unknown model 'no such model'.*demo-vlm"):
        resolve("no such model")


def test_missing_local_folder(tmp_path):
    with pytest.raises(ModelError, match="missing or not a model folder"):
        resolve(str(tmp_path / "absent"))


def test_missing_demo_model_says_how_to_get_it(monkeypatch, tmp_path):
    entry = {**registry.BUILTIN["demo-vlm"], "source": str(tmp_path / "demo-vlm")}
    monkeypatch.setitem(registry.BUILTIN, "demo-vlm", entry)
    with pytest.raises(ModelError, match="demo model is not installed.*train-model"):
        load_adapter("demo-vlm")


def test_hub_id_not_cached_offline_is_a_clear_error():
    with pytest.raises(ModelError, match="not available offline"):
        load_adapter("someone/not-cached-model")


def test_register_local_and_random_twin(tiny_models):
    folder = tiny_models("llava")
    spec = register_local("my-llava", folder)
    assert spec.source == folder and detect_family(spec) == "llava"
    twin = resolve("random:my-llava@3")
    assert twin.random_init and twin.seed == 3 and twin.display_name() == "random:my-llava"
    assert twin.identity() != spec.identity()
    with pytest.raises(ModelError, match="reserved"):
        register_local("demo-vlm", folder)


def test_mplug_owl_needs_explicit_opt_in():
    with pytest.raises(ModelError, match="off by default.*trust_remote_code"):
        from core.models.adapters.mplug_owl import check_opt_in

        check_opt_in(resolve("mplug-owl-7b"))


def _fake_model_folder(folder, payload: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llava"}')
    (folder / "model.safetensors").write_bytes(payload)
    return folder


def test_fingerprint_sees_a_change_in_the_middle_of_a_large_file(tmp_path):
    from core.models.registry import ModelSpec, local_fingerprint

    payload = bytearray(6 << 20)  # 6 MB: the old fingerprint read only its first and last MB
    folder = _fake_model_folder(tmp_path / "m", bytes(payload))
    before = local_fingerprint(ModelSpec("m", str(folder)))
    payload[3 << 20] = 1  # same size, same head and tail
    (folder / "model.safetensors").write_bytes(bytes(payload))
    assert local_fingerprint(ModelSpec("m", str(folder))) != before


def test_fingerprint_covers_generation_config_and_subfolders(tmp_path):
    from core.models.registry import ModelSpec, local_fingerprint

    folder = _fake_model_folder(tmp_path / "m", b"w" * 100)
    spec = ModelSpec("m", str(folder))
    base = local_fingerprint(spec)
    (folder / "generation_config.json").write_text('{"repetition_penalty": 1.2}')
    with_gen = local_fingerprint(spec)
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "vocab.json").write_text("{}")
    assert len({base, with_gen, local_fingerprint(spec)}) == 3


def test_fingerprint_memo_is_reused_and_shared(tmp_path, monkeypatch):
    import core.models.registry as registry

    folder = _fake_model_folder(tmp_path / "m", b"x" * 1000)
    spec = registry.ModelSpec("m", str(folder))
    first = registry.local_fingerprint(spec)
    registry._FINGERPRINTS.clear()  # a new process: only the on-disk memo is left
    monkeypatch.setattr(registry, "_file_digest", lambda p: pytest.fail(f"re-hashed {p}"))
    assert registry.local_fingerprint(spec) == first


def test_hub_identity_pins_the_cached_commit(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from core.models.registry import ModelSpec

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    spec = ModelSpec("x", "owner/model")
    assert spec.identity()["revision"] is None  # not cached
    ref = tmp_path / "models--owner--model" / "refs" / "main"
    ref.parent.mkdir(parents=True)
    ref.write_text("a" * 40)
    assert spec.identity()["revision"] == "a" * 40
    ref.write_text("b" * 40)  # the cache was updated to a new commit: a new identity
    assert spec.identity()["revision"] == "b" * 40


def test_encoder_families_are_the_adapters_that_generate_nothing():
    from core.models.adapters import FAMILIES, adapter_class
    from core.models.registry import ENCODER_FAMILIES

    for family in FAMILIES:
        if family.endswith("_control"):
            continue  # controls are fitted per instruction although they generate nothing
        assert (not adapter_class(family).generative) == (family in ENCODER_FAMILIES), family
