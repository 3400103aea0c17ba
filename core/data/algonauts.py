"""The Algonauts 2023 challenge release (derived from NSD) as a :class:`~core.data.dataset.Dataset`.

Layout per subject (``subjXX/``)::

    training_split/training_fmri/{lh,rh}_training_fmri.npy   (N, V_hemi) float32, challenge space
    training_split/training_images/train-0001_nsd-00013.png  1-based row, 0-based NSD id
    test_split/test_images/test-0001_nsd-XXXXX.png           (no fMRI)
    roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy       fsaverage vertices of the challenge space
    roi_masks/{lh,rh}.<family>_challenge_space.npy           labels per challenge vertex
    roi_masks/{lh,rh}.<family>_fsaverage_space.npy           labels per fsaverage vertex
    roi_masks/mapping_<family>.npy                           label -> name (a pickled dict)

The paper's split is rebuilt from NSD ids: test = the shared 1,000 images (from NSD's
``sharedix`` when an NSD root is given, else the images every subject of the folder saw), train =
the rest. The ``mapping_*.npy`` files are pickled dicts and are never loaded (no pickle anywhere);
NSD's standard label names are used instead. The noise ceiling comes from NSD's fsaverage ncsnr
when an NSD root is given (repetition counts from NSD's design, sessions 1..N-3, the sessions
Algonauts released); otherwise ``ncsnr`` is None and ``n_repeats`` is 0 (unknown): the
noise ceiling is unavailable and the app says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from core.data import fsaverage
from core.data.dataset import (
    Dataset,
    DatasetError,
    RoiFamily,
    SubjectData,
    TargetGeometry,
    TargetSet,
)
from core.data.nsd import flat_surface_dir, skip_optional
from core.data.nsd_cache import cached_dataset, cached_subject, dataset_options, source_signature
from core.data.nsd_files import read_expdesign, read_stim_info, read_surface_map
from core.data.nsd_layout import (
    NSD_ROI_FAMILIES,
    SESSIONS_PER_SUBJECT,
    NsdLayout,
)
from core.data.nsd_validate import (
    INVALID,
    MISSING,
    OK,
    OPTIONAL_MISSING,
    SKIPPED,
    ValidationReport,
)

HEMIS = ("lh", "rh")
ROI_SPACES = ("challenge", "fsaverage")
#: Sessions at the end of each subject's NSD scans that Algonauts held out as its test set.
HELD_OUT_SESSIONS = 3
_IMAGE_RE = re.compile(r"^(train|test)-(\d{4})_nsd-(\d{5})\.png$")
_SUBJECT_RE = re.compile(r"^subj0[1-8]$")


# --------------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------------
def fmri_path(root: Path, subject: str, hemi: str) -> Path:
    return Path(root) / subject / "training_split/training_fmri" / f"{hemi}_training_fmri.npy"


def images_dir(root: Path, subject: str, split: str = "train") -> Path:
    if split == "train":
        return Path(root) / subject / "training_split/training_images"
    return Path(root) / subject / "test_split/test_images"


def roi_path(root: Path, subject: str, hemi: str, family: str, space: str) -> Path:
    return Path(root) / subject / "roi_masks" / f"{hemi}.{family}_{space}_space.npy"


def all_vertices_path(root: Path, subject: str, hemi: str) -> Path:
    return Path(root) / subject / "roi_masks" / f"{hemi}.all-vertices_fsaverage_space.npy"


def subjects_in(root: str | Path) -> list[str]:
    """Subjects (``subjXX``) with a training fMRI folder."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if _SUBJECT_RE.match(p.name) and (p / "training_split/training_fmri").is_dir()
    )


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------
def image_ids(folder: Path, prefix: str) -> tuple[np.ndarray, list[Path]]:
    """NSD ids of ``<prefix>-RRRR_nsd-NNNNN.png`` files, in row order.

    Returns
    -------
    ids : array of shape (n_images,), int64
        0-based NSD ids, row ``r`` (1-based in the name) at position ``r - 1``.
    paths : list of Path

    Raises
    ------
    DatasetError
        When rows are not exactly 1..n or a name does not follow the pattern.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: expected {prefix}-0001_nsd-NNNNN.png images; found no folder"
        )
    rows: dict[int, tuple[int, Path]] = {}
    for p in folder.iterdir():
        m = _IMAGE_RE.match(p.name)
        if m is None or m.group(1) != prefix:
            if p.suffix == ".png":
                raise DatasetError(
                    f"{p}: expected a name like {prefix}-0001_nsd-00013.png; found {p.name!r}"
                )
            continue
        rows[int(m.group(2))] = (int(m.group(3)), p)
    n = len(rows)
    if sorted(rows) != list(range(1, n + 1)):
        gaps = sorted(set(range(1, max(rows, default=0) + 1)) - set(rows))[:5]
        raise DatasetError(f"{folder}: expected rows {prefix}-0001 .. {n:04d}; missing rows {gaps}")
    ids = np.array([rows[r][0] for r in range(1, n + 1)], dtype=np.int64)
    return ids, [rows[r][1] for r in range(1, n + 1)]


def _load_npy(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: expected {what}; found no file")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:  # truncated, not npy, or an object array
        raise DatasetError(f"{path}: expected {what} as a plain .npy array; found {exc}") from exc


def challenge_vertices(root: Path, subject: str) -> dict[str, np.ndarray]:
    """fsaverage vertex indices of the challenge space per hemisphere (from ``all-vertices``)."""
    out = {}
    for hemi in HEMIS:
        path = all_vertices_path(root, subject, hemi)
        mask = _load_npy(path, "a 0/1 mask over fsaverage vertices")
        if mask.ndim != 1:
            raise DatasetError(
                f"{path}: expected a 1-D mask over fsaverage vertices; found shape {mask.shape}"
            )
        out[hemi] = np.flatnonzero(mask > 0)
    return out


def read_fmri(
    root: Path, subject: str, n_images: int, vertices: dict[str, np.ndarray]
) -> np.ndarray:
    """Both hemispheres' training fMRI, left first.

    Returns
    -------
    responses : array of shape (n_images, n_lh + n_rh), float32
    """
    parts = []
    for hemi in HEMIS:
        path = fmri_path(root, subject, hemi)
        arr = _load_npy(path, f"({n_images}, {vertices[hemi].size}) float32 responses", mmap=True)
        if arr.shape != (n_images, vertices[hemi].size):
            raise DatasetError(
                f"{path}: expected shape ({n_images} training images, {vertices[hemi].size} "
                f"challenge vertices); found {arr.shape}"
            )
        parts.append(arr)
    out = np.empty((n_images, sum(p.shape[1] for p in parts)), dtype=np.float32)
    col = 0
    for p in parts:
        out[:, col : col + p.shape[1]] = p
        col += p.shape[1]
    return out


def roi_families(
    root: Path, subject: str, vertices: dict[str, np.ndarray], space: str = "challenge"
) -> dict[str, RoiFamily]:
    """ROI labels per target from the challenge-space or fsaverage-space masks (families present).

    A family whose file is unusable (wrong shape, unreadable) is skipped with a warning, as the
    validator reports it ("skipped").
    """
    if space not in ROI_SPACES:
        raise DatasetError(f"unknown ROI space {space!r}; expected one of {ROI_SPACES}")
    families = {}
    for family, names in NSD_ROI_FAMILIES.items():
        paths = {h: roi_path(root, subject, h, family, space) for h in HEMIS}
        if not all(p.exists() for p in paths.values()):
            continue
        labels = []
        for hemi, path in paths.items():
            try:
                labels.append(roi_labels(path, family, space, vertices[hemi]))
            except DatasetError as exc:
                skip_optional(path, exc, f"no {family} ROIs for {subject}")
                break
        if len(labels) < len(HEMIS):
            continue
        values = np.rint(np.concatenate(labels)).astype(np.int16)
        families[family] = RoiFamily(family, values, dict(names))
    return families


def roi_labels(path: Path, family: str, space: str, vertices: np.ndarray) -> np.ndarray:
    """One hemisphere's labels per challenge vertex from a ``_challenge_space`` or
    ``_fsaverage_space`` mask file; DatasetError when the shape does not fit ``vertices``."""
    arr = _load_npy(path, f"{family} labels")
    if space == "challenge":
        if arr.shape != (vertices.size,):
            raise DatasetError(f"{path}: expected ({vertices.size},) labels; found {arr.shape}")
        return arr
    if arr.ndim != 1 or (vertices.size and arr.shape[0] <= vertices.max()):
        raise DatasetError(
            f"{path}: expected labels over fsaverage (more than {int(vertices.max(initial=0))} "
            f"vertices); found {arr.shape}"
        )
    return arr[vertices]


def algonauts_repeats(design, subject: str, ids: np.ndarray) -> np.ndarray:
    """Trials behind each Algonauts training image: NSD trials in sessions 1..N-3.

    Returns
    -------
    counts : array of shape (n_images,), int16 (at least 1)
    """
    n_sess = min(SESSIONS_PER_SUBJECT.get(subject, 40), design.n_sessions) - HELD_OUT_SESSIONS
    trials = np.concatenate([design.trial_ids(subject, s) for s in range(1, n_sess + 1)])
    uniq, counts = np.unique(trials, return_counts=True)
    pos = np.searchsorted(uniq, ids)
    pos = np.clip(pos, 0, max(uniq.size - 1, 0))
    found = uniq[pos] == ids
    return np.where(found, counts[pos], 1).astype(np.int16)


def read_algonauts_subject(
    root: str | Path,
    subject: str,
    shared_ids: np.ndarray,
    *,
    nsd_root: str | Path | None = None,
    roi_space: str = "challenge",
) -> SubjectData:
    """Build one subject's :class:`SubjectData` (no cache).

    Parameters
    ----------
    root : path
        Algonauts root (holding ``subjXX/``).
    subject : str
    shared_ids : array of shape (n_shared,)
        NSD ids of the test split (the shared images).
    nsd_root : path, optional
        NSD root for ncsnr and repetition counts.
    roi_space : {"challenge", "fsaverage"}
        Which ROI mask files to read.
    """
    root = Path(root)
    ids, _ = image_ids(images_dir(root, subject, "train"), "train")
    vertices = challenge_vertices(root, subject)
    responses = read_fmri(root, subject, ids.size, vertices)
    n_vertices = int(_load_npy(all_vertices_path(root, subject, "lh"), "mask").shape[0])
    families = roi_families(root, subject, vertices, roi_space)
    ncsnr = None
    n_repeats = np.zeros(ids.size, dtype=np.int16)
    surf_dir = None
    if nsd_root is not None:
        layout = NsdLayout(Path(nsd_root))
        surf_dir = layout.surf_dir("fsaverage")
        maps = [
            read_surface_map(layout.surface_ncsnr(subject, h), "fsaverage ncsnr", n_vertices)[
                vertices[h]
            ]
            for h in HEMIS
        ]
        ncsnr = np.concatenate(maps).astype(np.float32)
        n_repeats = algonauts_repeats(read_expdesign(layout.expdesign), subject, ids)
    hemi = np.concatenate(
        [np.full(vertices[h].size, i, dtype=np.int8) for i, h in enumerate(HEMIS)]
    )
    targets = TargetSet(
        roi_families=families,
        general_mask=np.ones(responses.shape[1], dtype=bool),
        ncsnr=ncsnr,
        geometry=TargetGeometry(
            surface=fsaverage.fsaverage_surface_id(flat_surface_dir(surf_dir)),
            hemi=hemi,
            vertex=np.concatenate([vertices[h] for h in HEMIS]).astype(np.int32),
        ),
    )
    return SubjectData(
        subject=subject,
        stimulus_ids=ids,
        responses=responses,
        n_repeats=n_repeats,
        is_test=np.isin(ids, shared_ids),
        targets=targets,
    )


def shared_ids_for(
    root: Path, subjects: list[str], nsd_root: Path | None
) -> tuple[np.ndarray, str]:
    """The test split's NSD ids and where they came from.

    NSD's ``sharedix`` when ``nsd_root`` is given; else the images all (>= 2) subjects saw.
    """
    if nsd_root is not None:
        return read_expdesign(NsdLayout(Path(nsd_root)).expdesign).shared_ids(), "NSD sharedix"
    if len(subjects) < 2:
        raise DatasetError(
            f"{root}: cannot rebuild the shared-1,000 test split from one subject; give the NSD "
            "root (nsd_root=...) or a folder with at least two subjects"
        )
    common = None
    for s in subjects:
        ids = np.concatenate([ids for ids, _ in split_images(root, s)])
        common = ids if common is None else np.intersect1d(common, ids)
    return np.sort(common), f"images seen by all of {', '.join(subjects)}"


def split_images(root: Path, subject: str) -> list[tuple[np.ndarray, list[Path]]]:
    """``(ids, paths)`` of the training images, then of the test images when their (optional)
    folder exists; an unusable test folder is skipped with a warning (the validator: "skipped")."""
    out = [image_ids(images_dir(root, subject, "train"), "train")]
    test = images_dir(root, subject, "test")
    if test.is_dir():
        try:
            out.append(image_ids(test, "test"))
        except DatasetError as exc:
            skip_optional(test, exc, f"{subject}'s test images are not used")
    return out


class AlgonautsStimuli:
    """Algonauts PNG images by NSD id (lazy; one file read per call).

    Parameters
    ----------
    paths : dict of int to Path
        NSD id -> one PNG showing it.
    info_path : Path, optional
        NSD's stim info CSV, for :meth:`attributes`.
    """

    def __init__(self, paths: dict[int, Path], info_path: Path | None = None) -> None:
        self._paths = dict(paths)
        self.ids = np.array(sorted(self._paths), dtype=np.int64)
        self.info_path = info_path

    def load_image(self, stimulus_id: int) -> Image.Image:
        sid = int(stimulus_id)
        if sid not in self._paths:
            raise DatasetError(f"no Algonauts image with NSD id {sid}")
        path = self._paths[sid]
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except Exception as exc:
            raise DatasetError(f"{path}: expected a PNG image; found {exc}") from exc

    def attributes(self) -> pd.DataFrame | None:
        if self.info_path is None or not Path(self.info_path).exists():
            return None
        df = read_stim_info(self.info_path)
        return df.loc[df.index.intersection(self.ids)]


def open_algonauts(
    name: str = "algonauts",
    path: str | Path | None = None,
    *,
    nsd_root: str | Path | None = None,
    subjects: list[str] | None = None,
    roi_space: str = "challenge",
    encoding: str = "float32",
    cache: bool = True,
) -> Dataset:
    """Open an Algonauts 2023 folder as a :class:`Dataset`.

    Parameters
    ----------
    name : str
        Registry name (cache under ``<home>/datasets/<name>/``).
    path : path
        Algonauts root (holding ``subjXX/``).
    nsd_root : path, optional
        A local NSD root: the split from ``sharedix``, the noise ceiling from ncsnr. Defaults
        to the one saved by ``python -m core datasets add algonauts PATH --nsd-root NSD``.
    subjects : list of str, optional
        Restrict to these subjects (default: the ones saved by ``datasets add --subjects``, else
        every subject folder).
    roi_space : {"challenge", "fsaverage"}
    encoding : str
        Cache response encoding.
    cache : bool
    """
    if path is None:
        raise DatasetError("open_algonauts needs the path of an Algonauts 2023 folder")
    root = Path(path)
    saved = dataset_options(name)
    if nsd_root is None:
        nsd_root = saved.get("nsd_root")
    if subjects is None:
        subjects = saved.get("subjects")
    found = subjects_in(root)
    if not found:
        raise DatasetError(
            f"{root}: expected subjXX/training_split/training_fmri/ folders; found none"
        )
    if subjects is not None:
        missing = [s for s in subjects if s not in found]
        if missing:
            raise DatasetError(f"{root}: no subject folder(s) {missing}; found {found}")
        found = [s for s in found if s in subjects]
    nsd = Path(nsd_root) if nsd_root is not None else None
    shared, split_source = shared_ids_for(root, subjects_in(root), nsd)
    paths: dict[int, Path] = {}
    for s in found:
        for ids, files in split_images(root, s):
            for i, p in zip(ids.tolist(), files, strict=True):
                paths.setdefault(i, p)
    stimuli = AlgonautsStimuli(paths, NsdLayout(nsd).stim_info if nsd is not None else None)
    options = {"roi_space": roi_space, "nsd_root": str(nsd.resolve()) if nsd else None}

    def load(subject: str) -> SubjectData:
        def build() -> SubjectData:
            return read_algonauts_subject(root, subject, shared, nsd_root=nsd, roi_space=roi_space)

        if not cache:
            return build()
        sources, opts = subject_sources(subject)
        return cached_subject(name, subject, sources, opts, build, encoding)

    def subject_sources(subject: str) -> tuple[list[Path], dict]:
        sources = [fmri_path(root, subject, h) for h in HEMIS]
        sources += [all_vertices_path(root, subject, h) for h in HEMIS]
        sources += [
            roi_path(root, subject, h, f, roi_space) for h in HEMIS for f in NSD_ROI_FAMILIES
        ]
        sources.append(images_dir(root, subject, "train"))
        if nsd is not None:
            layout = NsdLayout(nsd)
            sources += [layout.expdesign, *(layout.surface_ncsnr(subject, h) for h in HEMIS)]
            sources += [layout.flat_patch(h) for h in HEMIS]
        return sources, {**options, "shared": shared}

    return cached_dataset(
        name=name,
        kind="algonauts",
        stimuli=stimuli,
        subjects=found,
        loader=load,
        stimulus_identity={
            "kind": "algonauts",
            "stimuli": source_signature(sorted({p.parent for p in paths.values()})),
            "n_images": len(paths),
        },
        subject_sources=subject_sources,
        cache=cache,
        metadata={
            "root": str(root.resolve()),
            "nsd_root": options["nsd_root"],
            "roi_space": roi_space,
            "split": f"test = shared images ({split_source}); train = the rest",
            "n_shared": int(shared.size),
            "noise_ceiling": "NSD ncsnr (fsaverage), mixed-repetition formula"
            if nsd is not None
            else "unavailable: give the NSD root for ncsnr",
            "general_mask": "the challenge space (nsdgeneral plus RSC)",
        },
    )


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def validate_algonauts(
    root: str | Path,
    nsd_root: str | Path | None = None,
    subjects: list[str] | None = None,
) -> ValidationReport:
    """Check an Algonauts 2023 folder file by file (and the NSD files it borrows, if given).

    ``subjects`` restricts the per-subject checks (default: every subject folder). An optional
    file that exists but is unusable (a ROI mask of the wrong shape, a badly named test image) is
    reported ``skipped``, as :func:`open_algonauts` skips it with a warning.
    """
    root = Path(root)
    report = ValidationReport("algonauts", root)
    found = subjects_in(root)
    if not found:
        report.add(root, MISSING, True, "subjXX/training_split/training_fmri/", "no subject folder")
        return report
    for s in subjects or []:
        if s not in found:
            report.add(
                fmri_path(root, s, "lh").parent,
                MISSING,
                True,
                f"{s}/training_split/training_fmri/",
                f"no such subject folder; found {', '.join(found)}",
            )
    subjects = [s for s in found if s in subjects] if subjects else found
    report.summary["subjects"] = ", ".join(subjects) or "none"
    for s in subjects:
        _validate_subject(report, root, s)
    if nsd_root is not None:
        layout = NsdLayout(Path(nsd_root))

        def design():
            d = read_expdesign(layout.expdesign)
            return d, f"sharedix {d.sharedix.shape}"

        report.check(layout.expdesign, True, "NSD design (split, repetition counts)", design)
        for s in subjects:
            for h in HEMIS:
                p = layout.surface_ncsnr(s, h)
                report.check(
                    p,
                    True,
                    "fsaverage ncsnr (noise ceiling)",
                    lambda p=p: (None, f"{read_surface_map(p, 'ncsnr').shape[0]} vertices"),
                )
        report.summary["split"] = "test = NSD sharedix"
        report.summary["noise ceiling"] = "from NSD ncsnr"
    else:
        report.summary["split"] = (
            "test = images seen by every subject"
            if len(found) > 1
            else "cannot be rebuilt from one subject: give the NSD root"
        )
        report.summary["noise ceiling"] = "unavailable (no NSD root)"
        if len(found) < 2:
            report.add(
                root,
                INVALID,
                True,
                "two subjects or an NSD root (to rebuild the split)",
                "one subject",
            )
    return report


def _validate_subject(report: ValidationReport, root: Path, subject: str) -> None:
    folder = images_dir(root, subject, "train")
    n_images = None
    try:
        ids, _ = image_ids(folder, "train")
        n_images = ids.size
        report.add(folder, OK, True, "train-RRRR_nsd-NNNNN.png, rows 1..N", f"{ids.size} images")
    except DatasetError as exc:
        status = MISSING if not folder.is_dir() else INVALID
        report.add(folder, status, True, "train-RRRR_nsd-NNNNN.png, rows 1..N", str(exc))
    test = images_dir(root, subject, "test")
    try:
        tids, _ = image_ids(test, "test")
        report.add(test, OK, False, "test-RRRR_nsd-NNNNN.png", f"{tids.size} images")
    except DatasetError as exc:
        missing = not test.is_dir()
        report.add(
            test,
            OPTIONAL_MISSING if missing else SKIPPED,
            False,
            "test-RRRR_nsd-NNNNN.png",
            "no folder" if missing else f"{exc}; skipped when loading",
        )
    counts: dict[str, int | None] = {}
    vertices: dict[str, np.ndarray | None] = {}
    for h in HEMIS:
        p = all_vertices_path(root, subject, h)

        def allv(p=p):
            m = _load_npy(p, "mask")
            if m.ndim != 1:
                raise DatasetError(f"shape {m.shape}")
            return np.flatnonzero(
                m > 0
            ), f"{m.shape[0]} fsaverage vertices, {int((m > 0).sum())} in the challenge space"

        vertices[h] = report.check(p, True, "0/1 mask over fsaverage vertices", allv)
        counts[h] = None if vertices[h] is None else int(vertices[h].size)
    for h in HEMIS:
        p = fmri_path(root, subject, h)

        def fmri(p=p, h=h):
            arr = _load_npy(p, "responses", mmap=True)
            want = (n_images, counts[h])
            if arr.ndim != 2 or (None not in want and arr.shape != want):
                raise DatasetError(
                    f"shape {arr.shape}, expected {want} (images, challenge vertices)"
                )
            return None, f"{arr.shape} {arr.dtype}"

        report.check(p, True, f"(N images, V_{h}) float32", fmri)
    for family in NSD_ROI_FAMILIES:
        for h in HEMIS:
            for space in ROI_SPACES:
                p = roi_path(root, subject, h, family, space)

                def roi(p=p, h=h, space=space, family=family):
                    if vertices[h] is not None:  # the loader's own check
                        roi_labels(p, family, space, vertices[h])
                    arr = _load_npy(p, "labels")
                    values = sorted(int(v) for v in np.unique(arr) if v > 0)
                    return None, f"{arr.shape}; label values {values}"

                report.check(p, False, f"{family} labels ({space} space)", roi)
        m = root / subject / "roi_masks" / f"mapping_{family}.npy"
        report.add(
            m,
            OK if m.exists() else OPTIONAL_MISSING,
            False,
            "label -> name (a pickled dict: not loaded; NSD's standard names are used)",
            "present" if m.exists() else "no file",
        )
