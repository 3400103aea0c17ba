"""Building the embedded demo world: stimuli and simulated subjects, deterministically from a seed.

Layout under the demo folder (default ``<home>/datasets/demo``)::

    dataset.json                 what was built (seed, size, subjects, planted drivers); simulated flag
    stimuli/images/NNNNN.png     the scenes (256 x 256 RGB)
    stimuli/attributes.parquet   structured ground truth, one row per stimulus id
    stimuli/answers.parquet      reference answer per (stimulus id, instruction id)
    stimuli/content.jsonl        full scene content (for redrawing), one JSON object per line
    stimuli/dense_labels.npy     (n_images, 16, 16) uint8 class ids
    stimuli/low_level.npy        (n_images, 19) float32 low-level image statistics
    subjects/<subj>/...          core.data.store layout (responses int8-scaled) + truth.npz
                                 (the planted ground truth per target, see core.data.demo.subjects)

The planted model's drives (pixel-grid statistics, pRF lattice, scene-level drives; see
core.data.demo.drives) are computed from the pictures during the build and not stored: they are
recomputed from the images when an analysis needs them.

The build writes into a temporary sibling folder and renames it at the end, so an interrupted build
never leaves a half-built demo behind.

Worlds (``--world``; see :mod:`core.data.demo.subjects`): ``planted`` (the default demo, named
``demo``) and the negative controls ``null`` and ``uniform``, the same stimuli, targets and
noise with the signal unrelated to the images or the same in every area. A control world is
its own dataset (default name ``demo-null`` / ``demo-uniform`` under ``<home>/datasets/<name>``,
registered so ``--dataset demo-null`` opens it) and never replaces the default demo; its
``dataset.json`` records ``world`` (absent means planted: the planted build is byte-identical to
what it was before worlds existed), and its subjects' content digests fold the world in. The null
world also writes ``stimuli/null_signal_source.npy``: for each stimulus id, the id of the image
whose content drives the responses to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.config import CODE_VERSION, subdir
from core.data.dataset import DatasetError
from core.data.demo.answers import ANSWERS_VERSION
from core.data.demo.drives import PrfBank, pixel_grid, scene_drives
from core.data.demo.scenes import INSTRUCTION_IDS, draw_scene, low_level_features
from core.data.demo.store import default_demo_root
from core.data.demo.subjects import (
    DEMO_ROI_FAMILIES,
    DRIVER_GROUPS,
    GROUP_INSTRUCTIONS,
    PLANTED_DRIVERS,
    UNIFORM_MIX,
    UNIFORM_UNNAMED_SHARE,
    WORLDS,
    PlantedInputs,
    simulate_subject,
)
from core.data.store import save_subject
from core.storage import ArtifactError, atomic_write_bytes, save_npy, save_npz, write_json

#: Build sizes: images (train + shared test), subjects, and the fraction of candidate vertices kept.
SIZES: dict[str, dict] = {
    "small": {"n_train": 240, "n_test": 60, "n_subjects": 2, "density": 0.08, "seen": 0.9},
    "default": {"n_train": 1000, "n_test": 200, "n_subjects": 3, "density": 0.19, "seen": 0.9},
    # the negative-control tests: small, but 4 subjects (an across-subject test needs >= 3)
    "controls": {"n_train": 240, "n_test": 60, "n_subjects": 4, "density": 0.04, "seen": 0.9},
}

DESCRIPTION = (
    "SIMULATED data: generated scenes with known content shown to simulated subjects on "
    "pycortex's subject S1 (a real cortical surface with real ROIs). Responses come from a "
    "planted ground-truth model; nothing here was measured in a brain."
)


@dataclass
class BuildSummary:
    """What a build produced."""

    root: Path
    n_images: int
    n_train: int
    n_test: int
    subjects: dict[str, dict]
    seconds: float
    size_bytes: int
    world: str = "planted"

    def lines(self) -> list[str]:
        label = (
            "" if self.world == "planted" else f", {self.world.upper()} WORLD (negative control)"
        )
        out = [
            f"demo world built at {self.root} in {self.seconds:.1f} s "
            f"({self.size_bytes / 1e6:.1f} MB) [SIMULATED{label}]",
            f"images: {self.n_images} ({self.n_train} train, {self.n_test} shared test)",
        ]
        for name, s in self.subjects.items():
            rois = ", ".join(f"{k} {v}" for k, v in s["targets_per_roi"].items())
            out.append(
                f"{name}: {s['n_targets']} targets ({s['n_general']} in the general mask), "
                f"{s['n_images']} images seen, median noise ceiling {s['median_nc']:.1f}% "
                f"(general mask, 3 repeats)"
            )
            out.append(f"  targets per ROI: {rois}")
        return out


#: What each control world plants, in words (recorded in its dataset.json).
WORLD_NOTES = {
    "null": (
        "NEGATIVE CONTROL (null world): the same stimuli, targets, SNR map and noise as the "
        "planted world of this seed, but every response follows the content of another, "
        "independently drawn image (a derangement of the stimulus ids shared by all targets and "
        "subjects, stimuli/null_signal_source.npy): realistic noise ceilings, subjects agree, "
        "nothing follows the image shown."
    ),
    "uniform": (
        "NEGATIVE CONTROL (uniform world): every target of every area gets the same signal (the "
        "same retinotopy-free mixture of the five tuning groups and the same unnamed content), "
        "so an instruction's advantage is the same everywhere; areas differ only in SNR."
    ),
}




def default_world_name(world: str) -> str:
    """The dataset name of a world built without ``--name``: ``demo`` for the planted world,
    ``demo-<world>`` for a control."""
    return "demo" if world == "planted" else f"demo-{world}"


def world_root(name: str) -> Path:
    """Where the demo world named ``name`` lives by default: ``<home>/datasets/<name>``."""
    return default_demo_root() if name == "demo" else subdir("datasets") / name


def null_signal_source(seed: int, n: int) -> np.ndarray:
    """The null world's image derangement: ``source[i]`` is the stimulus whose content drives
    the responses to stimulus ``i`` (never ``i`` itself: one random cycle through all ids).

    Parameters
    ----------
    seed : int
        World seed.
    n : int
        Number of stimuli.

    Returns
    -------
    source : array of shape (n,), int64
    """
    order = np.random.default_rng([seed, 2100]).permutation(n)
    source = np.empty(n, np.int64)
    source[order] = np.roll(order, -1)
    return source


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def subject_draw(
    seed: int, k: int, is_test: np.ndarray, cfg: dict
) -> tuple[np.ndarray, float, int]:
    """Which images subject ``k`` saw, its target density and its simulation seed.

    Returns
    -------
    seen : bool array of shape (n_images,)
        Every shared test image, and about ``cfg["seen"]`` of the train images.
    density : float
    subject_seed : int
    """
    rng = np.random.default_rng([seed, 100 + k])
    seen = is_test | (rng.random(is_test.size) < cfg["seen"])
    return seen, cfg["density"] * (1.0 - 0.06 * k), int(rng.integers(2**31 - 1))


def build_demo(
    root: Path | None = None,
    size: str = "default",
    seed: int = 0,
    progress: bool = True,
    world: str = "planted",
    name: str | None = None,
    stimulus_seed: int | None = None,
) -> BuildSummary:
    """Build the demo world into ``root`` (replacing what is there).

    Parameters
    ----------
    root : Path, optional
        Target folder; default :func:`world_root` of ``name``.
    size : {"small", "default", "controls"}
        :data:`SIZES`; ``controls`` is the small world with 4 subjects the negative-control
        tests use.
    seed : int
        World seed; the same seed gives byte-identical files.
    progress : bool
        Show a progress bar.
    world : {"planted", "null", "uniform"}
        The planted model or a negative control (see the module docstring).
    name : str, optional
        Dataset name recorded in dataset.json; default :func:`default_world_name`. A name
        other than ``demo`` is registered (:func:`core.data.demo.store.register_world`), so
        ``open_dataset(name)`` and ``--dataset name`` find the world.
    stimulus_seed : int, optional
        Seed of the stimulus images alone (default: ``seed``): worlds that differ only in their
        subjects and responses (e.g. several null worlds) then share the images, and with them
        every stored response embedding.

    Raises
    ------
    ValueError
        For an unknown size or world, or a control world named ``demo``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; expected one of {tuple(SIZES)}")
    if world not in WORLDS:
        raise ValueError(f"unknown demo world {world!r}; expected one of {WORLDS}")
    dataset_name = name or default_world_name(world)
    if world != "planted" and dataset_name == "demo":
        raise ValueError("the name 'demo' is the planted demo; name a control world otherwise")
    cfg = SIZES[size]
    root = Path(root) if root is not None else world_root(dataset_name)
    t0 = time.perf_counter()
    tmp = root.with_name(f".{root.name}.building-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "stimuli" / "images").mkdir(parents=True)

    n_train, n_test = cfg["n_train"], cfg["n_test"]
    n = n_train + n_test
    ids = np.arange(n, dtype=np.int64)
    is_test_all = ids >= n_train  # the last n_test scenes are shared by all subjects
    rows, answers, contents = [], [], []
    pixels = hashlib.sha256()  # the stimulus set's content identity (keys response embeddings)
    dense = np.zeros((n, 16, 16), np.uint8)
    low = np.zeros((n, 19), np.float32)
    grids = np.zeros((n, 7, 32, 32), np.float32)
    scene_dicts = []
    for i in tqdm(ids, desc="drawing scenes", disable=not progress, unit="img"):
        scene = draw_scene(seed if stimulus_seed is None else stimulus_seed, "stimuli", int(i))
        buf = io.BytesIO()
        scene.image.save(buf, format="PNG", optimize=False)
        pixels.update(buf.getvalue())
        atomic_write_bytes(tmp / "stimuli" / "images" / f"{i:05d}.png", buf.getvalue())
        rows.append({"stimulus_id": int(i), "is_test": bool(is_test_all[i]), **scene.attributes()})
        for inst, text in scene.answers().items():
            answers.append({"stimulus_id": int(i), "instruction_id": inst, "answer": text})
        scene_dicts.append(scene.content.to_dict())
        contents.append(json.dumps(scene_dicts[-1], sort_keys=True))
        dense[i] = scene.dense_labels
        low[i] = low_level_features(scene.image)
        grids[i] = pixel_grid(scene.image)
    attributes = pd.DataFrame(rows)
    attributes.to_parquet(tmp / "stimuli" / "attributes.parquet", index=False)
    pd.DataFrame(answers).to_parquet(tmp / "stimuli" / "answers.parquet", index=False)
    atomic_write_bytes(tmp / "stimuli" / "content.jsonl", ("\n".join(contents) + "\n").encode())
    save_npy(tmp / "stimuli" / "dense_labels.npy", dense)
    save_npy(tmp / "stimuli" / "low_level.npy", low)

    inputs = PlantedInputs(scene_drives(attributes, scene_dicts, dense, grids), PrfBank(grids))
    del grids
    source = ids
    if world == "null":
        source = null_signal_source(seed, n)
        save_npy(tmp / "stimuli" / "null_signal_source.npy", source)
    subjects: dict[str, dict] = {}
    subject_names = [f"subj{k + 1:02d}" for k in range(cfg["n_subjects"])]
    for k, name in enumerate(tqdm(subject_names, desc="simulating subjects", disable=not progress)):
        seen, density, subject_seed = subject_draw(seed, k, is_test_all, cfg)
        data, truth = simulate_subject(
            name,
            ids[seen],
            is_test_all[seen],
            inputs.subset(source[np.flatnonzero(seen)]),
            density=density,
            seed=subject_seed,
            world=world,
        )
        folder = tmp / "subjects" / name
        save_subject(folder, data, encoding="int8-scaled")
        save_npz(folder / "truth.npz", **truth)
        t = data.targets
        nc = t.noise_ceiling(3)
        subjects[name] = {
            "n_targets": data.n_targets,
            "n_general": int(t.general_mask.sum()),
            "n_images": int(seen.sum()),
            "median_nc": float(np.median(nc[t.general_mask]) * 100),
            "targets_per_roi": {r: int(t.roi_mask(r).sum()) for r in t.roi_names()},
        }

    record = {
        "name": dataset_name,
        "kind": "demo",
        "simulated": True,
        "description": DESCRIPTION,
        "seed": seed,
        "size": size,
        "config": cfg,
        "code_version": CODE_VERSION,
        "n_images": n,
        "stimuli_digest": pixels.hexdigest()[:32],
        "n_train": n_train,
        "n_test": n_test,
        "subjects": subject_names,
        "subjects_summary": subjects,
        "instruction_ids": list(INSTRUCTION_IDS),
        "answers_version": ANSWERS_VERSION,
        "roi_families": DEMO_ROI_FAMILIES,
        "planted_drivers": PLANTED_DRIVERS,
        "driver_groups": list(DRIVER_GROUPS),
        "driver_instructions": {g: list(v) for g, v in GROUP_INSTRUCTIONS.items()},
        "surface": "pycortex:S1",
    }
    if stimulus_seed is not None and stimulus_seed != seed:  # absent: the images follow seed
        record["stimulus_seed"] = stimulus_seed
    if world != "planted":  # the planted record stays as it was (absent world = planted)
        record["world"] = world
        record["description"] = f"{WORLD_NOTES[world]} {DESCRIPTION}"
        record["planted_drivers"] = {}
        record["planted_world_drivers"] = PLANTED_DRIVERS
        if world == "uniform":
            record["uniform_mix"] = dict(zip(DRIVER_GROUPS[1:-1], UNIFORM_MIX, strict=True))
            record["uniform_unnamed_share"] = UNIFORM_UNNAMED_SHARE
    write_json(tmp / "dataset.json", record)
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)
    if dataset_name != "demo":
        from core.data.demo.store import register_world

        register_world(dataset_name, root)
    return BuildSummary(
        root=root,
        n_images=n,
        n_train=n_train,
        n_test=n_test,
        subjects=subjects,
        seconds=time.perf_counter() - t0,
        size_bytes=_folder_size(root),
        world=world,
    )


def ensure_demo(progress: bool = True) -> bool:
    """Build the default demo world when it is not built yet (under a lock, so two processes
    asking at once build it once). Returns True when it was built now."""
    from core.data.demo.store import demo_info
    from core.storage import file_lock

    with file_lock(subdir("datasets") / "demo.build.lock", what="demo build"):
        try:
            demo_info()
            return False
        except (DatasetError, ArtifactError):
            if progress:
                print("the demo world is not built yet: building it now (about 40 s)")
            build_demo(progress=progress)
            return True
