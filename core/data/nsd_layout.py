"""Where every NSD file lives in a local mirror of the public NSD bucket, and the ROI label tables.

All paths are relative to the NSD root (the folder holding ``nsddata/``, ``nsddata_betas/`` and
``nsddata_stimuli/``). Subjects are named ``"subj01"`` .. ``"subj08"``; sessions are 1-based.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.data.dataset import DatasetError

#: Beta version b3, the one the paper (and most NSD work) uses.
BETAS = "betas_fithrf_GLMdenoise_RR"
#: Trials per NSD scan session.
TRIALS_PER_SESSION = 750
#: Images in NSD's 73k stimulus brick, and their size.
N_STIMULI = 73000
IMAGE_SHAPE = (425, 425, 3)
#: fsaverage vertices per hemisphere.
FSAVERAGE_VERTICES = 163842
#: Scan sessions each subject completed (subj01..subj08).
SESSIONS_PER_SUBJECT = {
    "subj01": 40,
    "subj02": 40,
    "subj03": 32,
    "subj04": 30,
    "subj05": 40,
    "subj06": 32,
    "subj07": 40,
    "subj08": 30,
}
#: Spaces whose betas this reader loads.
SPACES = ("func1pt8mm", "fsaverage")
#: Beta file formats in func1pt8mm.
VOLUME_FORMATS = ("nifti", "hdf5")

#: ROI family -> label value -> ROI name (NSD's label values; 0 unlabelled, -1 outside the brain).
NSD_ROI_FAMILIES: dict[str, dict[int, str]] = {
    "prf-visualrois": {1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"},
    "floc-bodies": {1: "EBA", 2: "FBA-1", 3: "FBA-2", 4: "mTL-bodies"},
    "floc-faces": {1: "OFA", 2: "FFA-1", 3: "FFA-2", 4: "mTL-faces", 5: "aTL-faces"},
    "floc-places": {1: "OPA", 2: "PPA", 3: "RSC"},
    "floc-words": {1: "OWFA", 2: "VWFA-1", 3: "VWFA-2", 4: "mfs-words", 5: "mTL-words"},
    "streams": {
        1: "early",
        2: "midventral",
        3: "midlateral",
        4: "midparietal",
        5: "ventral",
        6: "lateral",
        7: "parietal",
    },
}
#: The general visual mask's ROI file name.
GENERAL_MASK = "nsdgeneral"

#: NSD's three cortical-depth surfaces between the white and pial surfaces (nsdcode's
#: ``[lh,rh].layerB1`` .. ``layerB3``) that a func1pt8mm volume is sampled on; the projection
#: averages them into one value per subject-surface vertex.
DEPTH_LAYERS = ("layerB1", "layerB2", "layerB3")

#: The three top-level folders of an NSD root.
ROOT_FOLDERS = ("nsddata", "nsddata_betas", "nsddata_stimuli")

_SUBJECT_RE = re.compile(r"^subj0[1-8]$")
_SESSION_RE = re.compile(r"betas_session(\d{2})\.(nii\.gz|nii|hdf5|mgh)$")
_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+))?$")


def check_subject(subject: str) -> str:
    """Return ``subject`` if it is ``subj01`` .. ``subj08``; raise ValueError otherwise."""
    if not _SUBJECT_RE.match(subject):
        raise ValueError(f"unknown NSD subject {subject!r}; expected subj01 .. subj08")
    return subject


def normalize_subject(text: str) -> str:
    """``"subj01"``, ``"1"`` or ``"01"`` -> ``"subj01"`` (checked)."""
    text = str(text).strip()
    if text.isdigit():
        text = f"subj{int(text):02d}"
    return check_subject(text)


def parse_sessions(tokens) -> list[int]:
    """Sorted unique 1-based sessions from tokens like ``["1-5", "7"]`` or ``["1-5,7"]``.

    Raises
    ------
    ValueError
        For a token that is not ``N`` or ``A-B`` (with ``A <= B``).
    """
    if isinstance(tokens, str):
        tokens = [tokens]
    out: set[int] = set()
    for token in tokens:
        for part in str(token).replace(",", " ").split():
            m = _RANGE_RE.match(part)
            if m is None:
                raise ValueError(f"bad session {part!r}; expected N or A-B, e.g. --sessions 1-5 7")
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise ValueError(f"bad session range {part!r}: {lo} > {hi}")
            out.update(range(lo, hi + 1))
    if not out:
        raise ValueError("no sessions given; expected N or A-B, e.g. --sessions 1-5 7")
    return sorted(out)


def format_sessions(sessions) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    values = sorted({int(s) for s in sessions})
    parts: list[str] = []
    start = prev = None
    for s in values + [None]:
        if start is not None and (s is None or s != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if s is not None and start is None:
            start = s
        prev = s
    return ", ".join(parts)


def session_limit(subject: str, n_design: int | None = None) -> int:
    """The last session ``subject`` completed (40, 40, 32, 30, 40, 32, 40, 30 for subj01..08),
    capped by the design's session count when given."""
    limit = SESSIONS_PER_SUBJECT[check_subject(subject)]
    return min(limit, n_design) if n_design else limit


