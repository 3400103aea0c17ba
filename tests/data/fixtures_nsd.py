"""Tiny NSD and Algonauts 2023 folders in the exact on-disk formats, with their ground truth.

NSD (:func:`write_nsd`):

- ``nsd_expdesign.mat`` via ``scipy.io.savemat`` with the real field names and shapes
  (masterordering 1x30000, subjectim 8x10000, sharedix 1x1000, all 1-based doubles). Sessions 1-3
  of every subject show a small pool of the subject's 10k list with known repetition counts
  (``N3`` images x3, ``N2`` x2, ``N1`` x1; the first ``N_SHARED_POOL`` pool entries are shared
  images), shuffled across the 2,250 trials; later sessions draw at random.
- betas b3: func1pt8mm ``betas_sessionNN.nii.gz`` (X, Y, Z, 750) int16 and ``.hdf5`` with
  ``/betas`` (750, Z, Y, X) chunked like NSD's (MATLAB ``ChunkSize [1 1 1 750]``: one voxel's 750
  trials per chunk, ``NSD_HDF5_CHUNKS``; other chunkings on request); fsaverage ``{lh,rh}.betas_sessionNN.mgh`` (V, 1, 1, 750) float32
  with a small V (a nested fsaverage vertex count) to stay tiny.
- ROIs: ``nsdgeneral`` and all six families as ``.nii.gz`` and ``{lh,rh}.<name>.mgz`` with
  ``<name>.mgz.ctab``; ``ncsnr.nii.gz`` and ``{lh,rh}.ncsnr.mgh``.
- transforms (:func:`write_transforms`, not written by :func:`write_nsd`): NSD's
  ``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz`` and ``{lh,rh}.white-to-fsaverage.mgz``.
- stimuli: ``nsd_stimuli.hdf5`` with ``imgBrick`` of the real shape (73000, 425, 425, 3) uint8,
  chunked per image so that only the few written images take space; the stim info CSV.

Algonauts (:func:`write_algonauts`): the challenge layout with npy fMRI, png names, ROI masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BETAS = "betas_fithrf_GLMdenoise_RR"
N3, N2, N1 = 500, 300, 150  # 3*500 + 2*300 + 150 = 2250 trials = sessions 1..3
N_SHARED_POOL = 100
VOLUME_SHAPE = (5, 4, 3)
#: NSD's HDF5 beta chunking in h5py's (trials, z, y, x) order: one voxel's 750 trials per chunk.
NSD_HDF5_CHUNKS = (750, 1, 1, 1)
N_VERTICES = 162  # fsaverage2's vertex count; nested in fsaverage, so its vertex ids are valid
FAMILIES = {
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


@dataclass
class NsdFixture:
    """Ground truth of a written NSD fixture."""

    root: Path
    masterordering: np.ndarray  # (30000,) 1-based
    subjectim: np.ndarray  # (8, 10000) 1-based
    sharedix: np.ndarray  # (1000,) 1-based
    general: dict[str, np.ndarray] = field(default_factory=dict)  # subject -> (X, Y, Z) labels
    rois: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # subject -> family -> vol
    volume_betas: dict[tuple[str, int], np.ndarray] = field(
        default_factory=dict
    )  # (X,Y,Z,750) int16
    ncsnr: dict[str, np.ndarray] = field(default_factory=dict)
    surface_general: dict[str, np.ndarray] = field(default_factory=dict)  # hemi -> (V,)
    surface_rois: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    surface_betas: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)  # (V, 750)
    surface_ncsnr: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    images: dict[int, np.ndarray] = field(default_factory=dict)

    def trial_ids(self, subject: str, session: int) -> np.ndarray:
        """0-based 73k ids of one session's trials, computed the documented way."""
        s = int(subject[-2:])
        k = np.arange((session - 1) * 750, session * 750)
        return np.array([self.subjectim[s - 1, self.masterordering[i] - 1] - 1 for i in k])


