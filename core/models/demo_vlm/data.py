"""Training and evaluation data for the demo model, drawn from the demo world's scene streams.

Each scene gives: the model's pixel values (through the model's own image processor, exactly as at
inference), the reference answer of each answer key (the paper's 10 instructions, then every key
of the wider prompt pool, :data:`~core.models.demo_vlm.tasks.ANSWER_KEYS`) as token ids, and per-cell auxiliary
targets for the vision tower (the image is cut into one patch per cell of the 4 x 4 grid):

- ``cell_classes`` (n, 16, n_dense) : which dense classes (sky, wall, person, cat, ...) occupy the
  cell, from the generator's 16 x 16 dense label map (multi-label);
- ``cell_kind`` (n, 16) : the item standing in the cell (0 = none, else 1 + index in
  :data:`ITEM_KINDS`), from the scene content;
- ``cell_action`` (n, 16) : a person's action (index in :data:`ACTION_NAMES`), -1 elsewhere;
- ``cell_colour`` (n, 16) : the named colour of the background surface (sky, ground, wall, floor,
  facade) covering most of the cell, -1 where it has none (road, a street's sky);
- ``colour``, ``environment`` (n,) : the scene's dominant colour and environment (global targets
  predicted from the mean of the patch states);
- ``largest_cell`` (n,) : the cell of the thing drawn largest
  (:func:`~core.data.demo.content.largest_item`), -1 in an empty scene (a softmax over the cells:
  the vision tower learns where the largest thing stands, which the spatial pool tasks ask).

Training scenes come only from the ``"train"`` stream, which is disjoint from the stimulus set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.demo.answers import answer
from core.data.demo.content import (
    ACTIONS,
    ANIMALS,
    COLOUR_NAMES,
    DENSE_CLASSES,
    ENVIRONMENTS,
    FOODS,
    GRID,
    OBJECTS,
    largest_item,
)
from core.data.demo.scenes import draw_scene
from core.models.demo_vlm.tasks import ANSWER_KEYS

ITEM_KINDS = ("person", *ANIMALS, *FOODS, *OBJECTS)
ACTION_NAMES = tuple(ACTIONS)
MAX_ANSWER_TOKENS = 56  # longest reference answer is ~46 words; +1 for </s>


def instruction_text(instruction_id: str) -> str:
    """The paper's verbatim instruction text for an id (from :mod:`core.models.instructions`);
    any other instruction text is returned as it is."""
    from core.models.instructions import resolve_instruction

    return resolve_instruction(instruction_id).text


@dataclass
class SceneBatch:
    """Arrays for ``n`` scenes (see the module docstring)."""

    pixel_values: np.ndarray  # (n, 3, S, S) float16
    answer_ids: np.ndarray  # (n, n_keys, MAX_ANSWER_TOKENS) int16, padded with -1, </s> included
    answer_len: np.ndarray  # (n, n_keys) int16
    cell_classes: np.ndarray  # (n, cells, n_dense) uint8
    cell_kind: np.ndarray  # (n, cells) int8
    cell_action: np.ndarray  # (n, cells) int8
    cell_colour: np.ndarray  # (n, cells) int8
    colour: np.ndarray  # (n,) int8 dominant colour index (COLOUR_NAMES)
    environment: np.ndarray  # (n,) int8 environment index (ENVIRONMENTS)
    largest_cell: np.ndarray  # (n,) int8 cell of the largest thing, -1 in an empty scene

    def __len__(self) -> int:
        return len(self.pixel_values)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)

    def take(self, idx: np.ndarray | slice) -> SceneBatch:
        return SceneBatch(**{k: v[idx] for k, v in self.__dict__.items()})

    @classmethod
    def concat(cls, batches: list[SceneBatch]) -> SceneBatch:
        """The scenes of ``batches`` one after the other."""
        keys = batches[0].__dict__
        return cls(**{k: np.concatenate([b.__dict__[k] for b in batches]) for k in keys})


def cell_index(item, grid: int = GRID) -> int:
    """The index of an item's cell among the ``grid * grid`` image tokens (row-major, as the
    vision tower's patches)."""
    return item.row * grid + item.col


def cell_targets(scene, grid: int = GRID) -> tuple[np.ndarray, ...]:
    """Per-cell auxiliary targets of one scene (see the module docstring)."""
    labels = scene.dense_labels
    step = labels.shape[0] // grid
    classes = np.zeros((grid * grid, len(DENSE_CLASSES)), np.uint8)
    for r in range(grid):
        for c in range(grid):
            block = labels[r * step : (r + 1) * step, c * step : (c + 1) * step]
            classes[r * grid + c, np.unique(block)] = 1
    colour = np.full(grid * grid, -1, np.int8)
    c = scene.content
    sky = c.dominant_colour if c.dominant_region == "sky" else c.other_colour
    ground = c.dominant_colour if c.dominant_region == "ground" else c.other_colour
    surface = {  # background class -> its named colour in this scene (None: not a named colour)
        "sky": sky if c.environment == "outdoor" else None,
        "ground": ground,
        "wall": c.dominant_colour,
        "floor": c.other_colour,
        "building": c.dominant_colour,
    }
    ids = {DENSE_CLASSES.index(k): v for k, v in surface.items()}
    for r in range(grid):
        for col in range(grid):
            block = labels[r * step : (r + 1) * step, col * step : (col + 1) * step].ravel()
            counts = np.bincount(block, minlength=len(DENSE_CLASSES))
            bg = max(ids, key=lambda i: counts[i])
            if counts[bg] and ids[bg] is not None:
                colour[r * grid + col] = COLOUR_NAMES.index(ids[bg])
    kind = np.zeros(grid * grid, np.int8)
    action = np.full(grid * grid, -1, np.int8)
    for item in scene.content.items:
        k = cell_index(item, grid)
        kind[k] = 1 + ITEM_KINDS.index(item.kind)
        if item.kind == "person":
            action[k] = ACTION_NAMES.index(item.action)
    return classes, kind, action, colour


