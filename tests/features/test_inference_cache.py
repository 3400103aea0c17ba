"""The pickle-free inference cache and infer()."""

import io
import os
import stat
import subprocess
import sys

import diskcache
import numpy as np
import pytest
from PIL import Image

from core.config import REPO_ROOT
from core.features.cache import InferenceCache, UnsafeCacheValue, decode_entry, encode_entry
from core.features.infer import infer
from core.models.adapters import GenerationOptions

OPTS = GenerationOptions(max_new_tokens=4)


def test_entry_round_trip_and_corruption():
    blob = encode_entry({"text": "hi"}, {"e": np.arange(6, dtype=np.float32).reshape(2, 3)})
    meta, arrays = decode_entry(blob)
    assert meta == {"text": "hi"} and arrays["e"].shape == (2, 3)
    broken = bytearray(blob)
    broken[-1] ^= 0xFF
    with pytest.raises(ValueError, match="checksum"):
        decode_entry(bytes(broken))


def test_hit_miss_corruption_and_mode(tmp_path):
    cache = InferenceCache(tmp_path / "c")
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    assert cache.get("k") is None
    cache.set("k", {"a": 1}, {"x": np.ones(3, np.float32)})
    meta, arrays = cache.get("k")
    assert meta == {"a": 1} and arrays["x"].tolist() == [1, 1, 1]
    cache._cache.set("bad", b"BPC1 not really an entry")
    assert cache.get("bad") is None and "bad" not in cache  # miss, and evicted
    with pytest.raises(UnsafeCacheValue):
        cache._cache.set("obj", {"not": "bytes"})
    with pytest.raises(UnsafeCacheValue):
        cache.set(("tuple", "key"), {}, {})  # type: ignore[arg-type]


class _Boom:
    ran = False

    def __reduce__(self):
        return (_Boom._mark, ())

    @staticmethod
    def _mark():
        _Boom.ran = True
        return "pwned"


def test_pickled_value_planted_by_an_attacker_is_never_unpickled(tmp_path):
    folder = tmp_path / "c"
    InferenceCache(folder).close()
    with diskcache.Cache(str(folder)) as plain:  # the default Disk pickles
        plain.set("evil", _Boom())
    cache = InferenceCache(folder)
    assert cache.get("evil") is None
    assert not _Boom.ran and "evil" not in cache


WORKER = """
import sys, numpy as np
from core.features.cache import InferenceCache
c = InferenceCache(sys.argv[1])
for i in range(40):
    c.set(f"k{i % 10}", {"w": sys.argv[2], "i": i}, {"x": np.full(64, i, np.float32)})
    got = c.get(f"k{(i + 3) % 10}")
    assert got is None or got[1]["x"].shape == (64,)
"""


def test_concurrent_processes_never_corrupt(tmp_path):
    folder = str(tmp_path / "c")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, folder, str(w)], env=env) for w in range(2)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    cache = InferenceCache(folder)
    for i in range(10):
        meta, arrays = cache.get(f"k{i}")
        assert arrays["x"][0] == meta["i"]


def test_infer_caches_and_keys_by_content(tiny_llava, tmp_path):
    cache = InferenceCache(tmp_path / "c")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    first = infer(tiny_llava, img, "IC", options=OPTS, cache=cache, device="cpu")
    assert not first.from_cache and first.embeddings.shape == (3, 32) and first.seconds > 0
    second = infer(tiny_llava, img, "IC", options=OPTS, cache=cache, device="cpu")
    assert second.from_cache and second.text == first.text
    assert second.embeddings.tobytes() == first.embeddings.tobytes()
    assert second.layer(-1).shape == (32,)
    other = infer(tiny_llava, img, "What is in this image?", options=OPTS, cache=cache)
    assert not other.from_cache
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    upload = infer(tiny_llava, buf.getvalue(), "IC", options=OPTS, cache=cache)
    assert upload.from_cache  # keyed by the decoded pixels: the same image as a PNG upload
    np.testing.assert_allclose(upload.embeddings, first.embeddings, atol=1e-5)
    uncached = infer(tiny_llava, img, "IC", options=OPTS, cache=False)
    assert not uncached.from_cache


def test_clear_removes_every_entry(tmp_path):
    import numpy as np

    from core.features.cache import InferenceCache

    cache = InferenceCache(tmp_path / "c")
    for k in ("a", "b"):
        cache.set(k, {"text": k}, {"x": np.zeros(2, np.float32)})
    assert cache.clear() == 2
    assert len(cache) == 0 and cache.get("a") is None


def test_a_stimulus_name_never_keys_the_cache(tiny_llava, tmp_path):
    """After a rebuild "demo:17" is another picture: the pixels, not the name, key the entry."""
    cache = InferenceCache(tmp_path / "c")
    rng = np.random.default_rng(1)
    old = Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8))
    new = Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8))
    infer(tiny_llava, old, "IC", image_id="demo:17", options=OPTS, cache=cache, device="cpu")
    rebuilt = infer(tiny_llava, new, "IC", image_id="demo:17", options=OPTS, cache=cache)
    assert not rebuilt.from_cache
