"""Batch extraction into shards: shapes, prefix reuse, resume after a crash, readers, CLI."""

import numpy as np
import pytest

from core.features import extract as ex
from core.features.identity import adapter_extraction
from core.features.store import ShardWriter, open_shard, shard_dir
from core.models.adapters import GenerationOptions, load_adapter
from core.models.instructions import resolve_instructions
from core.models.registry import resolve
from core.storage import ArtifactError

OPTS = GenerationOptions(max_new_tokens=5)
INS = ["IU1", "VQ1", "IC"]


@pytest.fixture(scope="module")
def llava(tiny_llava):
    return load_adapter(tiny_llava, device="cpu")


def _run(dataset, adapter, **kw):
    kw = {"batch_size": 4, "chunk_size": 2, "progress": False, **kw}
    return ex.extract_model(dataset, adapter, resolve_instructions(INS), OPTS, **kw)


def _dir(dataset, adapter, instruction, prefix_reuse: bool = False):
    """The shard folder of a one-pass extraction with or without prefix reuse."""
    return shard_dir(dataset, adapter.spec, instruction, OPTS,
                     adapter_extraction(adapter, "one-pass", prefix_reuse))  # fmt: skip


def _as_new_stimulus_set(dataset, name: str) -> None:
    """Give the fake dataset another stimulus identity (shards are keyed by stimulus content)."""
    dataset.name = name
    dataset.stimulus_identity = {"kind": "fake", "test": name}


def test_extract_and_read_back(fake_dataset, llava, tiny_llava):
    paths = _run(fake_dataset, llava)
    assert len(paths) == 3
    info = open_shard(paths[0])
    assert info.n_rows == 6 and info.manifest["instruction"]["id"] == "IU1"
    assert info.manifest["layers"] == [0, 1, 2] and info.manifest["family"] == "llava"
    ids, X = ex.load_embeddings(fake_dataset, tiny_llava, "IU1", layer=-1, options=OPTS)
    assert ids.tolist() == fake_dataset.stimuli.ids.tolist()
    assert X.shape == (6, 32) and X.dtype == np.float32
    ids2, texts, ntok = ex.load_responses(fake_dataset, tiny_llava, "IU1", options=OPTS)
    assert ids2.tolist() == ids.tolist() and len(texts) == 6 and (ntok >= 1).all()
    direct = llava.generate(
        [fake_dataset.stimuli.load_image(100)], ["What is in this image?"], OPTS
    )
    _, Xv = ex.load_embeddings(fake_dataset, tiny_llava, "VQ1", layer=2, options=OPTS)
    np.testing.assert_allclose(Xv[0], direct[0].embeddings[2], atol=1e-5)
    with pytest.raises(ArtifactError):
        ex.load_embeddings(fake_dataset, tiny_llava, "VR", layer=0, options=OPTS)


def test_prefix_reuse_on_and_off_store_the_same(fake_dataset, llava):
    on = _run(fake_dataset, llava, prefix_reuse=True)
    spec2 = GenerationOptions(max_new_tokens=5, layers=(0, 1, 2))  # another shard key
    off = ex.extract_model(
        fake_dataset,
        llava,
        resolve_instructions(INS),
        spec2,
        batch_size=4,
        chunk_size=2,
        prefix_reuse=False,
        progress=False,
    )
    for a, b in zip(on, off, strict=True):
        for layer in (0, 2):
            ia, xa = ex.read_layer(a, layer)
            ib, xb = ex.read_layer(b, layer)
            assert ia.tolist() == ib.tolist()
            np.testing.assert_allclose(xa, xb, atol=1e-5)


def test_resume_after_crash_loses_and_duplicates_nothing(fake_dataset, llava, monkeypatch):
    reference = {}
    clean = fake_dataset.name + "-clean"
    _as_new_stimulus_set(fake_dataset, clean)
    for path in _run(fake_dataset, llava, prefix_reuse=False):
        reference[open_shard(path).manifest["instruction"]["id"]] = ex.read_layer(path, 1)
    _as_new_stimulus_set(fake_dataset, clean + "-crash")

    calls = {"n": 0}
    real = type(llava).generate

    def crashing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(llava), "generate", crashing)
    with pytest.raises(KeyboardInterrupt):
        _run(fake_dataset, llava, prefix_reuse=False)
    monkeypatch.setattr(type(llava), "generate", real)
    partial = sum(
        open_shard(p).n_rows
        for p in [
            _dir(fake_dataset, llava, i) for i in resolve_instructions(INS)
        ]
        if (p / "manifest.json").exists()
    )
    assert 0 < partial < 18
    # an orphan chunk (written, never listed in the manifest) must not be read or duplicated
    first = _dir(fake_dataset, llava, resolve_instructions(INS)[0])
    info = open_shard(first)
    (first / f"chunk-{len(info.manifest['chunks']):06d}-0rphan.npz").write_bytes(b"garbage")
    paths = _run(fake_dataset, llava, prefix_reuse=False)
    for path in paths:
        info = open_shard(path)
        all_ids = [i for c in info.manifest["chunks"] for i in c["ids"]]
        assert sorted(all_ids) == list(range(100, 106))  # complete, no duplicates
        ids, X = ex.read_layer(path, 1)
        ref_ids, ref_X = reference[info.manifest["instruction"]["id"]]
        assert ids.tolist() == ref_ids.tolist()
        np.testing.assert_allclose(X, ref_X, atol=1e-5)
    # a rerun of a complete extraction does no work
    calls["n"] = 0
    loads = fake_dataset.stimuli.loads
    _run(fake_dataset, llava, prefix_reuse=False)
    assert fake_dataset.stimuli.loads == loads