def _design(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = rng.permutation(73000) + 1  # 1-based 73k ids
    shared = perm[:1000]
    subjectim = np.zeros((8, 10000), dtype=np.int64)
    for s in range(8):
        subjectim[s, :1000] = shared
        subjectim[s, 1000:] = perm[1000 + 9000 * s : 1000 + 9000 * (s + 1)]
    # pool of 10k-list indices (1-based) for sessions 1..3: shared 1..100, own 1001..1850
    pool = np.concatenate(
        [np.arange(1, N_SHARED_POOL + 1), np.arange(1001, 1001 + N3 + N2 + N1 - N_SHARED_POOL)]
    )
    pool = rng.permutation(pool)
    reps = np.concatenate([np.full(N3, 3), np.full(N2, 2), np.full(N1, 1)])
    first = rng.permutation(np.repeat(pool, reps))
    rest = rng.integers(1, 10001, size=30000 - first.size)
    masterordering = np.concatenate([first, rest]).astype(np.int64)
    return masterordering, subjectim, np.sort(shared).astype(np.int64)


def _labels(rng, shape, general, n_labels):
    vol = rng.integers(0, n_labels + 1, size=shape).astype(np.int16)
    vol[general == -1] = -1
    return vol


def write_ctab(path: Path, names: dict[int, str]) -> None:
    lines = ["0 Unknown"] + [f"{k} {v}" for k, v in sorted(names.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_nsd(
    root: Path,
    subjects: tuple[str, ...] = ("subj01", "subj02"),
    sessions: tuple[int, ...] = (1, 2, 3),
    volume_formats: tuple[str, ...] = ("nifti", "hdf5"),
    fsaverage_subjects: tuple[str, ...] = ("subj01",),
    shape: tuple[int, int, int] = VOLUME_SHAPE,
    n_vertices: int = N_VERTICES,
    image_ids: tuple[int, ...] | None = None,
    seed: int = 0,
    hdf5_chunks: tuple[int, int, int, int] | None = NSD_HDF5_CHUNKS,
) -> NsdFixture:
    """Write a tiny NSD folder under ``root``; return its ground truth.

    ``hdf5_chunks`` is ``/betas``'s chunk shape in (trials, z, y, x) order (None: contiguous).
    """
    import h5py
    import nibabel as nib
    import pandas as pd
    import scipy.io

    rng = np.random.default_rng(seed)
    root = Path(root)
    mo, subjectim, sharedix = _design(rng)
    fx = NsdFixture(root, mo, subjectim, sharedix)
    exp = root / "nsddata/experiments/nsd"
    exp.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        exp / "nsd_expdesign.mat",
        {
            "masterordering": mo[None, :].astype(np.float64),
            "subjectim": subjectim.astype(np.float64),
            "sharedix": sharedix[None, :].astype(np.float64),
            "basiccnt": np.zeros((3, 40)),
        },
    )
    affine = np.diag([1.8, 1.8, 1.8, 1.0])
    for subject in subjects:
        general = np.zeros(shape, dtype=np.int16)
        general[0] = -1  # the x == 0 plane is outside the brain
        inside = np.argwhere(general == 0)
        chosen = inside[rng.choice(len(inside), size=len(inside) // 2, replace=False)]
        general[tuple(chosen.T)] = 1
        fx.general[subject] = general
        roi_dir = root / "nsddata/ppdata" / subject / "func1pt8mm/roi"
        roi_dir.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(general, affine), roi_dir / "nsdgeneral.nii.gz")
        fx.rois[subject] = {}
        for family, names in FAMILIES.items():
            vol = _labels(rng, shape, general, len(names))
            fx.rois[subject][family] = vol
            nib.save(nib.Nifti1Image(vol, affine), roi_dir / f"{family}.nii.gz")
            write_ctab(
                root / "nsddata/freesurfer" / subject / "label" / f"{family}.mgz.ctab", names
            )
        bdir = root / "nsddata_betas/ppdata" / subject / "func1pt8mm" / BETAS
        bdir.mkdir(parents=True, exist_ok=True)
        ncsnr = rng.uniform(0.05, 1.5, size=shape).astype(np.float32)
        fx.ncsnr[subject] = ncsnr
        nib.save(nib.Nifti1Image(ncsnr, affine), bdir / "ncsnr.nii.gz")
        for s in sessions:
            betas = rng.integers(-3000, 3000, size=shape + (750,)).astype(np.int16)
            fx.volume_betas[(subject, s)] = betas
            if "nifti" in volume_formats:
                nib.save(nib.Nifti1Image(betas, affine), bdir / f"betas_session{s:02d}.nii.gz")
            if "hdf5" in volume_formats:
                with h5py.File(bdir / f"betas_session{s:02d}.hdf5", "w") as fh:
                    fh.create_dataset(
                        "betas", data=np.transpose(betas, (3, 2, 1, 0)), chunks=hdf5_chunks
                    )
    # fsaverage labels (shared by subjects) and per-subject fsaverage betas
    label_dir = root / "nsddata/freesurfer/fsaverage/label"
    label_dir.mkdir(parents=True, exist_ok=True)
    for hemi in ("lh", "rh"):
        g = (rng.random(n_vertices) < 0.5).astype(np.int32)
        fx.surface_general[hemi] = g
        nib.save(nib.MGHImage(g.reshape(-1, 1, 1), np.eye(4)), label_dir / f"{hemi}.nsdgeneral.mgz")
        fx.surface_rois[hemi] = {}
        for family, names in FAMILIES.items():
            lab = rng.integers(0, len(names) + 1, size=n_vertices).astype(np.int32)
            fx.surface_rois[hemi][family] = lab
            nib.save(
                nib.MGHImage(lab.reshape(-1, 1, 1), np.eye(4)), label_dir / f"{hemi}.{family}.mgz"
            )
    for family, names in FAMILIES.items():
        write_ctab(label_dir / f"{family}.mgz.ctab", names)
    for subject in fsaverage_subjects:
        bdir = root / "nsddata_betas/ppdata" / subject / "fsaverage" / BETAS
        bdir.mkdir(parents=True, exist_ok=True)
        for hemi in ("lh", "rh"):
            nc = rng.uniform(0.05, 1.5, size=n_vertices).astype(np.float32)
            fx.surface_ncsnr[(subject, hemi)] = nc
            nib.save(nib.MGHImage(nc.reshape(-1, 1, 1), np.eye(4)), bdir / f"{hemi}.ncsnr.mgh")
            for s in sessions:
                b = rng.normal(0, 2, size=(n_vertices, 750)).astype(np.float32)
                fx.surface_betas[(subject, s, hemi)] = b
                nib.save(
                    nib.MGHImage(b.reshape(n_vertices, 1, 1, 750), np.eye(4)),
                    bdir / f"{hemi}.betas_session{s:02d}.mgh",
                )
    # stimuli: the real imgBrick shape; only a few images are written
    stim = root / "nsddata_stimuli/stimuli/nsd"
    stim.mkdir(parents=True, exist_ok=True)
    if image_ids is None:
        image_ids = (int(fx.trial_ids(subjects[0], 1)[0]), int(sharedix[0] - 1))
    with h5py.File(stim / "nsd_stimuli.hdf5", "w") as fh:
        dset = fh.create_dataset(
            "imgBrick", shape=(73000, 425, 425, 3), dtype=np.uint8, chunks=(1, 425, 425, 3)
        )
        for i in image_ids:
            img = np.zeros((425, 425, 3), dtype=np.uint8)
            img[..., 0] = i % 256
            img[:10, :10, 1] = 200
            dset[i] = img
            fx.images[i] = img
    # stim info CSV for the images of the fixture's subjects
    ids = np.unique(np.concatenate([subjectim[int(s[-2:]) - 1] - 1 for s in subjects]))
    shared0 = set((sharedix - 1).tolist())
    df = pd.DataFrame(
        {
            "cocoId": ids + 100000,
            "cocoSplit": "train2017",
            "cropBox": "(0, 0, 0.1, 0.1)",
            "loss": 0.0,
            "nsdId": ids,
            "flagged": False,
            "BOLD5000": False,
            "shared1000": [i in shared0 for i in ids],
        }
    )
    for k in range(1, 9):
        df[f"subject{k}"] = np.isin(ids, subjectim[k - 1] - 1).astype(int)
        for r in range(3):
            df[f"subject{k}_rep{r}"] = 0
    df.to_csv(exp / "nsd_stim_info_merged.csv")
    return fx


def write_flat_surfaces(surf_dir: Path, n_vertices: int = 12, seed: int = 0) -> dict:
    """Write ``{lh,rh}.inflated`` and ``{lh,rh}.full.flat.patch.3d`` (FreeSurfer formats).

    The patch holds every vertex but the last (cut); vertex 0 is flagged as a border vertex.
    """
    import nibabel.freesurfer as fs

    rng = np.random.default_rng(seed)
    surf_dir = Path(surf_dir)
    surf_dir.mkdir(parents=True, exist_ok=True)
    truth = {}
    for hemi in ("lh", "rh"):
        coords = rng.normal(size=(n_vertices, 3)).astype(np.float32)
        faces = np.array([[i, i + 1, i + 2] for i in range(n_vertices - 2)], dtype=np.int32)
        fs.write_geometry(str(surf_dir / f"{hemi}.inflated"), coords, faces)
        kept = np.arange(n_vertices - 1)
        flat = rng.normal(size=(kept.size, 3)).astype(np.float32)
        flat[:, 2] = 0
        rec = np.zeros(kept.size, dtype=[("vert", ">i4"), ("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
        rec["vert"] = kept + 1
        rec["vert"][0] *= -1
        rec["x"], rec["y"], rec["z"] = flat[:, 0], flat[:, 1], flat[:, 2]
        with open(surf_dir / f"{hemi}.full.flat.patch.3d", "wb") as fh:
            fh.write(np.array([-1, kept.size], dtype=">i4").tobytes())
            fh.write(rec.tobytes())
        truth[hemi] = {"inflated": coords, "faces": faces, "flat": flat, "kept": kept}
    return truth


# --------------------------------------------------------------------------------------------
# NSD's transforms (func1pt8mm -> subject surface depth layers -> fsaverage)
# --------------------------------------------------------------------------------------------
DEPTH_LAYERS = ("layerB1", "layerB2", "layerB3")
#: Subject-surface vertices per hemisphere in :func:`write_transforms` (lh, rh: unequal on purpose).
SUBJECT_VERTICES = {"lh": 40, "rh": 33}


@dataclass
class TransformsFixture:
    """Ground truth of :func:`write_transforms`.

    ``coords[hemi]`` (V, 3 layers, 3) holds the 1-based (x, y, z) written per vertex and layer
    (9999 / negative / out-of-range entries included); ``fs_index[hemi]`` (F,) the 1-based
    subject vertex written per fsaverage vertex; ``planted`` the 0-based voxel (x, y, z) that
    anchor vertices sample; ``anchors[hemi]`` the 0-based subject vertices whose every valid
    layer sits exactly on ``planted``'s centre.
    """

    coords: dict[str, np.ndarray] = field(default_factory=dict)
    fs_index: dict[str, np.ndarray] = field(default_factory=dict)
    planted: tuple[int, int, int] = (0, 0, 0)
    anchors: dict[str, list[int]] = field(default_factory=dict)
    invalid: dict[str, list[int]] = field(default_factory=dict)


def write_transforms(
    root: Path,
    subject: str,
    general: np.ndarray,
    n_fsaverage: int = N_VERTICES,
    n_subject: dict[str, int] | None = None,
    seed: int = 3,
    skip: tuple[str, ...] = (),
) -> TransformsFixture:
    """Write ``nsddata/ppdata/<subject>/transforms/{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``
    (V, 1, 1, 3) float32 1-based voxel coordinates and ``{lh,rh}.white-to-fsaverage.mgz``
    (F, 1, 1) int32 1-based subject vertex indices, in NSD's format, on ``general``'s grid.

    Per hemisphere: vertex 0 samples the planted voxel (the first nsdgeneral voxel) at its exact
    centre in all three layers; vertex 1 in layers B1 and B2 (B3 is 9999); vertex 2 is 9999 in
    every layer, vertex 3 negative, vertex 4 beyond the volume (all invalid); the other vertices
    sample random voxel centres, some of them at fractional (between-voxel) coordinates.
    fsaverage vertices 0 and 5 take subject vertex 0 (1-based 1), vertex 1 takes vertex 2 (an
    invalid one); the rest are random. ``skip`` names files (e.g. ``"rh.white-to-fsaverage"``)
    not to write.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    n_subject = n_subject or SUBJECT_VERTICES
    shape = np.asarray(general.shape)
    planted = tuple(int(v) for v in np.argwhere(general == 1)[0])
    truth = TransformsFixture(planted=planted)
    tdir = Path(root) / "nsddata/ppdata" / subject / "transforms"
    tdir.mkdir(parents=True, exist_ok=True)
    for hemi in ("lh", "rh"):
        n = n_subject[hemi]
        coords = (rng.integers(0, shape, size=(n, 3, 3)) + 1).astype(np.float64)
        frac = rng.random(n) < 0.3
        coords[frac] += rng.uniform(0, 1, size=(int(frac.sum()), 3, 3))
        coords = np.minimum(coords, shape)  # stay inside 1..dim
        centre = np.asarray(planted, dtype=np.float64) + 1
        coords[0] = centre
        coords[1, :2] = centre
        coords[1, 2] = 9999
        coords[2] = 9999
        coords[3] = -1.0
        coords[4] = shape + 2.0
        # no other vertex touches the planted voxel, so the anchors are its only vertices
        near = (np.abs(coords - centre) < 1).all(axis=2)  # (V, layers)
        near[:2] = False
        moved = np.argwhere(near)
        for v, layer in moved:
            coords[v, layer] = 9999
        truth.coords[hemi] = coords
        truth.anchors[hemi] = [0, 1]
        truth.invalid[hemi] = [2, 3, 4]
        for k, layer in enumerate(DEPTH_LAYERS):
            name = f"{hemi}.func1pt8-to-{layer}"
            if name in skip:
                continue
            data = coords[:, k, :].astype(np.float32).reshape(n, 1, 1, 3)
            nib.save(nib.MGHImage(data, np.eye(4)), tdir / f"{name}.mgz")
        fs = rng.integers(1, n + 1, size=n_fsaverage).astype(np.int32)
        fs[fs == 1] = 7  # only the fsaverage vertices named below take subject vertex 0
        fs[0] = fs[5] = 1
        fs[1] = 3
        truth.fs_index[hemi] = fs
        name = f"{hemi}.white-to-fsaverage"
        if name not in skip:
            nib.save(nib.MGHImage(fs.reshape(-1, 1, 1), np.eye(4)), tdir / f"{name}.mgz")
    return truth


# --------------------------------------------------------------------------------------------
# Algonauts 2023
# --------------------------------------------------------------------------------------------
@dataclass
class AlgonautsFixture:
    root: Path
    train_ids: dict[str, np.ndarray] = field(default_factory=dict)  # subject -> nsd ids per row
    test_ids: dict[str, np.ndarray] = field(default_factory=dict)
    fmri: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (subject, hemi)
    all_vertices: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    challenge_rois: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)


def write_algonauts(
    root: Path,
    train_ids: dict[str, np.ndarray],
    test_ids: dict[str, np.ndarray],
    n_vertices: int = N_VERTICES,
    seed: int = 1,
) -> AlgonautsFixture:
    """Write an Algonauts 2023 folder: per subject npy fMRI, png images, ROI masks."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    fx = AlgonautsFixture(root)
    for subject, ids in train_ids.items():
        sdir = root / subject
        fx.train_ids[subject] = np.asarray(ids)
        fx.test_ids[subject] = np.asarray(test_ids[subject])
        for split, name, split_ids in (
            ("training_split", "training_images", ids),
            ("test_split", "test_images", test_ids[subject]),
        ):
            folder = sdir / split / name
            folder.mkdir(parents=True, exist_ok=True)
            prefix = "train" if split == "training_split" else "test"
            for row, nsd in enumerate(split_ids, start=1):
                pix = np.full((8, 8, 3), nsd % 256, dtype=np.uint8)
                Image.fromarray(pix).save(folder / f"{prefix}-{row:04d}_nsd-{int(nsd):05d}.png")
        (sdir / "training_split/training_fmri").mkdir(parents=True, exist_ok=True)
        roi_dir = sdir / "roi_masks"
        roi_dir.mkdir(parents=True, exist_ok=True)
        for hemi in ("lh", "rh"):
            allv = (rng.random(n_vertices) < 0.6).astype(np.float32)
            fx.all_vertices[(subject, hemi)] = allv
            np.save(roi_dir / f"{hemi}.all-vertices_fsaverage_space.npy", allv)
            n_ch = int(allv.sum())
            fmri = rng.normal(size=(len(ids), n_ch)).astype(np.float32)
            fx.fmri[(subject, hemi)] = fmri
            np.save(sdir / "training_split/training_fmri" / f"{hemi}_training_fmri.npy", fmri)
            for family, names in FAMILIES.items():
                fsavg = rng.integers(0, len(names) + 1, size=n_vertices).astype(np.float32)
                fsavg[allv == 0] = 0
                np.save(roi_dir / f"{hemi}.{family}_fsaverage_space.npy", fsavg)
                challenge = fsavg[allv == 1]
                fx.challenge_rois[(subject, hemi, family)] = challenge
                np.save(roi_dir / f"{hemi}.{family}_challenge_space.npy", challenge)
        for family, names in FAMILIES.items():
            # the real mapping files are pickled dicts; the reader never unpickles them
            np.save(roi_dir / f"mapping_{family}.npy", {0: "Unknown", **names}, allow_pickle=True)  # pickle-test
    return fx


# --------------------------------------------------------------------------------------------
# NSD at full size (benchmarks and plan checks)
# --------------------------------------------------------------------------------------------
#: subj01's func1pt8mm grid (X, Y, Z) and nsdgeneral voxel count.
SUBJ01_SHAPE = (81, 104, 83)
SUBJ01_GENERAL = 15724


def realistic_general(
    shape: tuple[int, int, int] = SUBJ01_SHAPE, n_voxels: int = SUBJ01_GENERAL, seed: int = 0
) -> np.ndarray:
    """An ``nsdgeneral``-like label volume: -1 outside an ellipsoidal brain, 0 inside, 1 on
    ``n_voxels`` voxels of a patchy cortical ribbon leaning posterior (low y), spread over many
    planes and rows like the real mask.

    Returns
    -------
    labels : array of shape (X, Y, Z), int16
    """
    from scipy import ndimage

    grid = np.indices(shape).astype(np.float32)
    centre = ((np.array(shape, dtype=np.float32) - 1) / 2)[:, None, None, None]
    radii = (np.array([0.45, 0.46, 0.42], dtype=np.float32) * np.array(shape))[:, None, None, None]
    dist = np.sqrt((((grid - centre) / radii) ** 2).sum(axis=0))
    brain = dist < 1
    labels = np.full(shape, -1, dtype=np.int16)
    labels[brain] = 0
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 3)
    score = field - 0.25 * grid[1] / shape[1] - 0.5 * np.abs(dist - 0.85)
    score[~brain] = -np.inf
    threshold = np.sort(score[brain])[-n_voxels]
    labels[score >= threshold] = 1
    return labels
