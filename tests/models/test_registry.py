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
