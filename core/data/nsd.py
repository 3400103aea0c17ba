"""The Natural Scenes Dataset (NSD) from a local mirror, as a :class:`~core.data.dataset.Dataset`.

Per subject, for the chosen sessions (default: every session on disk):

1. trial -> image from ``nsd_expdesign.mat`` (``img73k = subjectim[s-1, masterordering[k]-1] - 1``);
2. betas b3 read session by session (func1pt8mm NIfTI or HDF5 by :mod:`core.data.nsd_volume`, only
   the kept voxels, in the order the file's chunks favour; or fsaverage MGH), int16 / 300;
3. each target z-scored over the session's 750 trials (``zscore=True``, NSD's convention);
4. trials of the same image summed into one running image x target array and divided by the
   repetition count at the end (counts kept as ``n_repeats``); the single trials of the shared
   test images are kept too (``test_repeats``, float32, for the RSA noise ceiling);
5. targets = ``nsdgeneral`` voxels/vertices (or every brain target), ROI labels from all NSD ROI
   families, ``ncsnr`` for noise ceilings, fsaverage geometry for flatmaps (func1pt8mm targets
   too, placed through NSD's transforms when ``nsddata/ppdata/subjXX/transforms/`` has them:
   :func:`with_projection_geometry`, :mod:`core.data.nsd_projection`);
6. train = the subject's own images, test = the shared 1,000 (``sharedix``).

Only one session (of the kept targets) is in memory at a time, plus the output array and the
test repeats (at most 3 x 1,000 test images x targets, float32). The first
load of a subject writes a compact cache (:mod:`core.data.nsd_cache`); later loads read it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.config import subdir
from core.data import fsaverage
from core.data.dataset import (
    Dataset,
    DatasetError,
    RoiFamily,
    SubjectData,
    TargetGeometry,
    TargetSet,
)
from core.data.nsd_cache import cached_dataset, cached_subject, dataset_options, source_signature
from core.data.nsd_files import (
    ExpDesign,
    as_labels,
    read_ctab,
    read_expdesign,
    read_surface_map,
    read_volume,
    stream_mgh_betas,
    volume_index,
)
from core.data.nsd_layout import (
    GENERAL_MASK,
    NSD_ROI_FAMILIES,
    SPACES,
    TRIALS_PER_SESSION,
    NsdLayout,
    check_sessions,
    check_subject,
    format_sessions,
    root_hint,
    session_gaps,
)
from core.data.nsd_projection import (
    VolumeProjection,
    drawable_vertices,
    load_projection,
    missing_transforms,
)
from core.data.nsd_stimuli import NsdStimuli
from core.data.nsd_volume import read_volume_session

TARGET_CHOICES = ("nsdgeneral", "brain")
#: Bumped when this reader changes what it caches from the same files (part of each subject's
#: cache key; :data:`core.data.nsd_cache.READER_VERSION` is shared with Algonauts). 2: the test
#: images' single repeats are cached too.
NSD_READER_VERSION = 2
Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------------------------
# target space: which voxels/vertices, their ROIs, ncsnr and geometry
# --------------------------------------------------------------------------------------------
def skip_optional(path: Path, error: Exception, instead: str) -> None:
    """Warn that an optional file is unusable and is skipped (the validator reports "skipped")."""
    message = str(error)
    prefix = f"{path}: "
    message = message[len(prefix) :] if message.startswith(prefix) else message
    warnings.warn(f"{path}: skipped ({message}); {instead}", UserWarning, stacklevel=3)


def flat_surface_dir(surf_dir: Path | None) -> Path | None:
    """``surf_dir`` when its flat patches and inflated surfaces exist and read (used for
    flatmaps); None (nilearn's fsaverage5 flatmap) when any is absent, or unusable (warned)."""
    if surf_dir is None:
        return None
    surf_dir = Path(surf_dir)
    if fsaverage.fsaverage_surface_id(surf_dir) == fsaverage.NILEARN_FSAVERAGE:
        return None  # some of the four files are absent: the optional flatmap is not there
    for hemi in ("lh", "rh"):
        try:
            fsaverage.load_freesurfer_flat(surf_dir, hemi)
        except DatasetError as exc:
            path = surf_dir / f"{hemi}.full.flat.patch.3d"
            skip_optional(path, exc, "flatmaps use nilearn's fsaverage5 flat surface")
            return None
    return surf_dir


def _roi_names(layout: NsdLayout, family: str, surface_subject: str) -> dict[int, str]:
    ctab = layout.roi_ctab(surface_subject, family)
    if ctab.exists():
        try:
            return read_ctab(ctab)
        except DatasetError as exc:
            skip_optional(ctab, exc, "using NSD's standard names")
    return dict(NSD_ROI_FAMILIES[family])


def volume_targets(layout: NsdLayout, subject: str, targets: str = "nsdgeneral"):
    """Targets of a func1pt8mm subject.

    Returns
    -------
    shape : (X, Y, Z)
    index : array of shape (n_targets,)
        Flat (Z, Y, X) indices for the beta streams (see :func:`volume_index`).
    target_set : TargetSet
        ROIs (label values within the kept voxels), general mask, ncsnr; no geometry.
    sources : list of Path
    """
    gpath = layout.volume_roi(subject, GENERAL_MASK)
    general = as_labels(read_volume(gpath, "nsdgeneral labels (-1 outside brain, 0, 1)"), gpath)
    shape = general.shape
    keep = general == 1 if targets == "nsdgeneral" else general >= 0
    families: dict[str, RoiFamily] = {}
    sources = [gpath]
    for family in NSD_ROI_FAMILIES:
        path = layout.volume_roi(subject, family)
        if not path.exists():
            continue
        try:
            labels = as_labels(read_volume(path, f"{family} ROI labels", shape), path)[keep]
        except DatasetError as exc:
            skip_optional(path, exc, f"no {family} ROIs for {subject}")
            continue
        families[family] = RoiFamily(family, labels, _roi_names(layout, family, subject))
        sources += [path, layout.roi_ctab(subject, family)]
    npath = layout.volume_ncsnr(subject)
    ncsnr = None
    if npath.exists():
        try:
            ncsnr = read_volume(npath, "ncsnr per voxel", shape)[keep].astype(np.float32)
            sources.append(npath)
        except DatasetError as exc:
            skip_optional(npath, exc, f"no noise ceiling for {subject}")
    target_set = TargetSet(
        roi_families=families, general_mask=(general == 1)[keep], ncsnr=ncsnr, geometry=None
    )
    return shape, volume_index(keep), target_set, sources


def volume_voxels(layout: NsdLayout, subject: str, targets: str = "nsdgeneral"):
    """The func1pt8mm grid and each target's voxel, in target order (reads ``nsdgeneral`` only).

    Returns
    -------
    shape : (X, Y, Z)
    voxels : array of shape (n_targets, 3), int64
        0-based (x, y, z), the order of :func:`volume_targets` (``np.argwhere(keep)``).
    """
    gpath = layout.volume_roi(subject, GENERAL_MASK)
    general = as_labels(read_volume(gpath, "nsdgeneral labels (-1 outside brain, 0, 1)"), gpath)
    keep = general == 1 if targets == "nsdgeneral" else general >= 0
    return general.shape, np.argwhere(keep).astype(np.int64)


def projection_cache_dir(name: str, subject: str) -> Path:
    """Where a dataset's volume-to-surface projections are cached:
    ``<home>/datasets/<name>/<subject>/projection``."""
    return subdir("datasets", name) / subject / "projection"


def volume_projection(
    layout: NsdLayout,
    subject: str,
    targets: str = "nsdgeneral",
    cache_dir: Path | None = None,
    interp: str = "linear",
    min_weight: float = 0.5,
) -> VolumeProjection:
    """A func1pt8mm subject's projection onto its surface and fsaverage (NSD's transforms).

    See :mod:`core.data.nsd_projection`. Cached in ``cache_dir`` (e.g.
    :func:`projection_cache_dir`) when given.

    Raises
    ------
    DatasetError
        Naming every missing transform file (:func:`core.data.nsd_projection.missing_transforms`
        says which without raising), or a malformed one.
    """
    shape, voxels = volume_voxels(layout, subject, targets)
    return load_projection(layout, subject, voxels, shape, cache_dir, interp, min_weight)


def _volume_layout(dataset: Dataset) -> NsdLayout:
    if dataset.kind != "nsd" or dataset.metadata.get("space") != "func1pt8mm":
        raise DatasetError(
            f"dataset {dataset.name!r} is not NSD in func1pt8mm (kind {dataset.kind!r}, "
            f"space {dataset.metadata.get('space')!r})"
        )
    return NsdLayout(Path(dataset.metadata["root"]))


def missing_transforms_of(dataset: Dataset, subject: str) -> list[Path]:
    """The NSD transform files a func1pt8mm dataset's ``subject`` lacks for surface maps (empty
    when all eight exist); for a view to name them and offer a volume slice instead."""
    return missing_transforms(_volume_layout(dataset), subject)


def volume_projection_of(dataset: Dataset, subject: str, **options) -> VolumeProjection:
    """:func:`volume_projection` of a func1pt8mm NSD dataset's subject, cached in the dataset's
    compact cache (:func:`projection_cache_dir`); ``options``: ``interp``, ``min_weight``.

    Raises
    ------
    DatasetError
        For another dataset kind or space, or naming the missing transform files.
    """
    layout = _volume_layout(dataset)
    targets = dataset.metadata.get("targets", "nsdgeneral")
    cache_dir = projection_cache_dir(dataset.name, subject)
    return volume_projection(layout, subject, targets, cache_dir, **options)


def volume_image_of(dataset: Dataset, subject: str, values: np.ndarray):
    """Per-target ``values`` (n_targets,) of a func1pt8mm NSD subject as a NIfTI image on
    ``nsdgeneral``'s grid and affine, NaN outside the targets: the input of a nilearn volume
    slice view (``plot_stat_map`` / ``view_img``) when the transforms are missing.

    Returns
    -------
    nibabel.Nifti1Image
        Shape (X, Y, Z), float32.
    """
    import nibabel as nib

    layout = _volume_layout(dataset)
    shape, voxels = volume_voxels(layout, subject, dataset.metadata.get("targets", "nsdgeneral"))
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (voxels.shape[0],):
        raise DatasetError(
            f"values has shape {values.shape}; {subject} has {voxels.shape[0]} targets"
        )
    volume = np.full(shape, np.nan, dtype=np.float32)
    volume[tuple(voxels.T)] = values
    affine = nib.load(layout.volume_roi(subject, GENERAL_MASK)).affine
    return nib.Nifti1Image(volume, affine)


def with_projection_geometry(
    data: SubjectData,
    layout: NsdLayout,
    targets: str = "nsdgeneral",
    cache_dir: Path | None = None,
) -> SubjectData:
    """Give a func1pt8mm subject's targets fsaverage geometry through NSD's transforms.

    Each target is placed at its nearest fsaverage vertex that the fsaverage flat surface draws
    (:meth:`VolumeProjection.geometry`), on the same surface as fsaverage targets (the NSD
    folder's flat patches, else nilearn's fsaverage5). Without the transforms the subject is
    returned unchanged (no geometry: views offer a volume slice instead); when only some are
    missing, or one is unusable, a warning names them.

    Returns
    -------
    data : SubjectData
        The same object, its ``targets`` replaced when geometry was added.
    """
    if data.targets.geometry is not None:
        return data
    missing = missing_transforms(layout, data.subject)
    if missing:
        if len(missing) < len(layout.projection_transforms(data.subject)):
            names = ", ".join(str(p) for p in missing)
            warnings.warn(
                f"{data.subject}: no surface maps for func1pt8mm targets; NSD transform file(s) "
                f"missing: {names}",
                UserWarning,
                stacklevel=2,
            )
        return data
    try:
        projection = volume_projection(layout, data.subject, targets, cache_dir)
        if projection.n_targets != data.n_targets:
            raise DatasetError(
                f"{projection.n_targets} nsdgeneral voxels now, {data.n_targets} targets loaded"
            )
    except DatasetError as exc:
        warnings.warn(
            f"{data.subject}: no surface maps for func1pt8mm targets ({exc})",
            UserWarning,
            stacklevel=2,
        )
        return data
    surface = fsaverage.fsaverage_surface_id(flat_surface_dir(layout.surf_dir("fsaverage")))
    geometry = projection.geometry(surface, drawable_vertices(surface))
    data.targets = replace(data.targets, geometry=geometry)
    return data


def surface_targets(layout: NsdLayout, subject: str, targets: str = "nsdgeneral"):
    """Targets of an fsaverage subject (left hemisphere first).

    Returns
    -------
    n_vertices : int
        Vertices per hemisphere (163,842 for fsaverage).
    index : dict of str to array
        Kept vertex indices per hemisphere.
    target_set : TargetSet
        With ``TargetGeometry`` on fsaverage.
    sources : list of Path
    """
    general, index, sources = {}, {}, []
    for hemi in ("lh", "rh"):
        path = layout.surface_roi("fsaverage", GENERAL_MASK, hemi)
        general[hemi] = as_labels(read_surface_map(path, "nsdgeneral labels per vertex"), path)
        sources.append(path)
    n_vertices = general["lh"].shape[0]
    if general["rh"].shape[0] != n_vertices:
        raise DatasetError(
            f"{layout.surface_roi('fsaverage', GENERAL_MASK, 'rh')}: expected {n_vertices} "
            f"vertices like lh; found {general['rh'].shape[0]}"
        )
    for hemi in ("lh", "rh"):
        keep = general[hemi] == 1 if targets == "nsdgeneral" else general[hemi] >= 0
        index[hemi] = np.flatnonzero(keep)

    def gather(values: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([values[h][index[h]] for h in ("lh", "rh")])

    families: dict[str, RoiFamily] = {}
    for family in NSD_ROI_FAMILIES:
        paths = {h: layout.surface_roi("fsaverage", family, h) for h in ("lh", "rh")}
        if not all(p.exists() for p in paths.values()):
            continue
        labels = {}
        for h, p in paths.items():
            try:
                labels[h] = as_labels(read_surface_map(p, f"{family} labels", n_vertices), p)
            except DatasetError as exc:
                skip_optional(p, exc, f"no {family} ROIs")
                break
        if len(labels) < 2:
            continue
        families[family] = RoiFamily(
            family, gather(labels), _roi_names(layout, family, "fsaverage")
        )
        sources += [*paths.values(), layout.roi_ctab("fsaverage", family)]
    ncsnr = None
    npaths = {h: layout.surface_ncsnr(subject, h) for h in ("lh", "rh")}
    if all(p.exists() for p in npaths.values()):
        maps = {}
        for h, p in npaths.items():
            try:
                maps[h] = read_surface_map(p, "ncsnr per vertex", n_vertices)
            except DatasetError as exc:
                skip_optional(p, exc, f"no noise ceiling for {subject}")
                break
        if len(maps) == 2:
            ncsnr = gather(maps).astype(np.float32)
            sources += list(npaths.values())
    hemi = np.concatenate(
        [np.full(index[h].size, i, dtype=np.int8) for i, h in enumerate(("lh", "rh"))]
    )
    geometry = TargetGeometry(
        surface=fsaverage.fsaverage_surface_id(flat_surface_dir(layout.surf_dir("fsaverage"))),
        hemi=hemi,
        vertex=np.concatenate([index["lh"], index["rh"]]).astype(np.int32),
    )
    target_set = TargetSet(
        roi_families=families,
        general_mask=gather({h: general[h] == 1 for h in general}),
        ncsnr=ncsnr,
        geometry=geometry,
    )
    return n_vertices, index, target_set, sources


# --------------------------------------------------------------------------------------------
# responses: sessions streamed, z-scored, repetitions averaged
# --------------------------------------------------------------------------------------------
def zscore_session(betas: np.ndarray) -> np.ndarray:
    """Z-score each target over one session's trials, in place (ddof=0; constant -> 0).

    Parameters
    ----------
    betas : array of shape (n_trials, n_targets), float32

    Returns
    -------
    betas : the same array, z-scored
    """
    mean = betas.mean(axis=0, dtype=np.float64)
    std = betas.std(axis=0, dtype=np.float64)
    std[std == 0] = np.inf
    betas -= mean.astype(np.float32)
    betas /= std.astype(np.float32)
    return betas


def average_repetitions(
    session_trials: list[np.ndarray],
    session_betas,
    n_targets: int,
    keep_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Average trials of the same image over sessions with a running sum; optionally keep the
    single trials of some images (the test images: their repeats, for the RSA noise ceiling).

    Parameters
    ----------
    session_trials : list of arrays of shape (n_trials,)
        Stimulus id of each trial, per session.
    session_betas : iterable of arrays of shape (n_trials, n_targets)
        Each session's (already z-scored) betas, produced one at a time.
    n_targets : int
    keep_ids : array of int, optional
        Stimulus ids whose single trials are kept (ids never shown are ignored).

    Returns
    -------
    ids : array of shape (n_images,), int64
        Sorted stimulus ids.
    mean : array of shape (n_images, n_targets), float32
    counts : array of shape (n_images,), int16
    repeats : array of shape (max count, n_kept, n_targets), float32, or None
        None without ``keep_ids``. The kept images' trials in the order of ``ids`` (sorted
        ids), repeat ``k`` = the image's ``k``-th trial in session and trial order; NaN where
        an image has fewer trials (the layout of ``SubjectData.test_repeats``). The only extra
        memory: ``mean`` holds the same images' sums as before, unchanged.
    """
    ids = np.unique(np.concatenate(session_trials)) if session_trials else np.array([], np.int64)
    total = np.zeros((ids.size, n_targets), dtype=np.float32)
    counts = np.zeros(ids.size, dtype=np.int64)
    repeats = slot = None
    if keep_ids is not None:
        kept = np.isin(ids, keep_ids)
        slot = np.full(ids.size, -1, dtype=np.int64)  # row -> its place among the kept images
        slot[kept] = np.arange(int(kept.sum()))
        all_rows = np.searchsorted(ids, np.concatenate(session_trials)) if session_trials else []
        n_rep = int(np.bincount(all_rows, minlength=ids.size)[kept].max(initial=0))
        repeats = np.full((n_rep, int(kept.sum()), n_targets), np.nan, dtype=np.float32)
    for trials, betas in zip(session_trials, session_betas, strict=True):
        rows = np.searchsorted(ids, trials)
        # add in rounds of unique rows (k-th occurrence of each image), far faster than np.add.at
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_rows)) + 1]
        occurrence = np.empty(rows.size, dtype=np.int64)
        occurrence[order] = np.arange(rows.size) - np.repeat(
            starts, np.diff(np.r_[starts, rows.size])
        )
        for k in range(int(occurrence.max(initial=-1)) + 1):
            sel = occurrence == k
            if repeats is not None:  # before counting: the trial's repeat number is the count
                keep = sel & (slot[rows] >= 0)
                repeats[counts[rows[keep]], slot[rows[keep]]] = betas[keep]
            total[rows[sel]] += betas[sel]
            counts[rows[sel]] += 1
    total /= counts[:, None].astype(np.float32)
    return ids.astype(np.int64), total, counts.astype(np.int16), repeats


def _session_stream(layout, subject, space, fmt, session, geometry_args, chunk) -> np.ndarray:
    """One session's betas of the kept targets, shape (750, n_targets), float32.

    func1pt8mm sessions are read by :func:`core.data.nsd_volume.read_volume_session` (HDF5 in
    the order of its chunks, NIfTI one block of volumes at a time); fsaverage ones ``chunk``
    trials at a time.
    """
    if space == "func1pt8mm":
        shape, index = geometry_args
        path = layout.volume_betas(subject, session, fmt)
        return read_volume_session(path, fmt, shape, index)
    n_vertices, index = geometry_args
    parts = [
        np.concatenate(
            list(
                stream_mgh_betas(
                    layout.surface_betas(subject, session, h), n_vertices, index[h], chunk
                )
            ),
            axis=0,
        )
        for h in ("lh", "rh")
    ]
    return np.concatenate(parts, axis=1)


def _beta_paths(
    layout: NsdLayout, subject: str, space: str, fmt: str, sessions: list[int]
) -> list[Path]:
    if space == "func1pt8mm":
        return [layout.volume_betas(subject, s, fmt) for s in sessions]
    return [layout.surface_betas(subject, s, h) for s in sessions for h in ("lh", "rh")]


def read_nsd_subject(
    root: str | Path,
    subject: str,
    *,
    space: str = "func1pt8mm",
    fmt: str = "nifti",
    sessions: list[int] | None = None,
    targets: str = "nsdgeneral",
    zscore: bool = True,
    design: ExpDesign | None = None,
    chunk: int = 50,
    progress: Progress | None = None,
) -> SubjectData:
    """Build one subject's :class:`SubjectData` from the NSD files (no cache).

    Parameters
    ----------
    root : path
        NSD root.
    subject : str
        ``"subj01"`` .. ``"subj08"``.
    space : {"func1pt8mm", "fsaverage"}
    fmt : {"nifti", "hdf5"}
        func1pt8mm beta file format.
    sessions : list of int, optional
        1-based sessions (default: every session on disk, with a warning naming any gap).
        Sessions outside the subject's range (1-40; 1-32 for subj03 and subj06, 1-30 for subj04
        and subj08) raise a range error.
    targets : {"nsdgeneral", "brain"}
        Keep the nsdgeneral targets, or every target inside the brain (label >= 0).
    zscore : bool
        Z-score each target within session before averaging (NSD's convention).
    chunk : int
        Trials read at once from an fsaverage MGH session (func1pt8mm sessions are read as
        :mod:`core.data.nsd_volume` plans).
    progress : callable, optional
        ``progress(subject, sessions_done, n_sessions)``.

    Returns
    -------
    SubjectData
        ``responses`` (n_images, n_targets) float32 averaged over repetitions, ``n_repeats``,
        ``is_test`` = shared images, ``test_repeats`` (max repeats, n_test, n_targets) float32:
        the test images' single trials, NaN where an image has fewer.
    """
    layout = NsdLayout(Path(root))
    check_subject(subject)
    _check_options(space, fmt, targets)
    design = design or read_expdesign(layout.expdesign)
    sessions = _sessions(layout, subject, space, fmt, sessions, design.n_sessions)
    if space == "func1pt8mm":
        shape, index, target_set, _ = volume_targets(layout, subject, targets)
        geometry_args = (shape, index)
    else:
        n_vertices, index, target_set, _ = surface_targets(layout, subject, targets)
        geometry_args = (n_vertices, index)
    trials = [design.trial_ids(subject, s) for s in sessions]

    def betas():
        for i, s in enumerate(sessions):
            block = _session_stream(layout, subject, space, fmt, s, geometry_args, chunk)
            if block.shape[0] != TRIALS_PER_SESSION:  # pragma: no cover - readers check shapes
                raise DatasetError(f"session {s}: {block.shape[0]} trials, expected 750")
            yield zscore_session(block) if zscore else block
            if progress is not None:
                progress(subject, i + 1, len(sessions))

    shared = design.shared_ids()
    ids, mean, counts, repeats = average_repetitions(
        trials, betas(), target_set.n_targets, keep_ids=shared
    )
    return SubjectData(
        subject=subject,
        stimulus_ids=ids,
        responses=mean,
        n_repeats=counts,
        is_test=np.isin(ids, shared),
        targets=target_set,
        test_repeats=repeats if repeats.shape[1] else None,  # no test image in these sessions
    )


def _check_options(space: str, fmt: str, targets: str) -> None:
    if space not in SPACES:
        raise DatasetError(f"unknown NSD space {space!r}; expected one of {SPACES}")
    if fmt not in ("nifti", "hdf5"):
        raise DatasetError(f"unknown beta format {fmt!r}; expected 'nifti' or 'hdf5'")
    if targets not in TARGET_CHOICES:
        raise DatasetError(f"unknown targets {targets!r}; expected one of {TARGET_CHOICES}")


def _sessions(
    layout: NsdLayout, subject: str, space: str, fmt: str, wanted, n_design: int | None = None
) -> list[int]:
    """The sessions to load: ``wanted`` (range-checked, then checked on disk) or every session on
    disk (warning about a gap between them)."""
    if wanted is not None:
        wanted = check_sessions(subject, wanted, n_design)
    on_disk = layout.sessions(subject, space, fmt)
    if wanted is None:
        if not on_disk:
            raise DatasetError(
                f"{layout.betas_dir(subject, space)}: expected beta sessions; found none"
            )
        gaps = session_gaps(on_disk)
        if gaps:
            warnings.warn(
                f"{subject}: session(s) {format_sessions(gaps)} missing between the sessions on "
                f"disk ({format_sessions(on_disk)}) in {layout.betas_dir(subject, space)}; "
                "loading the sessions present",
                UserWarning,
                stacklevel=3,
            )
        return on_disk
    missing = [s for s in wanted if s not in on_disk]
    if missing:
        files = ", ".join(str(p) for p in _beta_paths(layout, subject, space, fmt, missing))
        raise DatasetError(
            f"requested session(s) {missing} of {subject} are not on disk: expected {files}"
        )
    return wanted


def _resolve_format(layout: NsdLayout, fmt: str, space: str) -> str:
    if space == "fsaverage":
        return "nifti"  # unused for fsaverage
    if fmt != "auto":
        return fmt
    return "nifti" if layout.subjects("func1pt8mm", "nifti") else "hdf5"


# --------------------------------------------------------------------------------------------
# the opener
# --------------------------------------------------------------------------------------------
def open_nsd(
    name: str = "nsd",
    path: str | Path | None = None,
    *,
    space: str | None = None,
    fmt: str | None = None,
    sessions: list[int] | None = None,
    subjects: list[str] | None = None,
    targets: str = "nsdgeneral",
    zscore: bool = True,
    encoding: str = "float32",
    cache: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """Open a local NSD folder as a :class:`Dataset` (subjects load lazily, cached on first load).

    Parameters
    ----------
    name : str
        Registry name (the cache lives under ``<home>/datasets/<name>/``).
    path : path
        NSD root.
    space, sessions, targets, zscore
        See :func:`read_nsd_subject`. ``space`` defaults to the one saved by
        ``python -m core datasets add nsd PATH --space ...``, else ``"func1pt8mm"``.
    fmt : {"auto", "nifti", "hdf5"}
        func1pt8mm beta format; "auto" (default) prefers NIfTI.
    sessions : list of int, optional
        1-based sessions of every subject (default: the ones saved by ``datasets add
        --sessions``, else every session on disk). The stimulus set holds only the images shown
        in the chosen sessions of the chosen subjects.
    subjects : list of str, optional
        Restrict to these subjects (default: the ones saved by ``datasets add --subjects``, else
        every subject with betas in ``space``).
    encoding : str
        Cache response encoding (see :mod:`core.data.store`).
    cache : bool
        Read/write the compact per-subject cache.

    Raises
    ------
    DatasetError
        When the folder lacks the design or any subject with betas (the message names the files).
    """
    if path is None:
        raise DatasetError("open_nsd needs the path of an NSD folder")
    saved = dataset_options(name)
    space = space or saved.get("space", "func1pt8mm")
    subjects = subjects if subjects is not None else saved.get("subjects")
    sessions = sessions if sessions is not None else saved.get("sessions")
    layout = NsdLayout(Path(path))
    hint = root_hint(layout.root)
    if hint is not None:
        raise DatasetError(hint)
    fmt = _resolve_format(layout, fmt or saved.get("fmt", "auto"), space)
    _check_options(space, fmt, targets)
    design = read_expdesign(layout.expdesign)
    found = layout.subjects(space, fmt)
    if subjects is not None:
        for s in subjects:
            check_subject(s)
        missing = [s for s in subjects if s not in found]
        if missing:
            raise DatasetError(
                f"no {space} betas for {missing} under {layout.root / 'nsddata_betas/ppdata'}"
            )
        found = [s for s in found if s in subjects]
    if not found:
        raise DatasetError(
            f"{layout.root / 'nsddata_betas/ppdata'}: expected subjXX/{space}/"
            f"betas_fithrf_GLMdenoise_RR/ with beta sessions; found none"
        )
    # the sessions of each subject, fixed at open (range errors and gap warnings surface here)
    chosen = {s: _sessions(layout, s, space, fmt, sessions, design.n_sessions) for s in found}
    ids = np.unique(np.concatenate([design.trial_ids(s, k) for s in found for k in chosen[s]]))
    stimuli = NsdStimuli(ids, layout.stimuli, layout.stim_info)
    options = {
        "space": space,
        "fmt": fmt,
        "sessions": sorted(int(s) for s in sessions) if sessions is not None else None,
        "targets": targets,
        "zscore": bool(zscore),
    }

    def load(subject: str) -> SubjectData:
        def build() -> SubjectData:
            return read_nsd_subject(
                layout.root,
                subject,
                space=space,
                fmt=fmt,
                sessions=chosen[subject],
                targets=targets,
                zscore=zscore,
                design=design,
                progress=progress,
            )

        if not cache:
            data = build()
        else:
            sources, opts = subject_sources(subject)
            data = cached_subject(name, subject, sources, opts, build, encoding)
        if space == "func1pt8mm":
            # geometry rides outside the cached responses: transforms added later need no re-read
            cache_dir = projection_cache_dir(name, subject) if cache else None
            data = with_projection_geometry(data, layout, targets, cache_dir)
        return data

    def subject_sources(subject: str) -> tuple[list[Path], dict]:
        sources = [layout.expdesign, *_beta_paths(layout, subject, space, fmt, chosen[subject])]
        sources += _target_sources(layout, subject, space)
        return sources, {**options, "sessions": chosen[subject], "reader": NSD_READER_VERSION}

    return cached_dataset(
        name=name,
        kind="nsd",
        stimuli=stimuli,
        subjects=found,
        loader=load,
        stimulus_identity={"kind": "nsd", "stimuli": source_signature([layout.stimuli])},
        subject_sources=subject_sources,
        cache=cache,
        metadata={
            "root": str(layout.root.resolve()),
            "space": space,
            "format": fmt,
            "targets": targets,
            "zscore": bool(zscore),
            "sessions": options["sessions"],
            "sessions_per_subject": {s: format_sessions(chosen[s]) for s in found},
            "betas": "b3 betas_fithrf_GLMdenoise_RR",
            "split": "train = the subject's own images; test = the shared 1,000 (sharedix)",
            "noise_ceiling": "NSD ncsnr, mixed-repetition formula",
        },
    )


def _target_sources(layout: NsdLayout, subject: str, space: str) -> list[Path]:
    names = [GENERAL_MASK, *NSD_ROI_FAMILIES]
    if space == "func1pt8mm":
        paths = [layout.volume_roi(subject, n) for n in names]
        paths += [layout.roi_ctab(subject, n) for n in NSD_ROI_FAMILIES]
        return [*paths, layout.volume_ncsnr(subject)]
    paths = [layout.surface_roi("fsaverage", n, h) for n in names for h in ("lh", "rh")]
    paths += [layout.roi_ctab("fsaverage", n) for n in NSD_ROI_FAMILIES]
    paths += [layout.surface_ncsnr(subject, h) for h in ("lh", "rh")]
    paths += [layout.flat_patch(h) for h in ("lh", "rh")]
    return paths
