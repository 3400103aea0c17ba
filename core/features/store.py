"""The response-embedding store: one shard per (stimuli, model, instruction, settings, extraction).

Layout under ``<home>/features/stimuli-<stimulus key>/<model-slug>/<instruction-id>/<key>/``
(see :func:`shard_dir`; the key holds everything that determines the embeddings, including how
they were computed: :mod:`core.features.identity`)::

    manifest.json        what made the shard (model identity, instruction text, options, code
                         version), hidden-state indices, width, and the committed chunk list
    chunk-000000-<random>.npz   ids (k,) int64, n_tokens (k,) int32, texts (k,) unicode,
                         layer_000 ... layer_NNN (k, d) float32   (one member per kept layer),
                         token_ids (sum n_tokens,) int64: the generated ids, row after row
                         (row i's are the next n_tokens[i]); absent in chunks written before
                         ids were stored and in chunks of encoders
    .lock                advisory lock held during each append (any number of writers)

Writes are append-only: a chunk file is written atomically under a name no other writer can
choose (its index plus a random suffix), then the manifest is atomically rewritten to list it.
A crash between the two leaves an unlisted chunk that readers never see, so a killed run
resumes with nothing lost (beyond its unflushed buffer) and nothing duplicated. Readers check
each chunk's ids against the manifest's, so even where the file lock does not exclude (a
filesystem whose locks are node-local), a manifest can never describe another writer's rows. No pickle:
``np.load(allow_pickle=False)`` and JSON only. Reading one layer reads only that member of each chunk.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import CODE_VERSION, subdir
from core.data.dataset import Dataset
from core.hashing import content_key
from core.models.instructions import Instruction
from core.models.registry import ModelSpec, control_source, describe
from core.storage import (
    LOCK_TIMEOUT,
    ArtifactError,
    atomic_write_bytes,
    file_lock,
    load_npz,
    read_json,
    write_json,
)

MANIFEST = "manifest.json"


def shard_fields(
    dataset: Dataset, spec: ModelSpec, instruction: Instruction | None, options, extraction: dict
) -> dict:
    """Everything that determines a shard's content (hashed into its key): the stimuli's content
    identity (never the dataset's name), the model's identity (weights fingerprint or hub
    commit, random-init seed), the instruction's text, the generation options and how the
    embeddings were computed (``extraction``: device class, dtype, method, prefix reuse and the
    embedding code version, see :mod:`core.features.identity`)."""
    return {
        **base_fields(dataset, spec, instruction, options, extraction),
        "extraction": dict(extraction),
    }


def base_fields(
    dataset: Dataset,
    spec: ModelSpec,
    instruction: Instruction | None,
    options,
    extraction: dict | None = None,
) -> dict:
    """The fields of :func:`shard_fields` without the extraction identity: shards that differ
    only in how they were computed share them (see :func:`find_shard`). A control spec
    (``text:`` / ``length:``) adds ``source_shard``, the key of the source shard it reads
    (:func:`source_shard`; ``extraction`` gives the method and prefix reuse that select it)."""
    out = {
        "stimuli": dataset.stimulus_key(),
        "model": spec.identity(),
        "instruction": instruction.text if instruction is not None else None,
        "options": options.to_dict(),
    }
    if control_source(spec) is not None:
        out["source_shard"] = source_shard(dataset, spec, instruction, options, extraction).name
    return out


def source_shard(
    dataset: Dataset,
    spec: ModelSpec,
    instruction: Instruction | None,
    options,
    extraction: dict | None = None,
) -> Path:
    """The shard of the source model's answers that a control spec (``text:<m>``,
    ``length:<m>``) reads: ``<m>``'s shard of the same stimuli, instruction and options,
    extracted with the method and prefix reuse of ``extraction`` (the control's extraction
    identity; default: one-pass with prefix reuse). Which device/dtype variant: the one of the
    control's own device and dtype when stored; else the variant the fits of ``<m>`` read
    (:func:`find_shard` with device and dtype ``"auto"``: this machine's, else the one stored
    variant); with none stored, the (planned) shard of the control's device and dtype.

    Raises
    ------
    ValueError
        ``spec`` is not a control spec.
    ArtifactError
        No variant of the control's device and dtype is stored and several others are (see
        :func:`find_shard`).
    """
    from core.features.identity import ExtractionSettings, planned_extraction

    source = control_source(spec)
    if source is None:
        raise ValueError(f"{spec.display_name()} is not a control (text: / length:) spec")
    ext = extraction or {}
    how = {
        "method": ext.get("method") or "one-pass",
        "prefix_reuse": bool(ext.get("prefix_reuse", True)),
    }
    own = ExtractionSettings(ext.get("device") or "auto", ext.get("dtype") or "auto", **how)
    exact = shard_dir(dataset, source, instruction, options, planned_extraction(source, own))
    if (exact / MANIFEST).exists():
        return exact
    other = find_shard(dataset, source, instruction, options, ExtractionSettings(**how))
    return other if (other / MANIFEST).exists() else exact


def shard_key(
    dataset: Dataset, spec: ModelSpec, instruction: Instruction | None, options, extraction: dict
) -> str:
    """The content key of one shard."""
    return content_key(
        "response_embeddings", shard_fields(dataset, spec, instruction, options, extraction)
    )


def base_key(
    dataset: Dataset,
    spec: ModelSpec,
    instruction: Instruction | None,
    options,
    extraction: dict | None = None,
) -> str:
    """The key of :func:`base_fields` (recorded in each manifest)."""
    fields = base_fields(dataset, spec, instruction, options, extraction)
    return content_key("response_embeddings_base", fields)


def shard_header(
    dataset: Dataset,
    spec: ModelSpec,
    instruction: Instruction | None,
    options,
    extraction: dict,
    layers: Sequence[int],
    n_hidden_states: int,
    family: str,
    generation: dict | None = None,
    pooling_rule: str | None = None,
) -> dict:
    """The manifest fields of a new shard (``generation``: the effective generation config the
    adapter runs with, the model's own defaults included; ``pooling_rule``: how states were
    pooled, e.g. a vision tower's ``"cls"`` or ``"mean_patch"``; both recorded for readers)."""
    return {
        "kind": "response_embeddings",
        "fields_key": shard_key(dataset, spec, instruction, options, extraction),
        "base_key": base_key(dataset, spec, instruction, options, extraction),
        "dataset": dataset.name,
        "stimuli": dataset.stimulus_key(),
        "model": describe(spec),
        "family": family,
        "instruction": None
        if instruction is None
        else {"id": instruction.id, "task": instruction.task, "text": instruction.text},
        "options": options.to_dict(),
        "extraction": dict(extraction),
        "generation": generation,
        "pooling_rule": pooling_rule,
        "layers": [int(x) for x in layers],
        "n_hidden_states": int(n_hidden_states),
    }


def stimuli_folder(dataset: Dataset) -> str:
    """The top folder of a dataset's shards: named by its stimuli's content, so registrations
    that show the same images (two spaces of one NSD folder, NSD and its Algonauts derivative
    when their stimulus keys agree) share one extraction."""
    return "stimuli-" + content_key("stimuli", dataset.stimulus_key(), length=16)


def shard_dir(
    dataset: Dataset, spec: ModelSpec, instruction: Instruction | None, options, extraction: dict
) -> Path:
    """The folder of one shard (not created):
    ``features/stimuli-<stimulus key>/<model>/<ins>/<key>``; model and instruction names only
    group folders for people, the key is content."""
    key = shard_key(dataset, spec, instruction, options, extraction)
    ins = instruction.id.replace(":", "_") if instruction is not None else "image"
    return subdir("features") / stimuli_folder(dataset) / spec.slug() / ins / key


def find_shard(
    dataset: Dataset,
    spec: ModelSpec,
    instruction: Instruction | None,
    options,
    settings=None,
) -> Path:
    """The shard a reader should use for ``settings`` (an
    :class:`~core.features.identity.ExtractionSettings`; default: all ``"auto"``).

    The shard of the identity ``settings`` plan on this machine when it exists. Otherwise, when
    the device or dtype was left ``"auto"``, the one stored shard of the same data, model,
    instruction and options that agrees with every field given explicitly (e.g. embeddings a
    GPU cluster extracted in bfloat16, read on a laptop). Nothing stored: the planned folder
    (its reader then says nothing was extracted).

    Raises
    ------
    ArtifactError
        When several stored variants fit (say which with ``--device`` / ``--dtype``).
    """
    from core.features.identity import ExtractionSettings, planned_extraction

    settings = settings or ExtractionSettings()
    planned = planned_extraction(spec, settings)
    exact = shard_dir(dataset, spec, instruction, options, planned)
    if (exact / MANIFEST).exists():
        return exact
    free = {f for f in ("device", "dtype") if getattr(settings, f) == "auto"}
    if not free:
        return exact
    want = base_key(dataset, spec, instruction, options, planned)
    fixed = {k: v for k, v in planned.items() if k not in free}
    found = []
    for manifest in sorted(exact.parent.glob(f"*/{MANIFEST}")) if exact.parent.exists() else []:
        try:
            info = read_json(manifest)
        except ArtifactError:
            continue
        ext = info.get("extraction") or {}
        if info.get("base_key") == want and all(ext.get(k) == v for k, v in fixed.items()):
            found.append((manifest.parent, ext))
    if len(found) > 1:
        variants = ", ".join(f"{e.get('device')}/{e.get('dtype')}" for _, e in found)
        raise ArtifactError(
            f"{spec.display_name()}: embeddings stored in several variants ({variants}); choose "
            "one with --device and --dtype"
        )
    return found[0][0] if found else exact


@dataclass
class ShardInfo:
    """A shard's manifest, parsed."""

    path: Path
    manifest: dict

    @property
    def n_rows(self) -> int:
        return int(sum(c["n"] for c in self.manifest["chunks"]))

    @property
    def layers(self) -> list[int]:
        return list(self.manifest["layers"])


class ShardWriter:
    """Append rows to a shard; any number of writers (processes, Ray actors, nodes on a shared
    filesystem) may append to one shard at once.

    Use as a context manager; :meth:`done_ids` says which image ids are already stored. Each
    :meth:`append` is one locked transaction (advisory lock ``.lock`` beside the manifest): it
    re-reads the manifest, drops the ids another writer committed meanwhile, writes the chunk
    file atomically and then the manifest. So concurrent writers never duplicate or lose a row,
    a killed writer loses at most its unflushed buffer, and nothing half-written is ever listed.
    A writer that cannot get the lock within ``timeout`` seconds raises
    :class:`~core.storage.LockTimeout` naming the shard.
    """

    def __init__(self, path: Path, header: dict, timeout: float | None = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.header = header
        self.timeout = timeout
        self.manifest: dict = {}

    def _locked(self):
        return file_lock(self.path / ".lock", self.timeout, what=f"embedding shard {self.path}")

    def _load(self) -> None:
        manifest_path = self.path / MANIFEST
        if manifest_path.exists():
            manifest = read_json(manifest_path)
            if manifest.get("fields_key") != self.header.get("fields_key"):
                raise ArtifactError(f"{self.path}: manifest does not match this shard")
            self.manifest = manifest
        else:
            self.manifest = {**self.header, "chunks": [], "code_version": CODE_VERSION}
            write_json(manifest_path, self.manifest)

    def __enter__(self) -> ShardWriter:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._load()
        return self

    def __exit__(self, *exc) -> None:
        return None

    def refresh(self) -> None:
        """Re-read the manifest (to see what other writers committed)."""
        with self._locked():
            self._load()

    def done_ids(self) -> set[int]:
        """Image ids committed (as of the last read of the manifest)."""
        out: set[int] = set()
        for chunk in self.manifest["chunks"]:
            out.update(int(i) for i in chunk["ids"])
        return out

    def append(
        self,
        ids: Sequence[int],
        embeddings: np.ndarray,
        n_tokens: Sequence[int],
        texts: Sequence[str],
        token_ids: Sequence[Sequence[int]] | None = None,
    ) -> int:
        """Commit one chunk (rows whose id is already stored are skipped).

        Parameters
        ----------
        ids : sequence of int, length k
            Distinct image ids.
        embeddings : array of shape (k, n_layers_kept, d)
        n_tokens : sequence of int, length k
        texts : sequence of str, length k
        token_ids : sequence (length k) of sequences of int, optional
            The generated ids of each row; stored (as one flat ``token_ids`` member) only when
            every row has exactly ``n_tokens`` of them.

        Returns
        -------
        n_written : int
            Rows committed (k minus those another writer had already stored).
        """
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        if np.unique(ids).size != ids.size:
            raise ArtifactError(f"{self.path}: refusing to store an image id twice")
        emb = np.asarray(embeddings, dtype=np.float32)
        n_tokens = np.asarray(n_tokens, dtype=np.int32)
        texts = np.asarray(list(texts), dtype=np.str_)
        with self._locked():
            self._load()
            layers = self.manifest["layers"]
            if emb.shape[:2] != (len(ids), len(layers)):
                raise ValueError(
                    f"embeddings shape {emb.shape} does not match {len(ids)} x {layers}"
                )
            keep = ~np.isin(ids, np.fromiter(self.done_ids(), np.int64))
            if not keep.any():
                return 0
            index = len(self.manifest["chunks"])
            name = f"chunk-{index:06d}-{secrets.token_hex(6)}.npz"
            arrays = {"ids": ids[keep], "n_tokens": n_tokens[keep], "texts": texts[keep]}
            if (
                token_ids is not None
                and len(token_ids) == len(ids)
                and all(len(t) == n for t, n in zip(token_ids, n_tokens, strict=True))
            ):
                kept = [
                    np.asarray(t, dtype=np.int64)
                    for t, k in zip(token_ids, keep, strict=True)
                    if k
                ]
                arrays["token_ids"] = np.concatenate(kept) if kept else np.zeros(0, np.int64)
            for pos, layer in enumerate(layers):
                arrays[f"layer_{layer:03d}"] = emb[keep, pos]
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            atomic_write_bytes(self.path / name, buf.getvalue())
            self.manifest["chunks"].append(
                {"file": name, "n": int(keep.sum()), "ids": ids[keep].tolist()}
            )
            self.manifest["dim"] = int(emb.shape[2])
            write_json(self.path / MANIFEST, self.manifest)
        return int(keep.sum())


def open_shard(path: Path) -> ShardInfo:
    """Read a shard's manifest; :class:`ArtifactError` when there is none."""
    path = Path(path)
    return ShardInfo(path, read_json(path / MANIFEST))


def _chunk_member(path: Path, name: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            return data[name]
    except KeyError as exc:
        raise ArtifactError(f"{path} has no {name!r}") from exc
    except Exception as exc:
        raise ArtifactError(f"corrupt chunk {path}: {exc}") from exc


def _chunk_ids(shard: Path, chunk: dict) -> np.ndarray:
    """A chunk's ids, checked against the manifest's record of that chunk.

    Raises
    ------
    ArtifactError
        When the file holds other rows than the manifest lists (two writers wrote one name).
    """
    file = shard / chunk["file"]
    ids = _chunk_member(file, "ids")
    if not np.array_equal(ids, np.asarray(chunk["ids"], dtype=ids.dtype)):
        raise ArtifactError(
            f"{file} holds other rows than its manifest lists ({ids.size} ids vs "
            f"{len(chunk['ids'])}): two writers wrote one chunk; delete the shard {shard} and "
            "extract again"
        )
    return ids


def read_layer(path: Path, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """One layer of a shard, rows sorted by image id.

    Returns
    -------
    ids : array of shape (n,), int64
    X : array of shape (n, d), float32
    """
    info = open_shard(path)
    layers = info.layers
    n_hidden = info.manifest.get("n_hidden_states", max(layers) + 1)
    idx = layer + n_hidden if layer < 0 else layer
    if idx not in layers:
        raise ArtifactError(f"layer {layer} not stored in {path}; stored: {layers}")
    ids, xs = [], []
    for chunk in info.manifest["chunks"]:
        ids.append(_chunk_ids(info.path, chunk))
        xs.append(_chunk_member(info.path / chunk["file"], f"layer_{idx:03d}"))
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, info.manifest.get("dim", 0)), np.float32)
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], np.concatenate(xs)[order].astype(np.float32, copy=False)


def read_texts(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Responses of a shard, sorted by image id.

    Returns
    -------
    ids : array of shape (n,), int64
    texts : list of str, length n
    n_tokens : array of shape (n,), int32
    """
    info = open_shard(path)
    ids, texts, ntok = [], [], []
    for chunk in info.manifest["chunks"]:
        ids.append(_chunk_ids(info.path, chunk))
        data = load_npz(info.path / chunk["file"])
        texts.append(data["texts"])
        ntok.append(data["n_tokens"])
    if not ids:
        return np.zeros(0, np.int64), [], np.zeros(0, np.int32)
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return (
        all_ids[order],
        [str(t) for t in np.concatenate(texts)[order]],
        np.concatenate(ntok)[order],
    )


def read_answers(
    path: Path,
) -> tuple[np.ndarray, list[str], np.ndarray, list[np.ndarray | None]]:
    """Responses of a shard with their generated token ids, sorted by image id.

    Returns
    -------
    ids : array of shape (n,), int64
    texts : list of str, length n
    n_tokens : array of shape (n,), int32
    token_ids : list, length n, of int64 arrays of shape (n_tokens[i],), or None
        None for rows of chunks that store no ids (written before ids were stored).
    """
    info = open_shard(path)
    ids, texts, ntok, toks = [], [], [], []
    for chunk in info.manifest["chunks"]:
        ids.append(_chunk_ids(info.path, chunk))
        data = load_npz(info.path / chunk["file"])
        texts += [str(t) for t in data["texts"]]
        counts = data["n_tokens"].astype(np.int64)
        ntok.append(data["n_tokens"])
        flat = data.get("token_ids")
        if flat is None or flat.size != counts.sum():
            toks += [None] * counts.size
        else:
            toks += list(np.split(flat.astype(np.int64), np.cumsum(counts)[:-1]))
    if not ids:
        return np.zeros(0, np.int64), [], np.zeros(0, np.int32), []
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return (
        all_ids[order],
        [texts[i] for i in order],
        np.concatenate(ntok)[order],
        [toks[i] for i in order],
    )


def list_shards(dataset: Dataset | str | None = None, spec: ModelSpec | None = None) -> list[ShardInfo]:
    """Every shard with a manifest: optionally of one dataset's stimuli (a :class:`Dataset` or a
    registered name) and of one model's folder."""
    root = subdir("features")
    if isinstance(dataset, str):
        from core.data.registry import open_dataset

        dataset = open_dataset(dataset)
    bases = [root / stimuli_folder(dataset)] if dataset is not None else sorted(root.glob("*"))
    if spec is not None:
        bases = [b / spec.slug() for b in bases]
    out = []
    for base in bases:
        for manifest in sorted(base.rglob(MANIFEST)) if base.exists() else []:
            try:
                out.append(open_shard(manifest.parent))
            except ArtifactError:
                continue
    return out


def stored_hidden_states(spec: ModelSpec) -> int | None:
    """How many hidden states a model has, read from any of its stored shards (no weights loaded).

    Parameters
    ----------
    spec : ModelSpec

    Returns
    -------
    n_hidden_states : int or None
        None when no shard of this model (same identity: source, revision, random-init seed)
        exists in the store.
    """
    identity = describe(spec)["identity"]
    for info in list_shards(None, spec):
        if info.manifest.get("model", {}).get("identity") == identity:
            return int(info.manifest["n_hidden_states"])
    return None


def model_layers(model: str, dataset: str | None = None) -> list[int]:
    """Hidden-state indices available for a model.

    Read from any stored shard's manifest of the same model identity (no weights are loaded),
    else from the loaded model; remembered per identity for the process. ``dataset`` is kept
    for callers and no longer needed.
    """
    import json

    from core.models.registry import resolve

    spec = resolve(model)
    memo = json.dumps(describe(spec)["identity"], sort_keys=True, default=str)
    if memo in _N_STATES:  # a model identity's depth never changes
        return list(range(_N_STATES[memo]))
    n = stored_hidden_states(spec)
    if n is None:
        from core.models.adapters import load_adapter

        n = load_adapter(model, device="cpu").n_hidden_states
    _N_STATES[memo] = int(n)
    return list(range(int(n)))


_N_STATES: dict[str, int] = {}


__all__ = [
    "ShardInfo",
    "ShardWriter",
    "list_shards",
    "open_shard",
    "read_layer",
    "read_texts",
    "read_answers",
    "source_shard",
    "base_key",
    "find_shard",
    "model_layers",
    "shard_dir",
    "shard_fields",
    "shard_header",
    "shard_key",
    "stored_hidden_states",
]
