"""Batch extraction of responses and response embeddings over a dataset's images.

``extract_dataset(dataset, models, instructions, ...)`` fills one shard per (model, instruction,
settings) (see :mod:`core.features.store`): pending (image, instruction) pairs are sorted by prompt
length and batched, or, for families that support it, grouped by image so that each image's prefix
KV cache serves all its instructions. Rows are buffered per shard and committed in chunks, so memory
stays bounded and a killed run resumes where it stopped. Readers: :func:`load_embeddings`,
:func:`load_responses`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.data.dataset import Dataset
from core.features.identity import ExtractionSettings, adapter_extraction
from core.features.store import (
    MANIFEST,
    ShardWriter,
    find_shard,
    read_answers,
    read_layer,
    read_texts,
    shard_dir,
    shard_header,
    source_shard,
)
from core.models.adapters import GenerationOptions, load_adapter
from core.models.adapters.base import Adapter, Response
from core.models.instructions import Instruction, resolve_instruction, resolve_instructions
from core.models.registry import resolve


def _open_dataset(dataset: Dataset | str) -> Dataset:
    if isinstance(dataset, str):
        from core.data.registry import open_dataset

        return open_dataset(dataset)
    return dataset


@dataclass
class _Buffer:
    ids: list[int] = field(default_factory=list)
    emb: list[np.ndarray] = field(default_factory=list)
    ntok: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tokens: list[tuple[int, ...]] = field(default_factory=list)

    def add(self, image_id: int, response) -> None:
        self.ids.append(int(image_id))
        self.emb.append(response.embeddings)
        self.ntok.append(response.n_generated_tokens)
        self.texts.append(response.text)
        self.tokens.append(tuple(response.token_ids))

    def flush(self, writer: ShardWriter) -> None:
        if self.ids:
            writer.append(self.ids, np.stack(self.emb), self.ntok, self.texts, self.tokens)
        self.ids, self.emb, self.ntok, self.texts, self.tokens = [], [], [], [], []


def _batches(seq: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


#: Models below this many parameters run single-threaded on the CPU: their matrices are too
#: small for intra-op threads to pay, and on 2 shared cores a second spinning OpenMP thread
#: slowed the demo model's generation 28x when another process was busy (measured: 80 responses
#: in 12.6 s with 2 threads vs 0.44 s with 1).
SMALL_MODEL_PARAMS = 50_000_000


@contextmanager
def cpu_threads_for(adapter: Adapter):
    """Run a small model on the CPU with one torch thread (restored afterwards)."""
    import torch

    model = getattr(adapter, "model", None)
    small = model is not None and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    on_cpu = str(getattr(adapter, "device", "cpu")).startswith("cpu")
    if not (small and on_cpu):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def extract_model(
    dataset: Dataset,
    adapter: Adapter,
    instructions: Sequence[Instruction],
    options: GenerationOptions = GenerationOptions(),
    batch_size: int = 8,
    chunk_size: int = 64,
    prefix_reuse: bool = True,
    image_ids: Sequence[int] | None = None,
    progress: bool = True,
    method: str = "one-pass",
) -> list[Path]:
    """Extract one loaded model over a dataset; returns the shard folders.

    Parameters
    ----------
    dataset : Dataset
    adapter : Adapter
        From :func:`core.models.adapters.load_adapter`.
    instructions : sequence of Instruction
        Ignored (one ``image`` shard) for non-generative baselines.
    options : GenerationOptions
    batch_size : int
        (image, instruction) pairs per forward batch.
    chunk_size : int
        Rows per committed chunk file (the most a crash can lose per shard).
    prefix_reuse : bool
        Use the family's shared-prefix KV cache across an image's instructions when supported.
    image_ids : sequence of int or None
        Subset of the dataset's stimulus ids (default: all).
    progress : bool
        Show a tqdm bar (rate and ETA).
    method : {"one-pass", "two-phase"}
        How responses are generated (see :meth:`core.models.adapters.base.Adapter.generate`);
        both pool the same positions (equal within 1e-4 in float32), so they share a shard; the
        manifest records the method of the shard's first writer. Two-phase disables prefix reuse.
    """
    with cpu_threads_for(adapter):
        return _extract_model(dataset, adapter, instructions, options, batch_size, chunk_size,
                              prefix_reuse, image_ids, progress, method)  # fmt: skip


def _extract_model(dataset, adapter, instructions, options, batch_size, chunk_size, prefix_reuse,
                   image_ids, progress, method) -> list[Path]:  # fmt: skip
    ins_list: list[Instruction | None] = list(instructions) if adapter.generative else [None]
    ids = np.asarray(dataset.stimuli.ids if image_ids is None else image_ids, dtype=np.int64)
    layers = adapter.resolve_layers(options.layers)
    paths = []
    generation = adapter.effective_generation(options)
    extraction = adapter_extraction(adapter, method, prefix_reuse)
    with ExitStack() as stack:
        writers = []
        for ins in ins_list:
            path = shard_dir(dataset, adapter.spec, ins, options, extraction)
            header = shard_header(
                dataset,
                adapter.spec,
                ins,
                options,
                extraction,
                layers,
                adapter.n_hidden_states,
                adapter.family,
                generation,
                getattr(adapter, "tower_pooling", options.pooling),
            )
            header["generation_method"] = method if adapter.generative else None
            if adapter.derived:
                header["source_shard"] = str(
                    source_shard(dataset, adapter.spec, ins, options, extraction)
                )
            writers.append(stack.enter_context(ShardWriter(path, header)))
            paths.append(path)
        pending = []
        for writer in writers:
            done = writer.done_ids()
            pending.append([int(i) for i in ids if int(i) not in done])
        buffers = [_Buffer() for _ in ins_list]
        total = sum(len(p) for p in pending)
        bar = tqdm(
            total=total,
            desc=f"{adapter.spec.display_name()} on {dataset.name}",
            unit="resp",
            disable=not progress or total == 0,
        )
        texts = [ins.text if ins is not None else "" for ins in ins_list]

        def emit(j: int, image_id: int, response) -> None:
            buffers[j].add(image_id, response)
            if len(buffers[j].ids) >= chunk_size:
                buffers[j].flush(writers[j])
            bar.update(1)

        # the shard key records extraction["prefix_reuse"]; an image with a single pending
        # instruction has no prefix to share and runs the ordinary path (equal within float
        # tolerance, tests/features/test_extraction.py)
        use_prefix = bool(extraction["prefix_reuse"]) and len(ins_list) > 1
        if adapter.derived:  # a control: derived from the source model's stored answers
            for j, ins in enumerate(ins_list):
                if not pending[j]:
                    continue
                answers = source_answers(dataset, adapter.spec, ins, options, extraction,
                                         pending[j])  # fmt: skip
                for batch in _batches(list(zip(pending[j], answers, strict=True)), batch_size):
                    derived = adapter.derive([a for _, a in batch], options)
                    for (image_id, _), response in zip(batch, derived, strict=True):
                        emit(j, image_id, response)
        elif use_prefix:
            pending_sets = [set(p) for p in pending]
            order = [int(i) for i in ids if any(int(i) in s for s in pending_sets)]
            per_batch = max(1, batch_size // len(ins_list))
            for group in _batches(order, per_batch):
                images = [dataset.stimuli.load_image(i) for i in group]
                grid = adapter.generate_grid(images, texts, options)
                for image_id, row in zip(group, grid, strict=True):
                    for j, response in enumerate(row):
                        if image_id in pending_sets[j]:
                            emit(j, image_id, response)
        else:
            lengths = [adapter.prompt_length(t) if t else 0 for t in texts]
            items = sorted(
                ((j, i) for j, p in enumerate(pending) for i in p),
                key=lambda item: (lengths[item[0]], item[0], item[1]),
            )
            for batch in _batches(items, batch_size):
                images = [dataset.stimuli.load_image(i) for _, i in batch]
                responses = adapter.generate(
                    images, [texts[j] for j, _ in batch], options, method=method
                )
                for (j, image_id), response in zip(batch, responses, strict=True):
                    emit(j, image_id, response)
        for buffer, writer in zip(buffers, writers, strict=True):
            buffer.flush(writer)
        bar.close()
    return paths


def source_answers(
    dataset: Dataset,
    spec,
    instruction: Instruction,
    options: GenerationOptions,
    extraction: dict,
    image_ids: Sequence[int],
) -> list[Response]:
    """The stored answers a control spec (``text:<m>``, ``length:<m>``) reads, in
    ``image_ids`` order, as :class:`Response` objects (text, token count, generated ids when
    stored; no embeddings).

    Parameters
    ----------
    dataset : Dataset
    spec : ModelSpec
        The control's spec.
    instruction : Instruction
    options : GenerationOptions
    extraction : dict
        The control's extraction identity (selects the source shard, see
        :func:`core.features.store.source_shard`).
    image_ids : sequence of int

    Raises
    ------
    ArtifactError
        When the source model has no stored answer for some of the images.
    """
    from core.models.registry import control_source
    from core.storage import ArtifactError

    path = source_shard(dataset, spec, instruction, options, extraction)
    source = control_source(spec).display_name()
    if not (path / MANIFEST).exists():
        stored = np.zeros(0, np.int64)
    else:
        stored, texts, n_tokens, token_ids = read_answers(path)
    want = np.asarray(image_ids, dtype=np.int64)
    missing = np.setdiff1d(want, stored)
    if missing.size:
        raise ArtifactError(
            f"{spec.display_name()} reads {source}'s answers to {instruction.id}, but "
            f"{missing.size} of the {want.size} images have none stored (e.g. "
            f"{missing[:5].tolist()}): extract {source} first (list it before "
            f"{spec.display_name()} in --models)"
        )
    pos = np.searchsorted(stored, want)
    return [
        Response(
            texts[p],
            int(n_tokens[p]),
            np.zeros((0, 0), np.float32),
            (),
            () if token_ids[p] is None else tuple(int(t) for t in token_ids[p]),
        )
        for p in pos
    ]


def extract_dataset(
    dataset: Dataset | str,
    models: Sequence[str],
    instructions: Sequence[str | Instruction] | None = None,
    options: GenerationOptions = GenerationOptions(),
    device: str = "auto",
    dtype: str | None = None,
    **kwargs,
) -> list[Path]:
    """Extract every model x instruction over a dataset (see :func:`extract_model` for
    ``batch_size``, ``chunk_size``, ``prefix_reuse``, ``image_ids``, ``progress``).

    Returns
    -------
    paths : list of Path
        The shard folders, in model then instruction order.
    """
    ds = _open_dataset(dataset)
    ins = (
        [resolve_instruction(i) for i in instructions]
        if instructions
        else resolve_instructions(None)
    )
    out: list[Path] = []
    for name in models:
        adapter = load_adapter(name, device=device, dtype=dtype)
        out += extract_model(ds, adapter, ins, options, **kwargs)
    return out


def _shard_for(dataset, model, instruction, options, extraction=None) -> Path:
    spec = resolve(model)
    ins = None if instruction is None else resolve_instruction(instruction)
    return find_shard(_open_dataset(dataset), spec, ins, options, extraction)


def load_embeddings(
    dataset: Dataset | str,
    model: str,
    instruction: str | Instruction | None,
    layer: int,
    options: GenerationOptions = GenerationOptions(),
    extraction: ExtractionSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stored response embeddings of one layer.

    Parameters
    ----------
    dataset : Dataset or str
    model : str
        Registry name, hub id or folder (``"random:<name>"`` for the twin).
    instruction : str, Instruction or None
        Paper id, pool id or free text; None for image-only baselines (ViT, CLIP image).
    layer : int
        Hidden-state index (negative counts from the end).
    options : GenerationOptions
        Must equal the extraction's settings.
    extraction : ExtractionSettings, optional
        How the embeddings were computed (default: all ``"auto"``; see
        :func:`core.features.store.find_shard`).

    Returns
    -------
    ids : array of shape (n,), int64
        Stimulus ids, sorted.
    X : array of shape (n, d), float32

    Raises
    ------
    ArtifactError
        When nothing was extracted for these settings.
    """
    return read_layer(_shard_for(dataset, model, instruction, options, extraction), layer)


def load_responses(
    dataset: Dataset | str,
    model: str,
    instruction: str | Instruction,
    options: GenerationOptions = GenerationOptions(),
    extraction: ExtractionSettings | None = None,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Stored response texts: ``(ids (n,), texts (n,), n_generated_tokens (n,))``, by id."""
    return read_texts(_shard_for(dataset, model, instruction, options, extraction))
