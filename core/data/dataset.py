"""The one representation every dataset fills: demo world, NSD and Algonauts 2023 alike.

A :class:`Dataset` has

- a :class:`StimulusSet`: stimulus ids and lazy image access (never all images in memory), plus the
  known content of each image where the dataset has it;
- one :class:`SubjectData` per subject: repetition-averaged responses (images x targets, float32),
  the number of repetitions behind each row, and the train/test split (test = images shared by all
  subjects); where the reader keeps them, the single repeats of the test images;
- per subject a :class:`TargetSet`: ROI labels from several ROI families, membership of the general
  visual mask (NSD's ``nsdgeneral``), the noise-ceiling SNR (``ncsnr``), and the geometry that places
  each target on a cortical surface (:class:`TargetGeometry`).

Everything is stored on disk in one pickle-free layout (see :mod:`core.data.store`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from PIL import Image

from core.data.noise_ceiling import noise_ceiling_from_ncsnr
from core.hashing import array_digest


class DatasetError(ValueError):
    """A dataset, subject or file is missing, malformed or does not match what was asked for."""


@dataclass(frozen=True)
class RoiFamily:
    """One family of ROI labels over a subject's targets (e.g. NSD ``floc-faces``).

    Parameters
    ----------
    name : str
        Family name, e.g. ``"prf-visualrois"``.
    labels : array of shape (n_targets,), int16
        Label value per target; 0 = unlabelled, -1 = outside the brain.
    names : dict of int to str
        Label value to ROI name, e.g. ``{1: "V1v", 2: "V1d"}``.
    """

    name: str
    labels: np.ndarray
    names: dict[int, str]

    def values_of(self, roi: str) -> list[int]:
        """Label values whose name is ``roi`` (one ROI may span several values, e.g. V1v+V1d)."""
        return [v for v, n in self.names.items() if n == roi]


@dataclass(frozen=True)
class TargetGeometry:
    """Where each target sits on a cortical surface.

    Parameters
    ----------
    surface : str
        Surface identifier understood by :mod:`core.data.surfaces`, e.g. ``"pycortex:S1"``,
        ``"fsaverage"``, ``"nsd:<root>:subj01"``.
    hemi : array of shape (n_targets,), int8
        0 = left hemisphere, 1 = right hemisphere.
    vertex : array of shape (n_targets,), int32
        Vertex index within that hemisphere's mesh.
    """

    surface: str
    hemi: np.ndarray
    vertex: np.ndarray


@dataclass(frozen=True)
class TargetSet:
    """Per-target annotations of one subject's response space.

    Parameters
    ----------
    roi_families : dict of str to RoiFamily
        ROI label families.
    general_mask : array of shape (n_targets,), bool
        Membership of the general visual mask (NSD ``nsdgeneral``).
    ncsnr : array of shape (n_targets,), float32, or None
        Noise-ceiling SNR (signal sd / noise sd of single trials); None when unavailable.
    geometry : TargetGeometry or None
        Surface placement of targets, for flatmaps.
    """

    roi_families: dict[str, RoiFamily]
    general_mask: np.ndarray
    ncsnr: np.ndarray | None = None
    geometry: TargetGeometry | None = None

    @property
    def n_targets(self) -> int:
        return int(self.general_mask.shape[0])

    def roi_names(self) -> list[str]:
        """Every ROI name over all families, in family order, without duplicates."""
        out: list[str] = []
        for fam in self.roi_families.values():
            for value in sorted(fam.names):
                if value > 0 and fam.names[value] not in out:
                    out.append(fam.names[value])
        return out

    def family_of(self, roi: str) -> RoiFamily:
        """The family that defines ``roi``."""
        for fam in self.roi_families.values():
            if fam.values_of(roi):
                return fam
        raise DatasetError(f"unknown ROI {roi!r}; known: {', '.join(self.roi_names())}")

    def roi_mask(self, roi: str, within_general: bool = True) -> np.ndarray:
        """Boolean mask of the targets in ``roi``.

        Parameters
        ----------
        roi : str
            ROI name (any family).
        within_general : bool
            If True (default, the scientifically correct choice), the mask is label AND general
            visual mask; targets outside the general mask are never counted into ROI summaries.

        Returns
        -------
        mask : array of shape (n_targets,), bool
        """
        fam = self.family_of(roi)
        mask = np.isin(fam.labels, fam.values_of(roi))
        if within_general:
            mask &= self.general_mask
        return mask

    def noise_ceiling(self, n_repeats: float | np.ndarray = 3.0) -> np.ndarray | None:
        """Noise ceiling as a fraction of variance, from ncsnr (NSD formula).

        See :func:`core.data.noise_ceiling.noise_ceiling_from_ncsnr`.
        Returns None when the dataset has no ncsnr.
        """
        if self.ncsnr is None:
            return None
        return noise_ceiling_from_ncsnr(self.ncsnr, n_repeats)

    def digest(self) -> str:
        """A content hash of the target set (ROIs, masks, geometry), for encoder compatibility."""
        parts = [array_digest(self.general_mask.astype(bool))]
        for name in sorted(self.roi_families):
            parts.append(name + array_digest(self.roi_families[name].labels))
        if self.geometry is not None:
            parts.append(self.geometry.surface + array_digest(self.geometry.vertex))
        return array_digest(np.frombuffer("|".join(parts).encode(), dtype=np.uint8))[:24]


@dataclass
class SubjectData:
    """One subject's responses and annotations.

    Parameters
    ----------
    subject : str
        Subject id, e.g. ``"subj01"``.
    stimulus_ids : array of shape (n_images,), int64
        Stimulus id of each response row.
    responses : array of shape (n_images, n_targets), float32
        Responses averaged over the repetitions of each image.
    n_repeats : array of shape (n_images,), int16
        Number of trials averaged into each row (the repetition structure, for noise ceilings).
    is_test : array of shape (n_images,), bool
        Test split (images shared by all subjects); the rest is train.
    targets : TargetSet
        Per-target annotations.
    content_digest : str or None
        The digest recorded when the subject was stored (see :meth:`digest`); None for a subject
        built in memory, whose digest is computed from its arrays on first use.
    test_repeats : array of shape (n_repeats, n_test, n_targets), float32, a function returning
        it, or None
        The single repeats of the test images, in the order of the test rows
        (:meth:`split`), NaN where an image has fewer repeats; read on first use through
        :meth:`test_repeat_responses`. None where the reader keeps no repeats. Not part of
        :meth:`digest`: the responses are their mean.
    """

    subject: str
    stimulus_ids: np.ndarray
    responses: np.ndarray
    n_repeats: np.ndarray
    is_test: np.ndarray
    targets: TargetSet
    content_digest: str | None = None
    test_repeats: np.ndarray | Callable[[], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        n_img = self.stimulus_ids.shape[0]
        if self.responses.ndim != 2:
            raise DatasetError(f"{self.subject}: responses must be 2-D, got {self.responses.shape}")
        if self.responses.shape[0] != n_img:
            raise DatasetError(
                f"{self.subject}: {self.responses.shape[0]} response rows but {n_img} stimulus ids"
            )
        if self.responses.shape[1] != self.targets.n_targets:
            raise DatasetError(
                f"{self.subject}: {self.responses.shape[1]} response columns but "
                f"{self.targets.n_targets} targets"
            )
        for name in ("n_repeats", "is_test"):
            if getattr(self, name).shape != (n_img,):
                raise DatasetError(f"{self.subject}: {name} must have shape ({n_img},)")

    @property
    def n_targets(self) -> int:
        return int(self.responses.shape[1])

    def test_repeat_responses(self) -> np.ndarray | None:
        """The single repeats of the test images (see ``test_repeats``), read on first use.

        Returns
        -------
        repeats : array of shape (n_repeats, n_test, n_targets), float32, or None
            None where the reader keeps no repeats.

        Raises
        ------
        DatasetError
            When the repeats do not match the test rows and targets.
        """
        if callable(self.test_repeats):
            self.test_repeats = np.asarray(self.test_repeats(), dtype=np.float32)
        if self.test_repeats is None:
            return None
        shape = (int(self.is_test.sum()), self.n_targets)
        if self.test_repeats.ndim != 3 or self.test_repeats.shape[1:] != shape:
            raise DatasetError(f"{self.subject}: test repeats of shape {self.test_repeats.shape}, "
                               f"expected (n_repeats, {shape[0]}, {shape[1]})")  # fmt: skip
        return self.test_repeats

    def digest(self) -> str:
        """Content identity of everything a fit reads from this subject.

        A hash of the subject id, stimulus ids, split, repeat counts, responses, noise-ceiling
        SNR and the target set (:meth:`TargetSet.digest`). Fits, encoders, partitions and
        results-table rows are keyed by it, so a rebuilt or re-read subject never meets an old
        artifact. Computed once (about 1 s per GB of responses) and recorded by
        :func:`core.data.store.save_subject`.

        Returns
        -------
        digest : str
            24 hex characters.
        """
        if self.content_digest is None:
            parts = [
                self.subject,
                array_digest(np.asarray(self.stimulus_ids, np.int64)),
                array_digest(np.asarray(self.is_test, bool)),
                array_digest(np.asarray(self.n_repeats, np.int16)),
                array_digest(np.asarray(self.responses, np.float32)),
                self.targets.digest(),
                array_digest(self.targets.ncsnr) if self.targets.ncsnr is not None else "-",
            ]
            self.content_digest = array_digest(
                np.frombuffer("|".join(parts).encode(), dtype=np.uint8)
            )[:24]
        return self.content_digest

    @property
    def train_ids(self) -> np.ndarray:
        return self.stimulus_ids[~self.is_test]

    @property
    def test_ids(self) -> np.ndarray:
        return self.stimulus_ids[self.is_test]

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of (train, test)."""
        return np.flatnonzero(~self.is_test), np.flatnonzero(self.is_test)

    def rows_for(self, ids: np.ndarray) -> np.ndarray:
        """Row indices of the given stimulus ids; an unknown id is a :class:`DatasetError`."""
        index = pd.Index(self.stimulus_ids)
        rows = index.get_indexer(np.asarray(ids))
        if (rows < 0).any():
            missing = np.asarray(ids)[rows < 0][:5].tolist()
            raise DatasetError(f"{self.subject}: stimulus ids not seen by this subject: {missing}")
        return rows

    def noise_ceiling(self, rows: np.ndarray | None = None) -> np.ndarray | None:
        """Per-target noise ceiling (fraction) for the mean over ``rows`` (default: test rows).

        Uses the mixed-repetition formula with the actual repeat counts of those rows.
        """
        if rows is None:
            rows = np.flatnonzero(self.is_test)
        return self.targets.noise_ceiling(self.n_repeats[rows])