def check_sessions(subject: str, sessions, n_design: int | None = None) -> list[int]:
    """Return ``sessions`` sorted; raise DatasetError naming the valid range when one is outside it."""
    limit = session_limit(subject, n_design)
    values = sorted({int(s) for s in sessions})
    bad = [s for s in values if not 1 <= s <= limit]
    if bad:
        raise DatasetError(
            f"sessions are 1-{limit} for {subject}; asked for {format_sessions(bad)}"
        )
    return values


def session_gaps(sessions) -> list[int]:
    """Sessions missing between the first and the last of ``sessions``."""
    values = sorted({int(s) for s in sessions})
    if not values:
        return []
    return sorted(set(range(values[0], values[-1] + 1)) - set(values))


def root_hint(root: Path) -> str | None:
    """None when ``root`` holds ``nsddata/``; else what to give instead.

    Looks one level down for a folder holding ``nsddata/``, ``nsddata_betas/`` and
    ``nsddata_stimuli/`` ("did you mean ...?"), else names the folders an NSD root holds.
    """
    root = Path(root)
    if (root / "nsddata").is_dir():
        return None
    expected = ", ".join(f"{f}/" for f in ROOT_FOLDERS)
    if not root.is_dir():
        return f"{root}: no such folder; expected the NSD root holding {expected}"
    candidates = []
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        children = []
    for child in children:
        present = [f for f in ROOT_FOLDERS if (child / f).is_dir()]
        if "nsddata" in present:
            candidates.append((len(present), child))
    if candidates:
        best = max(candidates, key=lambda c: c[0])[1]
        return f"{root} is not an NSD root (no nsddata/ in it); did you mean {best}?"
    present = [f"{f}/" for f in ROOT_FOLDERS if (root / f).is_dir()]
    missing = [f"{f}/" for f in ROOT_FOLDERS if not (root / f).is_dir()]
    found = f"found {', '.join(present)}; " if present else ""
    return (
        f"{root} is not an NSD root: expected a folder holding {expected} "
        f"({found}missing {', '.join(missing)})"
    )


