"""Live inference for one image and one instruction, cached: what the app calls.

``infer(model_name, image, instruction)`` returns an :class:`InferenceResult` with the response text,
per-layer response embeddings, token count, seconds and whether it came from the cache. The cache key
(:func:`inference_key`) is :func:`core.hashing.content_key` over the model identity (id / local
fingerprint, revision, random-init seed), the instruction text, the image (a dataset-qualified id, or
the SHA-256 of the uploaded bytes, or of the pixels), the decoding settings and the code version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from core.data.images import load_image_bytes, sanitize_image
from core.features.cache import InferenceCache
from core.hashing import array_digest, content_key
from core.models.adapters import GenerationOptions, load_adapter
from core.models.adapters.base import Adapter
from core.models.instructions import resolve_instruction
from core.models.registry import resolve


@dataclass
class InferenceResult:
    """One cached-or-computed response.

    Parameters
    ----------
    text : str
    embeddings : array of shape (n_selected_layers, d), float32
    layers : tuple of int
        Hidden-state index of each embedding row.
    n_tokens : int
        Generated tokens (end-of-sequence included).
    seconds : float
        Compute time of the original inference (not of the cache read).
    from_cache : bool
    model : str
    instruction : str
    """

    text: str
    embeddings: np.ndarray
    layers: tuple[int, ...]
    n_tokens: int
    seconds: float
    from_cache: bool
    model: str
    instruction: str

    def layer(self, index: int) -> np.ndarray:
        """The embedding of one hidden-state index, shape (d,)."""
        return self.embeddings[self.layers.index(index if index >= 0 else self.layers[index])]


@lru_cache(maxsize=4)
def get_adapter(name: str, device: str = "auto", dtype: str | None = None) -> Adapter:
    """Load a model once per process (small LRU)."""
    return load_adapter(name, device=device, dtype=dtype)


@lru_cache(maxsize=1)
def default_cache() -> InferenceCache:
    """The process-wide cache in ``<home>/cache/inference``."""
    return InferenceCache()


def image_identity(
    image: Image.Image | bytes, image_id: str | None = None
) -> tuple[Image.Image, str]:
    """Decode (for bytes) and identify an image by content: ``(rgb_image, identity_string)``.

    The identity is always a hash of the decoded pixels, never a name: ``image_id`` (e.g.
    ``"demo:17"``) names a stimulus whose pixels change when the dataset is rebuilt, so it only
    labels the entry. Hashing a 425 x 425 image takes well under a millisecond.
    """
    if isinstance(image, (bytes, bytearray)):
        img = load_image_bytes(bytes(image))
    else:
        img = sanitize_image(image)
    del image_id  # a label, not an identity
    return img, f"pixels:{array_digest(np.asarray(img))}"


def inference_key(
    model: str, instruction: str, image_identity: str, options, device: str = "auto"
) -> str:
    """The cache key of one inference (with how it is computed on ``device``: device class,
    dtype, one-pass without prefix reuse, the embedding code version)."""
    from core.features.identity import ExtractionSettings, planned_extraction

    spec = resolve(model)
    fields = {
        "model": spec.identity(),
        "instruction": instruction,
        "image": image_identity,
        "options": options.to_dict(),
        "extraction": planned_extraction(spec, ExtractionSettings(device, prefix_reuse=False)),
    }
    return content_key("inference", fields)


def infer(
    model_name: str,
    image: Image.Image | bytes,
    instruction: str,
    *,
    image_id: str | None = None,
    options: GenerationOptions = GenerationOptions(),
    device: str = "auto",
    cache: InferenceCache | None | bool = True,
) -> InferenceResult:
    """Respond to one instruction about one image, with per-layer response embeddings.

    Parameters
    ----------
    model_name : str
        Registry name, hub id or folder (``"random:<name>"`` for the twin).
    image : PIL image or bytes
        Bytes (an upload) are verified and decoded safely.
    instruction : str
        Paper id (``"IC"``), pool id, or free text.
    image_id : str or None
        A stable identity such as ``"demo:17"``; default: hash of the bytes or pixels.
    options : GenerationOptions
    device : str
    cache : InferenceCache, True (the default cache) or False/None (no caching)
    """
    ins = resolve_instruction(instruction)
    img, ident = image_identity(image, image_id)
    if cache is True:
        store = default_cache()
    else:
        store = cache if isinstance(cache, InferenceCache) else None
    key = inference_key(model_name, ins.text, ident, options, device)
    if store is not None:
        hit = store.get(key)
        if hit is not None:
            meta, arrays = hit
            return InferenceResult(
                meta["text"],
                arrays["embeddings"],
                tuple(meta["layers"]),
                meta["n_tokens"],
                meta["seconds"],
                True,
                model_name,
                ins.text,
            )
    adapter = get_adapter(model_name, device)
    start = time.perf_counter()
    response = adapter.generate([img], [ins.text], options)[0]
    seconds = time.perf_counter() - start
    result = InferenceResult(
        response.text,
        response.embeddings,
        response.layers,
        response.n_generated_tokens,
        seconds,
        False,
        model_name,
        ins.text,
    )
    if store is not None:
        meta = {
            "text": result.text,
            "layers": list(result.layers),
            "n_tokens": result.n_tokens,
            "seconds": seconds,
        }
        store.set(key, meta, {"embeddings": result.embeddings})
    return result
