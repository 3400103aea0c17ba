"""Opening the built demo world as a :class:`~core.data.dataset.Dataset`."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from core.data.dataset import Dataset, DatasetError
from core.data.store import load_subject, stored_subject_digest
from core.storage import ArtifactError, load_npy, load_npz, read_json


class DemoStimuli:
    """The demo's stimulus images (PNG files read on demand) and their known content.

    Parameters
    ----------
    root : Path
        The demo folder.
    ids : array of shape (n_images,), int64
    """

    def __init__(self, root: Path, ids: np.ndarray) -> None:
        self.root = Path(root)
        self.ids = ids

    def image_path(self, stimulus_id: int) -> Path:
        return self.root / "stimuli" / "images" / f"{int(stimulus_id):05d}.png"

    def load_image(self, stimulus_id: int) -> Image.Image:
        """Read one stimulus as RGB; a missing or corrupt file is an :class:`ArtifactError`."""
        if int(stimulus_id) not in self._id_set:
            raise DatasetError(f"unknown demo stimulus id {stimulus_id!r} (0..{len(self.ids) - 1})")
        path = self.image_path(stimulus_id)
        if not path.exists():
            raise ArtifactError(
                f"missing stimulus image {path}; rebuild with `python -m core demo build`"
            )
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except OSError as exc:
            raise ArtifactError(f"corrupt stimulus image {path}: {exc}") from exc

    @cached_property
    def _id_set(self) -> set[int]:
        return {int(i) for i in self.ids}

    def attributes(self) -> pd.DataFrame:
        """Structured ground truth, indexed by stimulus id."""
        return _read_parquet(self.root / "stimuli" / "attributes.parquet").set_index("stimulus_id")

    def answers(self) -> pd.DataFrame:
        """Reference answers: columns stimulus_id, instruction_id, answer."""
        return _read_parquet(self.root / "stimuli" / "answers.parquet")

    def dense_labels(self) -> np.ndarray:
        """(n_images, 16, 16) uint8 class ids."""
        return load_npy(self.root / "stimuli" / "dense_labels.npy")

    def low_level(self) -> np.ndarray:
        """(n_images, 19) float32 low-level statistics."""
        return load_npy(self.root / "stimuli" / "low_level.npy")



def default_demo_root() -> Path:
    """The folder of the default demo world (``<home>/datasets/demo``)."""
    from core.config import subdir

    return subdir("datasets") / "demo"

def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ArtifactError(f"missing file: {path}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise ArtifactError(f"corrupt table {path}: {exc}") from exc


def demo_info(root: Path | None = None) -> dict:
    """The build record (dataset.json) of the demo at ``root``."""
    root = Path(root) if root is not None else default_demo_root()
    if not root.exists():
        raise DatasetError(
            f"the demo world is not built at {root}; run `python -m core demo build`"
        )
    info = read_json(root / "dataset.json")
    if info.get("kind") != "demo":
        raise DatasetError(f"{root / 'dataset.json'} does not describe a demo world")
    from core.data.demo.subjects import DRIVER_GROUPS

    if "driver_groups" in info and list(info["driver_groups"]) != list(DRIVER_GROUPS):
        # its truth codes and ROIs predate the current planted model (e.g. no LOC)
        raise DatasetError(
            f"the demo world at {root} was built by an older version of the demo (planted "
            f"groups {info['driver_groups']}); rebuild it with `python -m core demo build`"
        )
    from core.data.demo.answers import ANSWERS_VERSION

    if info.get("answers_version", 1) != ANSWERS_VERSION:
        raise DatasetError(
            f"the demo world at {root} was built with older reference answers (version "
            f"{info.get('answers_version', 1)}, now {ANSWERS_VERSION}); rebuild it with "
            "`python -m core demo build` (same images and subjects: stored results stay valid)"
        )
    return info


def open_demo(name: str = "demo", path: str | Path | None = None, **_: object) -> Dataset:
    """Open the built demo world.

    Raises
    ------
    DatasetError
        When it is not built (the message says how to build it).
    ArtifactError
        When its files are missing or corrupt (the message names the file).
    """
    root = Path(path) if path else default_demo_root()
    info = demo_info(root)
    ids = np.arange(info["n_images"], dtype=np.int64)

    def loader(subject: str):
        return load_subject(root / "subjects" / subject)

    def subject_keyer(subject: str) -> str:
        return stored_subject_digest(root / "subjects" / subject) or loader(subject).digest()

    return Dataset(
        name=name,
        kind="demo",
        simulated=True,
        stimuli=DemoStimuli(root, ids),
        subject_names=list(info["subjects"]),
        loader=loader,
        metadata=info,
        stimulus_identity=demo_stimulus_identity(root, info),
        subject_keyer=subject_keyer,
    )


def demo_stimulus_identity(root: Path, info: dict) -> dict:
    """The demo stimuli's content identity: the digest of the image files recorded at build
    (computed from the files for a world built before builds recorded it)."""
    digest = info.get("stimuli_digest")
    if digest is None:
        h = hashlib.sha256()
        for i in range(int(info["n_images"])):
            h.update((root / "stimuli" / "images" / f"{i:05d}.png").read_bytes())
        digest = h.hexdigest()[:32]
    return {"kind": "demo", "stimuli_digest": digest}


def demo_world(info: dict) -> str:
    """The world of a built demo from its dataset.json record: ``planted`` (the default, also
    for worlds built before worlds existed), ``null`` or ``uniform``."""
    return str(info.get("world", "planted"))


def register_world(name: str, root: Path) -> None:
    """Record a demo world other than the default (``demo-null``, a seed's copy, ...) in the
    dataset registry, so ``open_dataset(name)`` opens it with :func:`open_demo`.

    (:func:`core.data.registry.register` accepts real datasets only; this writes the same
    registry entry, ``{"kind": "demo", "path": root}``.)

    Raises
    ------
    DatasetError
        For the name ``demo`` (reserved for the default demo) or a bad name.
    """
    from core.data import registry
    from core.storage import write_json

    if name == "demo":
        raise DatasetError("the name 'demo' is reserved for the embedded demo")
    registry.check_name(name)
    entries = {k: v for k, v in registry.configured().items() if k != "demo"}
    entries[name] = {"kind": "demo", "path": str(Path(root).resolve())}
    write_json(registry._registry_path(), entries)


def load_truth(root: Path | None, subject: str) -> dict[str, np.ndarray]:
    """The planted truth of a simulated subject: per target the planted ncsnr, driver, driver
    weights, unnamed share and planted preferences (pRF eccentricity, angle, size and position,
    preferred hue, numerosity and environment; see :mod:`core.data.demo.subjects`)."""
    root = Path(root) if root is not None else default_demo_root()
    return load_npz(root / "subjects" / subject / "truth.npz")