@dataclass(frozen=True)
class NsdLayout:
    """Paths of the NSD files under one root.

    Parameters
    ----------
    root : Path
        The NSD root folder.
    """

    root: Path

    # -- experiment and stimuli ------------------------------------------------------------
    @property
    def expdesign(self) -> Path:
        return self.root / "nsddata/experiments/nsd/nsd_expdesign.mat"

    @property
    def stim_info(self) -> Path:
        return self.root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv"

    @property
    def stimuli(self) -> Path:
        return self.root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"

    # -- betas -----------------------------------------------------------------------------
    def betas_dir(self, subject: str, space: str) -> Path:
        return self.root / "nsddata_betas/ppdata" / subject / space / BETAS

    def volume_betas(self, subject: str, session: int, fmt: str = "nifti") -> Path:
        """``betas_sessionNN.nii.gz`` (X, Y, Z, 750) int16 or ``.hdf5`` with /betas (750, Z, Y, X)."""
        ext = "nii.gz" if fmt == "nifti" else "hdf5"
        return self.betas_dir(subject, "func1pt8mm") / f"betas_session{session:02d}.{ext}"

    def surface_betas(self, subject: str, session: int, hemi: str) -> Path:
        """``{lh,rh}.betas_sessionNN.mgh`` of shape (163842, 1, 1, 750) float32."""
        return self.betas_dir(subject, "fsaverage") / f"{hemi}.betas_session{session:02d}.mgh"

    def volume_ncsnr(self, subject: str) -> Path:
        return self.betas_dir(subject, "func1pt8mm") / "ncsnr.nii.gz"

    def surface_ncsnr(self, subject: str, hemi: str) -> Path:
        return self.betas_dir(subject, "fsaverage") / f"{hemi}.ncsnr.mgh"

    def sessions(self, subject: str, space: str, fmt: str = "nifti") -> list[int]:
        """1-based sessions whose beta files exist (both hemispheres for fsaverage)."""
        folder = self.betas_dir(subject, space)
        if not folder.is_dir():
            return []
        found: set[int] = set()
        for p in folder.iterdir():
            m = _SESSION_RE.search(p.name)
            if not m:
                continue
            ext = m.group(2)
            if space == "func1pt8mm" and ext == ("hdf5" if fmt == "hdf5" else "nii.gz"):
                found.add(int(m.group(1)))
            elif space == "fsaverage" and ext == "mgh" and p.name.startswith("lh."):
                s = int(m.group(1))
                if self.surface_betas(subject, s, "rh").exists():
                    found.add(s)
        return sorted(found)

    def subjects(self, space: str, fmt: str = "nifti") -> list[str]:
        """Subjects with at least one beta session in ``space``."""
        base = self.root / "nsddata_betas/ppdata"
        if not base.is_dir():
            return []
        return sorted(
            p.name
            for p in base.iterdir()
            if _SUBJECT_RE.match(p.name) and self.sessions(p.name, space, fmt)
        )

    # -- ROIs ------------------------------------------------------------------------------
    def volume_roi(self, subject: str, name: str) -> Path:
        """``<name>.nii.gz`` in func1pt8mm: -1 outside brain, 0 unlabelled, 1.. labels."""
        return self.root / "nsddata/ppdata" / subject / "func1pt8mm/roi" / f"{name}.nii.gz"

    def label_dir(self, surface_subject: str) -> Path:
        return self.root / "nsddata/freesurfer" / surface_subject / "label"

    def surface_roi(self, surface_subject: str, name: str, hemi: str) -> Path:
        """``{lh,rh}.<name>.mgz`` on ``surface_subject`` (``"fsaverage"`` or ``"subjXX"``)."""
        return self.label_dir(surface_subject) / f"{hemi}.{name}.mgz"

    def roi_ctab(self, surface_subject: str, name: str) -> Path:
        """``<name>.mgz.ctab``: ``index name`` lines."""
        return self.label_dir(surface_subject) / f"{name}.mgz.ctab"

    # -- surfaces --------------------------------------------------------------------------
    def surf_dir(self, surface_subject: str = "fsaverage") -> Path:
        return self.root / "nsddata/freesurfer" / surface_subject / "surf"

    def flat_patch(self, hemi: str, surface_subject: str = "fsaverage") -> Path:
        return self.surf_dir(surface_subject) / f"{hemi}.full.flat.patch.3d"

    def inflated(self, hemi: str, surface_subject: str = "fsaverage") -> Path:
        return self.surf_dir(surface_subject) / f"{hemi}.inflated"

    # -- transforms (NSD's own, as nsdcode's NSDmapdata reads them) -----------------------
    def transforms_dir(self, subject: str) -> Path:
        """``nsddata/ppdata/subjXX/transforms``: NSD's coordinate transforms of one subject."""
        return self.root / "nsddata/ppdata" / subject / "transforms"

    def volume_to_surface(self, subject: str, hemi: str, layer: str) -> Path:
        """``{lh,rh}.func1pt8-to-{layer}.mgz``: per subject-surface vertex, the 1-based (x, y, z)
        func1pt8mm voxel coordinate it samples, shape (n_subject_vertices, 1, 1, 3); 9999 or a
        coordinate outside the volume marks an invalid vertex."""
        return self.transforms_dir(subject) / f"{hemi}.func1pt8-to-{layer}.mgz"

    def surface_to_fsaverage(self, subject: str, hemi: str) -> Path:
        """``{lh,rh}.white-to-fsaverage.mgz``: per fsaverage vertex, the 1-based index of the
        subject-surface vertex it takes its value from (nearest neighbour), shape (163842, 1, 1)."""
        return self.transforms_dir(subject) / f"{hemi}.white-to-fsaverage.mgz"

    def projection_transforms(self, subject: str) -> list[Path]:
        """The eight files that project func1pt8mm onto fsaverage: per hemisphere (lh first)
        the three depth layers' ``func1pt8-to-layerB*.mgz`` and ``white-to-fsaverage.mgz``."""
        paths: list[Path] = []
        for hemi in ("lh", "rh"):
            paths += [self.volume_to_surface(subject, hemi, layer) for layer in DEPTH_LAYERS]
            paths.append(self.surface_to_fsaverage(subject, hemi))
        return paths
