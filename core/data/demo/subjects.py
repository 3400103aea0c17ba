"""Simulated subjects on pycortex's real cortical surface S1, with a planted ground-truth model.

Targets
    Vertices of S1 within 6 flat-map units of the visual ROIs (V1, V2, V3, OFA, FFA, EBA, OPA,
    PPA, RSC, IPS), subsampled per subject (like voxels sampling cortex), tens of thousands per
    subject. The general visual mask (NSD's nsdgeneral) is the part within 2 units of an ROI minus
    the anterior third of IPS, so ROI labels and the mask differ as they do in NSD.

Planted model (documented in :data:`PLANTED_DRIVERS`)
    Each target's noiseless response is a random linear read-out of one group of scene features,
    standardised over images, times its signal SD (its true ncsnr), plus unit-variance Gaussian
    noise per trial:

    - early visual (V1, V2, V3): low-level image statistics, mostly the image's colour content
      (dominant colour and mean RGB), partly the luminance layout within a receptive-field cell;
    - face ROIs (OFA, FFA): people (presence and number);
    - body ROI (EBA): people (number and what they do);
    - place ROIs (OPA, PPA, RSC): environment type and layout (horizon height);
    - IPS: numerosity (number of animals, and of objects in general);
    - other targets in the mask: a weak mixture of all groups; a fraction are pure noise; targets
      outside the mask are mostly pure noise.

    Trials: 3 repetitions per image for test images, mixed 3/2/1 for train images (as in NSD
    subjects with missing sessions); each target is z-scored over its trials (one session), the
    repetitions are averaged, and ncsnr is estimated from the trials the NSD way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from core.data.dataset import RoiFamily, SubjectData, TargetGeometry, TargetSet
from core.data.demo.content import ACTIONS, COLOUR_NAMES, ENVIRONMENTS
from core.data.noise_ceiling import ncsnr_from_trials
from core.data.surfaces import load_flat_mesh

ROI_ASSET = Path(__file__).resolve().parent.parent / "assets" / "s1_visual_rois.npz"
SURFACE = "pycortex:S1"

#: ROI families of the demo, mirroring NSD's files (name -> {label value: ROI name}).
DEMO_ROI_FAMILIES: dict[str, dict[int, str]] = {
    "visual": {1: "V1", 2: "V2", 3: "V3"},
    "faces": {1: "OFA", 2: "FFA"},
    "bodies": {1: "EBA"},
    "places": {1: "OPA", 2: "PPA", 3: "RSC"},
    "parietal": {1: "IPS"},
}

#: ROI -> planted driver (feature group).
PLANTED_DRIVERS: dict[str, str] = {
    "V1": "low_level",
    "V2": "low_level",
    "V3": "low_level",
    "OFA": "faces",
    "FFA": "faces",
    "EBA": "bodies",
    "OPA": "places",
    "PPA": "places",
    "RSC": "places",
    "IPS": "numerosity",
}
DRIVER_GROUPS = ("none", "low_level", "faces", "bodies", "places", "numerosity", "mixed")

TARGET_RADIUS = 6.0
GENERAL_RADIUS = 2.0


@dataclass(frozen=True)
class Cortex:
    """The candidate target vertices of S1 and their ROI membership.

    Attributes
    ----------
    hemi : array of shape (n_candidates,), int8
    vertex : array of shape (n_candidates,), int32
        Vertex index within the hemisphere.
    roi : array of shape (n_candidates,), object-free str codes
        ROI name per candidate ("" when none).
    general : array of shape (n_candidates,), bool
    """

    hemi: np.ndarray
    vertex: np.ndarray
    roi: np.ndarray
    general: np.ndarray


@lru_cache(maxsize=1)
def candidate_cortex() -> Cortex:
    """Vertices of S1 near the visual ROIs, with ROI names and general-mask membership."""
    rois = np.load(ROI_ASSET, allow_pickle=False)
    lh = load_flat_mesh(SURFACE, "lh")
    rh = load_flat_mesh(SURFACE, "rh")
    n_lh = lh.n_vertices
    all_roi = np.unique(np.concatenate([rois[k] for k in rois.files]))
    hemis, verts, names, general = [], [], [], []
    for h, mesh, off in ((0, lh, 0), (1, rh, n_lh)):
        in_faces = np.zeros(mesh.n_vertices, bool)
        in_faces[mesh.faces.ravel()] = True
        members = all_roi[(all_roi >= off) & (all_roi < off + mesh.n_vertices)] - off
        dist, _ = cKDTree(mesh.coords[members]).query(mesh.coords)
        cand = np.flatnonzero((dist <= TARGET_RADIUS) & in_faces)
        roi_name = np.full(mesh.n_vertices, "", dtype="<U4")
        for name in PLANTED_DRIVERS:  # later ROIs win the few shared boundary vertices
            idx = rois[name]
            idx = idx[(idx >= off) & (idx < off + mesh.n_vertices)] - off
            roi_name[idx] = name
        gen = dist <= GENERAL_RADIUS
        # the anterior third of IPS (furthest from V3) lies outside the general mask
        ips = np.flatnonzero(roi_name == "IPS")
        v3 = np.flatnonzero(roi_name == "V3")
        if ips.size and v3.size:
            d_v3, _ = cKDTree(mesh.coords[v3]).query(mesh.coords[ips])
            gen[ips[d_v3 > np.quantile(d_v3, 2 / 3)]] = False
        hemis.append(np.full(cand.size, h, np.int8))
        verts.append(cand.astype(np.int32))
        names.append(roi_name[cand])
        general.append(gen[cand])
    return Cortex(
        hemi=np.concatenate(hemis),
        vertex=np.concatenate(verts),
        roi=np.concatenate(names),
        general=np.concatenate(general),
    )


def scene_features(attributes: pd.DataFrame, low_level: np.ndarray) -> dict[str, np.ndarray]:
    """The planted model's feature groups, each standardised over images.

    Parameters
    ----------
    attributes : DataFrame, one row per image
        Columns used: dominant_colour, environment, horizon, n_people, n_animals, n_objects and
        one ``action__<name>`` count column per action.
    low_level : array of shape (n_images, 19)
        Mean RGB (3) and the 4 x 4 luminance grid (16), measured on the rendered images.

    Returns
    -------
    groups : dict of str to array of shape (n_images, n_features)
    """

    def z(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        sd = a.std(0)
        return (a - a.mean(0)) / np.where(sd > 0, sd, 1.0)

    colour = np.stack([(attributes["dominant_colour"] == c).to_numpy() for c in COLOUR_NAMES], 1)
    env = np.stack([(attributes["environment"] == e).to_numpy() for e in ENVIRONMENTS], 1)
    n_people = attributes["n_people"].to_numpy(float)
    actions = np.stack([attributes[f"action__{a}"].to_numpy(float) for a in ACTIONS], 1)
    n_animals = attributes["n_animals"].to_numpy(float)
    return {
        # colour identity dominates early visual responses; luminance layout adds local detail
        "low_level": np.hstack([2.0 * z(colour), z(low_level[:, :3]), 0.6 * z(low_level[:, 3:])]),
        "faces": np.hstack([2.0 * z(n_people > 0)[:, None], z(np.sqrt(n_people))[:, None]]),
        "bodies": np.hstack([z(n_people)[:, None], z(actions)]),
        "places": np.hstack([2.0 * z(env), 0.7 * z(attributes["horizon"].to_numpy())[:, None]]),
        "numerosity": np.hstack(
            [2.0 * z(n_animals)[:, None], 0.5 * z(attributes["n_objects"].to_numpy(float))[:, None]]
        ),
    }


def _readout(group: np.ndarray, n_targets: int, rng: np.random.Generator) -> np.ndarray:
    """Random per-target read-outs of a feature group, each scaled to unit variance over images.

    Returns
    -------
    signal : array of shape (n_images, n_targets)
    """
    w = rng.standard_normal((group.shape[1], n_targets))
    s = group @ w
    s -= s.mean(0)
    s /= np.maximum(s.std(0), 1e-12)
    return s


def simulate_subject(
    subject: str,
    stimulus_ids: np.ndarray,
    is_test: np.ndarray,
    features: dict[str, np.ndarray],
    density: float,
    seed: int,
) -> tuple[SubjectData, dict[str, np.ndarray]]:
    """Simulate one subject's responses.

    Parameters
    ----------
    subject : str
    stimulus_ids : array of shape (n_images,)
    is_test : array of shape (n_images,), bool
    features : dict from :func:`scene_features`
    density : float
        Fraction of candidate vertices that become targets.
    seed : int

    Returns
    -------
    data : SubjectData
    truth : dict of arrays of shape (n_targets,)
        ``planted_ncsnr`` (true signal SD / noise SD) and ``driver`` (index into
        :data:`DRIVER_GROUPS`).
    """
    rng = np.random.default_rng(seed)
    cortex = candidate_cortex()
    keep = np.sort(rng.choice(cortex.hemi.size, int(density * cortex.hemi.size), replace=False))
    roi = cortex.roi[keep]
    general = cortex.general[keep]
    n_t = keep.size
    n_img = stimulus_ids.size

    driver = np.zeros(n_t, np.int8)  # "none"
    snr = np.zeros(n_t)
    signal = np.zeros((n_img, n_t), np.float32)
    for name, group in PLANTED_DRIVERS.items():
        idx = np.flatnonzero(roi == name)
        driver[idx] = DRIVER_GROUPS.index(group)
        snr[idx] = rng.lognormal(np.log(0.55), 0.45, idx.size)
    other = np.flatnonzero((roi == "") & general)
    mixed = other[rng.random(other.size) < 0.6]
    driver[mixed] = DRIVER_GROUPS.index("mixed")
    snr[mixed] = rng.lognormal(np.log(0.25), 0.4, mixed.size)
    outside = np.flatnonzero((roi == "") & ~general)
    weak = outside[rng.random(outside.size) < 0.15]
    driver[weak] = DRIVER_GROUPS.index("mixed")
    snr[weak] = rng.lognormal(np.log(0.15), 0.4, weak.size)

    for g, group in enumerate(DRIVER_GROUPS):
        idx = np.flatnonzero(driver == g)
        if group == "none" or idx.size == 0:
            continue
        if group == "mixed":
            stacked = np.hstack([features[k] for k in PLANTED_DRIVERS.values()])
            signal[:, idx] = _readout(stacked, idx.size, rng)
        else:
            signal[:, idx] = _readout(features[group], idx.size, rng)

    # repetitions: test images 3 each; train images mostly 3, some 2 or 1 (missing sessions)
    n_rep = np.where(is_test, 3, rng.choice([3, 2, 1], size=n_img, p=[0.9, 0.07, 0.03]))
    image_index = np.repeat(np.arange(n_img), n_rep)
    trials = signal[image_index] * snr[None, :].astype(np.float32)
    trials += rng.standard_normal(trials.shape, dtype=np.float32)
    trials -= trials.mean(0)
    trials /= trials.std(0)  # z-scored over the session
    ncsnr = ncsnr_from_trials(trials, image_index)
    order_starts = np.concatenate([[0], np.cumsum(n_rep)[:-1]])
    sums = np.add.reduceat(trials, order_starts, axis=0)
    responses = (sums / n_rep[:, None]).astype(np.float32)

    families = {}
    for fam, names in DEMO_ROI_FAMILIES.items():
        labels = np.zeros(n_t, np.int16)
        for value, name in names.items():
            labels[roi == name] = value
        families[fam] = RoiFamily(name=fam, labels=labels, names=dict(names))
    targets = TargetSet(
        roi_families=families,
        general_mask=general,
        ncsnr=ncsnr,
        geometry=TargetGeometry(
            surface=SURFACE, hemi=cortex.hemi[keep], vertex=cortex.vertex[keep]
        ),
    )
    data = SubjectData(
        subject=subject,
        stimulus_ids=stimulus_ids.astype(np.int64),
        responses=responses,
        n_repeats=n_rep.astype(np.int16),
        is_test=is_test.astype(bool),
        targets=targets,
    )
    return data, {"planted_ncsnr": snr.astype(np.float32), "driver": driver}