@runtime_checkable
class StimulusSet(Protocol):
    """Stimulus ids with lazy, per-image access."""

    ids: np.ndarray

    def load_image(self, stimulus_id: int) -> Image.Image:
        """Return one stimulus as an RGB PIL image."""

    def attributes(self) -> pd.DataFrame | None:
        """Known content per image (indexed by stimulus id), or None."""


@dataclass
class Dataset:
    """A dataset: stimuli, subjects (loaded lazily) and descriptive metadata.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"demo"``.
    kind : str
        ``"demo"``, ``"nsd"`` or ``"algonauts"``.
    simulated : bool
        True for the simulated demo; every view must show it.
    stimuli : StimulusSet
        The images.
    subject_names : list of str
        Available subjects.
    loader : callable
        ``loader(subject) -> SubjectData``.
    metadata : dict
        Free-form description (seed, size, provenance).
    stimulus_identity : dict or None
        What the images are, by content (demo: a digest of the image files; NSD: the stimulus
        file's signature). Response-embedding shards are keyed by it, never by the dataset's
        name. None: computed from the images themselves on first use (small datasets only).
    subject_keyer : callable or None
        ``subject_keyer(subject) -> str``: the subject's content key without loading its
        responses (a recorded digest, or a hash of the source files' signature and load
        options). None: :meth:`SubjectData.digest` of the loaded subject.
    """

    name: str
    kind: str
    simulated: bool
    stimuli: StimulusSet
    subject_names: list[str]
    loader: object
    metadata: dict = field(default_factory=dict)
    stimulus_identity: dict | None = None
    subject_keyer: object = None
    _subject_keys: dict[str, str] = field(default_factory=dict, repr=False)
    _subjects: dict[str, SubjectData] = field(default_factory=dict, repr=False)

    def subject(self, subject: str) -> SubjectData:
        """Load (once) and return one subject's data."""
        if subject not in self.subject_names:
            raise DatasetError(
                f"unknown subject {subject!r} in dataset {self.name!r}; "
                f"available: {', '.join(self.subject_names)}"
            )
        if subject not in self._subjects:
            self._subjects[subject] = self.loader(subject)  # type: ignore[operator]
        return self._subjects[subject]

    def stimulus_key(self) -> dict:
        """The content identity of the stimulus set (JSON-able; part of embedding keys)."""
        if self.stimulus_identity is None:
            h = hashlib.sha256()
            for sid in np.asarray(self.stimuli.ids):
                h.update(array_digest(np.asarray(self.stimuli.load_image(int(sid)))).encode())
            self.stimulus_identity = {"kind": self.kind, "pixels_sha256": h.hexdigest()[:32]}
        return self.stimulus_identity

    def subject_key(self, subject: str) -> str:
        """The content key of one subject's data (see :meth:`SubjectData.digest`).

        Cheap when the opener provides a ``subject_keyer`` (no responses are read); otherwise
        the subject is loaded and hashed once.
        """
        if subject not in self._subject_keys:
            if subject not in self.subject_names:
                self.subject(subject)  # raises the unknown-subject error
            if self.subject_keyer is not None:
                self._subject_keys[subject] = str(self.subject_keyer(subject))  # type: ignore[operator]
            else:
                self._subject_keys[subject] = self.subject(subject).digest()
        return self._subject_keys[subject]

    def subject_keys(self) -> dict[str, str]:
        """Subject -> content key, for every subject."""
        return {s: self.subject_key(s) for s in self.subject_names}

    def shared_test_ids(self) -> np.ndarray:
        """Stimulus ids in every subject's test split (sorted)."""
        ids: np.ndarray | None = None
        for s in self.subject_names:
            t = self.subject(s).test_ids
            ids = t if ids is None else np.intersect1d(ids, t)
        return np.sort(ids) if ids is not None else np.array([], dtype=np.int64)