def encode_answers(tokenizer, answers: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (``</s>`` appended, padded with -1) and lengths of a scene's answers, one row
    per key of :data:`~core.models.demo_vlm.tasks.ANSWER_KEYS`."""
    ids = np.full((len(ANSWER_KEYS), MAX_ANSWER_TOKENS), -1, np.int16)
    lens = np.zeros(len(ANSWER_KEYS), np.int16)
    eos = tokenizer.eos_token_id
    for j, iid in enumerate(ANSWER_KEYS):
        toks = tokenizer(answers[iid], add_special_tokens=False)["input_ids"] + [eos]
        if len(toks) > MAX_ANSWER_TOKENS:
            raise ValueError(f"answer longer than {MAX_ANSWER_TOKENS} tokens: {answers[iid]!r}")
        ids[j, : len(toks)] = toks
        lens[j] = len(toks)
    return ids, lens


def _draw(args):
    seed, stream, index, size = args
    scene = draw_scene(seed, stream, index, size=size)
    c = scene.content
    big = largest_item(c)
    glob = (
        COLOUR_NAMES.index(c.dominant_colour),
        ENVIRONMENTS.index(c.environment),
        -1 if big is None else cell_index(big),
    )
    answers = {k: answer(c, k) for k in ANSWER_KEYS}
    return scene.image, answers, cell_targets(scene), glob


def make_scenes(
    processor,
    stream: str,
    indices,
    world_seed: int = 0,
    render_size: int = 128,
    workers: int = 1,
    progress: bool = False,
) -> SceneBatch:
    """Draw scenes ``indices`` of ``stream`` and turn them into model arrays.

    Parameters
    ----------
    processor : LlavaProcessor
        The model's processor (its image processor gives the pixel values).
    stream : {"train", "heldout"}
        Never ``"stimuli"`` for training.
    indices : iterable of int
    world_seed : int
    render_size : int
        Side at which scenes are drawn before the image processor resizes them.
    workers : int
        Processes drawing scenes in parallel (output is identical for any value).
    """
    indices = [int(i) for i in indices]
    jobs = [(world_seed, stream, i, render_size) for i in indices]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_draw, jobs, chunksize=64)
            results = list(_progress(results, len(jobs), progress, f"drawing {stream} scenes"))
    else:
        results = list(_progress(map(_draw, jobs), len(jobs), progress, f"drawing {stream} scenes"))
    tok = processor.tokenizer
    n = len(results)
    cells = GRID * GRID
    out = SceneBatch(
        pixel_values=np.zeros((n, 3, 1, 1), np.float16),
        answer_ids=np.zeros((n, len(ANSWER_KEYS), MAX_ANSWER_TOKENS), np.int16),
        answer_len=np.zeros((n, len(ANSWER_KEYS)), np.int16),
        cell_classes=np.zeros((n, cells, len(DENSE_CLASSES)), np.uint8),
        cell_kind=np.zeros((n, cells), np.int8),
        cell_action=np.zeros((n, cells), np.int8),
        cell_colour=np.zeros((n, cells), np.int8),
        colour=np.zeros(n, np.int8),
        environment=np.zeros(n, np.int8),
        largest_cell=np.zeros(n, np.int8),
    )
    pixels = []
    chunk = 256
    for start in range(0, n, chunk):
        images = [r[0] for r in results[start : start + chunk]]
        pv = processor.image_processor(images=images, return_tensors="np")["pixel_values"]
        pixels.append(np.asarray(pv, np.float16))
    out.pixel_values = np.concatenate(pixels) if pixels else out.pixel_values
    for i, (_, answers, (classes, kind, action, ccol), (colour, env, big)) in enumerate(results):
        out.answer_ids[i], out.answer_len[i] = encode_answers(tok, answers)
        out.cell_classes[i], out.cell_kind[i], out.cell_action[i] = classes, kind, action
        out.cell_colour[i] = ccol
        out.colour[i], out.environment[i], out.largest_cell[i] = colour, env, big
    return out


def training_scenes(processor, recipe, workers: int = 1, progress: bool = False) -> SceneBatch:
    """Every training scene of ``recipe``: the first ``n_train_scenes`` of the ``"train"``
    stream drawn at ``render_size``, then the polish phase's ``polish_scenes`` fresh ones drawn
    at ``polish_render_size``."""
    kw = dict(world_seed=recipe.world_seed, workers=workers, progress=progress)
    n = recipe.n_train_scenes
    data = make_scenes(processor, "train", range(n), render_size=recipe.render_size, **kw)
    if not recipe.polish_scenes:
        return data
    fresh = make_scenes(
        processor,
        "train",
        range(n, n + recipe.polish_scenes),
        render_size=recipe.polish_render_size,
        **kw,
    )
    return SceneBatch.concat([data, fresh])


def cached_scenes(cache_file: Path | None, **kwargs) -> SceneBatch:
    """:func:`make_scenes`, reading/writing an ``.npz`` cache when ``cache_file`` is given."""
    from core.storage import ArtifactError, load_npz, save_npz

    if cache_file is not None and Path(cache_file).exists():
        try:
            return SceneBatch(**load_npz(cache_file))
        except (ArtifactError, TypeError):
            Path(cache_file).unlink(missing_ok=True)
    data = make_scenes(**kwargs)
    if cache_file is not None:
        save_npz(Path(cache_file), **data.to_arrays())
    return data


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, mininterval=2.0)