def test_concurrent_writers_never_duplicate_a_row(fake_dataset, llava):
    path = _dir(fake_dataset, llava, None)
    header = {"fields_key": "x", "layers": [0]}
    with ShardWriter(path, header) as a, ShardWriter(path, header) as b:
        assert a.append([1, 2], np.zeros((2, 1, 4)), [1, 1], ["a", "b"]) == 2
        # b read the manifest before a's append: its overlapping id is dropped, the new one kept
        assert b.append([2, 3], np.ones((2, 1, 4)), [1, 1], ["b", "c"]) == 1
        assert b.append([1], np.ones((1, 1, 4)), [1], ["a"]) == 0
        with pytest.raises(ArtifactError, match="twice"):
            a.append([5, 5], np.zeros((2, 1, 4)), [1, 1], ["x", "x"])
    ids, X = ex.read_layer(path, 0)
    assert ids.tolist() == [1, 2, 3]
    assert X[:, 0].tolist() == [0.0, 0.0, 1.0]  # the first writer's row 2 kept


def test_vit_baseline_shard(fake_dataset, tiny_vit):
    vit = load_adapter(tiny_vit, device="cpu")
    paths = ex.extract_model(fake_dataset, vit, resolve_instructions(INS), OPTS, progress=False)
    assert len(paths) == 1 and paths[0].parent.name == "image"
    ids, X = ex.load_embeddings(fake_dataset, tiny_vit, None, layer=0, options=OPTS)
    assert X.shape == (6, 32)


def test_cli_extract(fake_dataset, tiny_llava, monkeypatch, capsys):
    from core.pipeline.cli import main

    monkeypatch.setattr("core.data.registry.open_dataset", lambda name: fake_dataset)
    argv = [
        "extract",
        "--dataset",
        "x",
        "--models",
        tiny_llava,
        "--instructions",
        "IU1",
        "Is it sunny?",
        "--max-new-tokens",
        "4",
        "--limit",
        "3",
        "--quiet",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and "3 rows" in out[0] and "free-" in out[1]
    assert main(["extract", "--dataset", "x", "--models", "nonexistent-model", "--quiet"]) == 1
    assert "unknown model" in capsys.readouterr().err
    assert resolve(tiny_llava).is_local


def test_two_phase_extraction_stores_the_same_embeddings(fake_dataset, llava):
    one = _run(fake_dataset, llava, prefix_reuse=False)
    fake_dataset.name += "-two-phase"
    two = _run(fake_dataset, llava, method="two-phase")
    for a, b in zip(one, two, strict=True):
        assert open_shard(b).manifest["generation_method"] == "two-phase"
        ia, xa = ex.read_layer(a, 2)
        ib, xb = ex.read_layer(b, 2)
        assert ia.tolist() == ib.tolist()
        np.testing.assert_allclose(xb, xa, atol=1e-4, rtol=1e-4)
        assert ex.read_texts(a)[1] == ex.read_texts(b)[1]


def test_chunk_names_are_unique_per_writer(fake_dataset, llava):
    path = _dir(fake_dataset, llava, None)
    header = {"fields_key": "x", "layers": [0]}
    with ShardWriter(path, header) as a:
        a.append([1], np.zeros((1, 1, 4)), [1], ["a"])
        a.append([2], np.zeros((1, 1, 4)), [1], ["b"])
    files = [c["file"] for c in open_shard(path).manifest["chunks"]]
    assert len(set(files)) == 2 and all(f.startswith("chunk-00000") for f in files)
    assert all(len(f.split("-")) == 3 for f in files)  # index plus a random suffix


def test_chunk_holding_other_rows_than_its_manifest_is_refused(fake_dataset, llava):
    path = _dir(fake_dataset, llava, None)
    header = {"fields_key": "x", "layers": [0]}
    with ShardWriter(path, header) as a:
        a.append([1, 2], np.zeros((2, 1, 4)), [1, 1], ["a", "b"])
    chunk = open_shard(path).manifest["chunks"][0]["file"]
    # another writer (a lock that did not exclude) overwrote the file with its own rows
    np.savez(path / chunk, ids=np.array([7, 8]), n_tokens=np.array([1, 1], np.int32),
             texts=np.array(["x", "y"]), layer_000=np.ones((2, 4), np.float32))  # fmt: skip
    with pytest.raises(ArtifactError, match="other rows than its manifest"):
        ex.read_layer(path, 0)
    with pytest.raises(ArtifactError, match="other rows than its manifest"):
        ex.read_texts(path)
