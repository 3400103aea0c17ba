"""How an embedding was computed is part of its shard key, and readers find the right shard."""

import numpy as np
import pytest

from core.features import extract as ex
from core.features.identity import ExtractionSettings, adapter_extraction, planned_extraction
from core.features.store import find_shard, shard_key
from core.models.adapters import GenerationOptions, load_adapter
from core.models.instructions import resolve_instruction
from core.storage import ArtifactError

OPTS = GenerationOptions(max_new_tokens=3)


@pytest.fixture(scope="module")
def adapters(tiny_llava):
    return {
        dtype: load_adapter(tiny_llava, device="cpu", dtype=dtype)
        for dtype in ("float32", "bfloat16")
    }


def _key(ds, adapter, method="one-pass", prefix=True):
    ins = resolve_instruction("IC")
    return shard_key(ds, adapter.spec, ins, OPTS, adapter_extraction(adapter, method, prefix))


def test_bf16_and_float32_extractions_get_different_keys(fake_dataset, adapters):
    assert _key(fake_dataset, adapters["float32"]) != _key(fake_dataset, adapters["bfloat16"])


def test_method_and_prefix_reuse_get_different_keys(fake_dataset, adapters):
    a = adapters["float32"]
    keys = {_key(fake_dataset, a), _key(fake_dataset, a, "two-phase"),
            _key(fake_dataset, a, prefix=False)}  # fmt: skip
    assert len(keys) == 3


def test_device_class_is_part_of_the_identity(adapters, monkeypatch):
    a = adapters["float32"]
    cpu = adapter_extraction(a, "one-pass", True)
    monkeypatch.setattr(a, "device", "cuda:1")
    assert adapter_extraction(a, "one-pass", True) == {**cpu, "device": "cuda"}


def test_planned_identity_equals_the_loaded_adapters(adapters, tiny_llava):
    from core.models.registry import resolve

    for dtype, a in adapters.items():
        got = planned_extraction(resolve(tiny_llava), ExtractionSettings("cpu", dtype))
        assert got == adapter_extraction(a, "one-pass", True)


def test_encoders_share_a_shard_whatever_the_method(fake_dataset, tiny_vit):
    vit = load_adapter(tiny_vit, device="cpu")
    assert adapter_extraction(vit, "one-pass", True) == adapter_extraction(vit, "two-phase", False)


def test_auto_settings_read_the_one_stored_variant(fake_dataset, adapters, tiny_llava):
    """Embeddings a cluster extracted in bfloat16 are found by a reader left on "auto"."""
    ins = [resolve_instruction("IC")]
    (path,) = ex.extract_model(fake_dataset, adapters["bfloat16"], ins, OPTS, progress=False)
    assert find_shard(fake_dataset, adapters["bfloat16"].spec, ins[0], OPTS) == path
    ids, X = ex.load_embeddings(fake_dataset, tiny_llava, "IC", 0, OPTS)
    assert ids.size == 6 and np.isfinite(X).all()
    # asking explicitly for float32 finds nothing: never the bf16 rows
    with pytest.raises(ArtifactError):
        ex.load_embeddings(fake_dataset, tiny_llava, "IC", 0, OPTS,
                           ExtractionSettings(device="cpu", dtype="float32"))  # fmt: skip


def test_auto_settings_prefer_this_machines_variant_and_refuse_to_guess(
    fake_dataset, adapters, tiny_llava
):
    ins = [resolve_instruction("IC")]
    f32 = ex.extract_model(fake_dataset, adapters["float32"], ins, OPTS, progress=False)[0]
    bf16 = ex.extract_model(fake_dataset, adapters["bfloat16"], ins, OPTS, progress=False)[0]
    spec = adapters["float32"].spec
    assert f32 != bf16
    assert find_shard(fake_dataset, spec, ins[0], OPTS) == f32  # what "auto" plans here
    assert find_shard(fake_dataset, spec, ins[0], OPTS, ExtractionSettings(dtype="bfloat16")) == bf16
    import json
    import shutil

    shutil.rmtree(f32)  # no shard of this machine's variant; a float16 one from elsewhere
    f16 = bf16.parent / "f16-from-a-cluster"
    shutil.copytree(bf16, f16)
    manifest = json.loads((f16 / "manifest.json").read_text())
    manifest["extraction"]["dtype"] = "float16"
    (f16 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="several variants"):
        find_shard(fake_dataset, spec, ins[0], OPTS)
    assert find_shard(fake_dataset, spec, ins[0], OPTS, ExtractionSettings(dtype="float16")) == f16
