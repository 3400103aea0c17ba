"""Check a dataset folder file by file: what was found, what is missing, what is wrong.

:func:`validate_nsd` (and :func:`core.data.algonauts.validate_algonauts`) return a
:class:`ValidationReport`: one :class:`FileCheck` per file (or file group) with its status, what was
expected and what was found. ``python -m core datasets add`` prints it and refuses a folder whose
required files fail; the app's Pipeline page shows :meth:`ValidationReport.to_frame`.

An optional file that exists but cannot be used (a ROI volume on another grid, a broken ``.ctab``,
an ``ncsnr`` of the wrong shape) is reported ``skipped``: the loaders skip it too, with a warning,
and the dataset opens without it.

Checks read headers and shapes, not whole files: a compressed NIfTI's gzip trailer gives its
uncompressed size, so a truncated ``.nii.gz`` is caught without decompressing it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dataset import DatasetError
from core.data.nsd_files import (
    as_labels,
    plain_shape,
    read_ctab,
    read_expdesign,
    read_stim_info,
    read_surface_map,
    read_volume,
)
from core.data.nsd_layout import (
    DEPTH_LAYERS,
    GENERAL_MASK,
    NSD_ROI_FAMILIES,
    SESSIONS_PER_SUBJECT,
    TRIALS_PER_SESSION,
    NsdLayout,
    check_sessions,
    check_subject,
    format_sessions,
    root_hint,
    session_gaps,
)
from core.data.nsd_stimuli import check_stimulus_file

#: Statuses, worst last. ``skipped``: an optional file that exists but is unusable; the loaders
#: skip it with a warning.
OK, OPTIONAL_MISSING, SKIPPED, MISSING, INVALID = (
    "ok",
    "optional-missing",
    "skipped",
    "missing",
    "invalid",
)
_TAGS = {
    OK: "ok",
    OPTIONAL_MISSING: "absent",
    SKIPPED: "skipped",
    MISSING: "MISSING",
    INVALID: "INVALID",
}


@dataclass(frozen=True)
class FileCheck:
    """The check of one file.

    Parameters
    ----------
    path : str
        Path relative to the dataset root.
    status : {"ok", "optional-missing", "skipped", "missing", "invalid"}
    required : bool
        Whether the dataset cannot be opened without it.
    expected : str
        What the file should hold.
    found : str
        What was found (shapes, counts) or why it failed.
    """

    path: str
    status: str
    required: bool
    expected: str
    found: str

    @property
    def failed(self) -> bool:
        return self.required and self.status in (MISSING, INVALID)


@dataclass
class ValidationReport:
    """All file checks of one folder.

    Parameters
    ----------
    kind : {"nsd", "algonauts"}
    root : Path
    checks : list of FileCheck
    summary : dict
        Subjects and sessions found, etc.
    warnings : list of str
        Problems that do not stop loading (a gap between the sessions on disk, ...).
    """

    kind: str
    root: Path
    checks: list[FileCheck] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no required file is missing or invalid."""
        return not any(c.failed for c in self.checks)

    def failures(self) -> list[FileCheck]:
        return [c for c in self.checks if c.failed]

    def problems(self) -> list[FileCheck]:
        """Every check that is not ``ok`` (optional ones included)."""
        return [c for c in self.checks if c.status != OK]

    def add(self, path: Path | str, status: str, required: bool, expected: str, found: str) -> None:
        rel = Path(path)
        try:
            rel = rel.relative_to(self.root)
        except ValueError:
            pass
        self.checks.append(FileCheck(str(rel), status, required, expected, found))

    def check(
        self, path: Path, required: bool, expected: str, probe, skippable: bool = True
    ) -> object | None:
        """Run ``probe()`` (returns ``(value, found text)``) and record the outcome.

        A failing optional file is ``skipped`` (the loaders skip it with a warning), unless
        ``skippable`` is False (it is then ``invalid`` without failing the report).
        """
        if not Path(path).exists():
            self.add(path, MISSING if required else OPTIONAL_MISSING, required, expected, "no file")
            return None
        try:
            value, found = probe()
        except Exception as exc:  # any failure to read is an invalid file, reported by name
            reason = _strip(str(exc), path)
            if not required and skippable:
                self.add(path, SKIPPED, False, expected, f"{reason}; skipped when loading")
            else:
                self.add(path, INVALID, required, expected, reason)
            return None
        self.add(path, OK, required, expected, found)
        return value

    def to_frame(self) -> pd.DataFrame:
        """One row per check: path, status, required, expected, found."""
        return pd.DataFrame([c.__dict__ for c in self.checks])

    def format_text(self, only_problems: bool = False) -> str:
        """A plain-text table for the terminal."""
        rows = self.problems() if only_problems else self.checks
        lines = [f"{self.kind} folder {self.root}"]
        for key, value in self.summary.items():
            lines.append(f"  {key}: {value}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        for c in rows:
            tag = _TAGS[c.status]
            req = "required" if c.required else "optional"
            lines.append(f"  [{tag:>7}] {c.path} ({req})")
            lines.append(f"            expected: {c.expected}")
            lines.append(f"            found:    {c.found}")
        verdict = (
            "usable" if self.ok else f"NOT usable: {len(self.failures())} required file(s) failed"
        )
        lines.append(f"  => {verdict}")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`DatasetError` listing every failed required file."""
        if not self.ok:
            details = "; ".join(
                f"{c.path}: expected {c.expected}; found {c.found}" for c in self.failures()
            )
            raise DatasetError(f"{self.kind} folder {self.root} is not usable: {details}")


def _strip(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def gzip_size(path: Path) -> int:
    """Uncompressed size modulo 2**32 from a gzip file's trailer (ISIZE)."""
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        return struct.unpack("<I", fh.read(4))[0]


def _probe_volume_betas(path: Path, shape: tuple | None, fmt: str):
    expected_shape = (tuple(shape) if shape else ("X", "Y", "Z")) + (TRIALS_PER_SESSION,)
    if fmt == "hdf5":
        import h5py

        try:
            with h5py.File(path, "r") as fh:
                if "betas" not in fh:
                    raise DatasetError(f"datasets {list(fh.keys())}")
                dshape = plain_shape(fh["betas"].shape)
        except OSError as exc:
            raise DatasetError(f"unreadable HDF5 ({exc})") from exc
        want = (TRIALS_PER_SESSION,) + tuple(reversed(shape)) if shape else None
        if dshape[0] != TRIALS_PER_SESSION or (want and dshape != want):
            raise DatasetError(f"/betas of shape {dshape}")
        return None, f"/betas {dshape}"
    import nibabel as nib

    proxy = nib.load(path).dataobj
    full = plain_shape(proxy.shape)
    if len(full) != 4 or full[3] != TRIALS_PER_SESSION or (shape and full[:3] != tuple(shape)):
        raise DatasetError(f"shape {full}, expected {expected_shape}")
    nbytes = int(proxy.offset) + int(np.prod(full)) * np.dtype(proxy.dtype).itemsize
    if path.name.endswith(".gz"):
        if gzip_size(path) != nbytes % 2**32:
            raise DatasetError(
                "a truncated or corrupt gzip stream (trailer size does not match header)"
            )
    elif path.stat().st_size < nbytes:
        raise DatasetError(f"{path.stat().st_size} bytes, header needs {nbytes} (truncated)")
    return None, f"{full} {np.dtype(proxy.dtype).name}"


def _probe_mgh_betas(path: Path, n_vertices: int | None):
    import nibabel as nib

    img = nib.load(path)
    shape = plain_shape(img.shape)
    if (
        len(shape) != 4
        or shape[1:] != (1, 1, TRIALS_PER_SESSION)
        or (n_vertices and shape[0] != n_vertices)
    ):
        raise DatasetError(f"shape {shape}")
    nbytes = 284 + int(np.prod(shape)) * img.get_data_dtype().itemsize
    if not path.name.endswith(".mgz") and path.stat().st_size < nbytes:
        raise DatasetError(f"{path.stat().st_size} bytes, header needs {nbytes} (truncated)")
    return None, f"{shape} {np.dtype(img.get_data_dtype()).name}"


def validate_nsd(
    root: str | Path,
    space: str = "func1pt8mm",
    fmt: str = "auto",
    subjects: list[str] | None = None,
    sessions: list[int] | None = None,
) -> ValidationReport:
    """Check an NSD folder for ``space``, file by file.

    Parameters
    ----------
    root : path
        NSD root.
    space : {"func1pt8mm", "fsaverage"}
    fmt : {"auto", "nifti", "hdf5"}
        func1pt8mm beta format.
    subjects : list of str, optional
        Subjects to check (default: every subject with betas).
    sessions : list of int, optional
        1-based sessions to check for every subject (default: every session on disk; a gap
        between them is a warning).

    Returns
    -------
    ValidationReport

    Raises
    ------
    DatasetError
        When a requested session is outside a subject's range (e.g. "sessions are 1-40 for
        subj01"); ValueError for an unknown subject name.
    """
    root = Path(root)
    layout = NsdLayout(root)
    report = ValidationReport("nsd", root)
    for s in subjects or []:
        check_subject(s)
    hint = root_hint(root)
    if hint is not None:
        report.add(
            root,
            MISSING,
            True,
            "an NSD root folder (nsddata/, nsddata_betas/, nsddata_stimuli/)",
            hint,
        )
        return report
    if fmt == "auto":
        fmt = "nifti" if layout.subjects("func1pt8mm", "nifti") or space == "fsaverage" else "hdf5"

    def design():
        d = read_expdesign(layout.expdesign)
        return (
            d,
            f"masterordering {d.masterordering.shape}, subjectim {d.subjectim.shape}, sharedix {d.sharedix.shape}",
        )

    report.check(
        layout.expdesign,
        True,
        "masterordering 1x30000, subjectim 8x10000, sharedix 1x1000 (1-based)",
        design,
    )

    def info():
        df = read_stim_info(layout.stim_info)
        return df, f"{len(df)} rows; shared1000: {int(df['shared1000'].sum())}"

    report.check(
        layout.stim_info,
        False,
        "CSV with nsdId, cocoId, shared1000, subjectK_repR",
        info,
        skippable=False,
    )
    report.check(
        layout.stimuli,
        False,
        "imgBrick (73000, 425, 425, 3) uint8 (needed to extract features)",
        lambda: (None, f"imgBrick {check_stimulus_file(layout.stimuli)}"),
        skippable=False,
    )
    found = layout.subjects(space, fmt)
    subjects = subjects or found
    if sessions is not None:
        sessions = sorted({int(k) for k in sessions})
        for s in subjects:
            check_sessions(s, sessions)
        report.summary["sessions chosen"] = format_sessions(sessions)
    if not subjects:
        report.add(
            root / "nsddata_betas/ppdata",
            MISSING,
            True,
            f"subjXX/{space}/betas_fithrf_GLMdenoise_RR/ with beta sessions"
            + (f" ({fmt})" if space == "func1pt8mm" else ""),
            "no subject with betas",
        )
    report.summary["space"] = space if space == "fsaverage" else f"{space} ({fmt})"
    report.summary["subjects"] = ", ".join(subjects) or "none"
    if space == "func1pt8mm":
        for s in subjects:
            _validate_volume_subject(report, layout, s, fmt, sessions)
    else:
        n_vertices = _validate_fsaverage_labels(report, layout)
        for s in subjects:
            _validate_surface_subject(report, layout, s, n_vertices, sessions)
    return report


def _chosen_sessions(
    report: ValidationReport,
    layout: NsdLayout,
    subject: str,
    space: str,
    fmt: str,
    wanted: list[int] | None,
) -> list[int]:
    """Summarise the sessions on disk, warn about a gap, and return the sessions to check."""
    on_disk = layout.sessions(subject, space, fmt)
    expected = SESSIONS_PER_SUBJECT.get(subject, 40)
    gaps = session_gaps(on_disk)
    text = f"{len(on_disk)} of {expected} sessions"
    if gaps:
        text += f"; gaps at {gaps}"
    report.summary[f"{subject} sessions"] = text
    if wanted is not None:
        return list(wanted)
    if gaps:
        report.warnings.append(
            f"{subject}: session(s) {format_sessions(gaps)} missing between the sessions on disk "
            f"({format_sessions(on_disk)}); loading uses the sessions present "
            "(or choose them with --sessions)"
        )
    return on_disk


def _validate_volume_subject(
    report: ValidationReport,
    layout: NsdLayout,
    subject: str,
    fmt: str,
    wanted: list[int] | None = None,
) -> None:
    gpath = layout.volume_roi(subject, GENERAL_MASK)

    def general():
        vol = as_labels(read_volume(gpath, "nsdgeneral labels"), gpath)
        return vol.shape, f"{vol.shape}; {int((vol == 1).sum())} nsdgeneral voxels"

    shape = report.check(
        gpath, True, "nsdgeneral labels (X, Y, Z): -1 outside brain, 0, 1", general
    )
    sessions = _chosen_sessions(report, layout, subject, "func1pt8mm", fmt, wanted)
    if not sessions:
        report.add(layout.betas_dir(subject, "func1pt8mm"), MISSING, True, "beta sessions", "none")
    for s in sessions:
        path = layout.volume_betas(subject, s, fmt)
        want = f"{'(X, Y, Z, 750) int16' if fmt == 'nifti' else '/betas (750, Z, Y, X) int16'}"
        report.check(path, True, want, lambda p=path: _probe_volume_betas(p, shape, fmt))
    for family, table in NSD_ROI_FAMILIES.items():
        path = layout.volume_roi(subject, family)

        def roi(p=path, family=family):
            vol = as_labels(read_volume(p, f"{family} labels", shape), p)
            values = sorted(int(v) for v in np.unique(vol) if v > 0)
            return None, f"{vol.shape}; label values {values}"

        report.check(path, False, f"{family} labels {sorted(table)} on nsdgeneral's grid", roi)
        ctab = layout.roi_ctab(subject, family)
        report.check(
            ctab,
            False,
            "'index name' lines (else NSD's standard names)",
            lambda c=ctab: (None, _ctab_text(c)),
        )
    npath = layout.volume_ncsnr(subject)
    report.check(
        npath,
        False,
        "ncsnr per voxel (X, Y, Z) float (else no noise ceiling)",
        lambda: (None, f"{read_volume(npath, 'ncsnr', shape).shape}"),
    )
    _validate_transforms(report, layout, subject, shape)


def _validate_transforms(
    report: ValidationReport, layout: NsdLayout, subject: str, shape: tuple | None
) -> None:
    """NSD's func1pt8mm -> layerB1..B3 -> fsaverage transforms (optional: without them the
    func1pt8mm maps have no surface and views offer a volume slice)."""
    from core.data.nsd_projection import (
        read_surface_to_fsaverage,
        read_volume_to_surface,
        valid_coordinates,
    )

    usable = 0
    for hemi in ("lh", "rh"):
        counts: list[int] = []
        for layer in DEPTH_LAYERS:
            path = layout.volume_to_surface(subject, hemi, layer)

            def layer_probe(p=path, counts=counts):
                coords = read_volume_to_surface(p, counts[0] if counts else None)
                counts.append(coords.shape[0])
                text = f"{coords.shape[0]} vertices"
                if shape:
                    valid = int(valid_coordinates(coords, shape).sum())
                    text += f", {valid} inside the func1pt8mm grid {tuple(shape)}"
                return True, text

            ok = report.check(
                path,
                False,
                "per subject vertex the 1-based func1pt8mm voxel (x, y, z), (V, 1, 1, 3) "
                "(else no surface maps for func1pt8mm)",
                layer_probe,
            )
            usable += bool(ok)
        fpath = layout.surface_to_fsaverage(subject, hemi)

        def fs_probe(p=fpath, counts=counts):
            if not counts:
                raise DatasetError("no readable func1pt8-to-layerB*.mgz to check it against")
            index = read_surface_to_fsaverage(p, counts[0])
            return True, f"{index.size} fsaverage vertices -> {counts[0]} subject vertices"

        ok = report.check(
            fpath,
            False,
            "per fsaverage vertex a 1-based subject vertex, (163842, 1, 1) "
            "(else no surface maps for func1pt8mm)",
            fs_probe,
        )
        usable += bool(ok)
    report.summary[f"{subject} surface maps"] = (
        "NSD transforms found (func1pt8mm -> layerB1..B3 -> fsaverage)"
        if usable == 8
        else f"no ({8 - usable} of 8 transform files missing or unusable; volume slices instead)"
    )


def _ctab_text(path: Path) -> str:
    names = read_ctab(path)
    return ", ".join(f"{k} {v}" for k, v in sorted(names.items()))


def _validate_fsaverage_labels(report: ValidationReport, layout: NsdLayout) -> int | None:
    n_vertices = None
    for hemi in ("lh", "rh"):
        path = layout.surface_roi("fsaverage", GENERAL_MASK, hemi)

        def general(p=path, n=n_vertices):
            v = as_labels(read_surface_map(p, "nsdgeneral labels", n), p)
            return v.shape[0], f"{v.shape[0]} vertices; {int((v == 1).sum())} nsdgeneral"

        n = report.check(
            path, True, "nsdgeneral labels per fsaverage vertex (163842, 1, 1)", general
        )
        n_vertices = n_vertices or n
    report.summary["fsaverage vertices"] = n_vertices
    for family in NSD_ROI_FAMILIES:
        for hemi in ("lh", "rh"):
            path = layout.surface_roi("fsaverage", family, hemi)
            report.check(
                path,
                False,
                f"{family} labels per vertex",
                lambda p=path, family=family: (
                    None,
                    f"{as_labels(read_surface_map(p, f'{family} labels', n_vertices), p).shape[0]}"
                    " vertices",
                ),
            )
        ctab = layout.roi_ctab("fsaverage", family)
        report.check(
            ctab,
            False,
            "'index name' lines (else NSD's standard names)",
            lambda c=ctab: (None, _ctab_text(c)),
        )
    for hemi in ("lh", "rh"):

        def flat(hemi=hemi):
            from core.data.fsaverage import load_freesurfer_flat

            mesh = load_freesurfer_flat(layout.surf_dir("fsaverage"), hemi)
            kept = int(np.isfinite(mesh.coords[:, 0]).sum())
            return None, f"{kept} of {mesh.coords.shape[0]} vertices flattened"

        def inflated(p=layout.inflated(hemi)):
            import nibabel.freesurfer as fs

            coords, faces = fs.read_geometry(str(p))
            return None, f"{coords.shape[0]} vertices, {faces.shape[0]} faces"

        report.check(
            layout.flat_patch(hemi),
            False,
            "FreeSurfer flat patch with its inflated surface (else nilearn's fsaverage5 flatmap)",
            flat,
        )
        report.check(
            layout.inflated(hemi),
            False,
            "FreeSurfer inflated surface (with the flat patch)",
            inflated,
        )
    return n_vertices


def _validate_surface_subject(
    report: ValidationReport,
    layout: NsdLayout,
    subject: str,
    n_vertices: int | None,
    wanted: list[int] | None = None,
) -> None:
    sessions = _chosen_sessions(report, layout, subject, "fsaverage", "nifti", wanted)
    if not sessions:
        report.add(layout.betas_dir(subject, "fsaverage"), MISSING, True, "beta sessions", "none")
    for s in sessions:
        for hemi in ("lh", "rh"):
            path = layout.surface_betas(subject, s, hemi)
            report.check(
                path, True, "(V, 1, 1, 750) float32", lambda p=path: _probe_mgh_betas(p, n_vertices)
            )
    for hemi in ("lh", "rh"):
        path = layout.surface_ncsnr(subject, hemi)
        report.check(
            path,
            False,
            "ncsnr per vertex (else no noise ceiling)",
            lambda p=path: (None, f"{read_surface_map(p, 'ncsnr', n_vertices).shape[0]} vertices"),
        )
