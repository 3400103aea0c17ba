"""The demo's planted ground truth beside what the pipeline recovered (no streamlit here).

A teaching view no real dataset can give: the simulation knows what drives every target
(:mod:`core.data.demo.subjects`), so the app can put the planted maps next to the recovered ones.

- :func:`planted_maps`: the per-target maps a subject's ``truth.npz`` holds, as plottable arrays
  (driver, driver weights, pRF eccentricity / polar angle / size, preferred hue, preferred
  numerosity, preferred place of the largest thing, unnamed share, true ncsnr);
- :func:`roi_preferences`: each ROI's planted preference (driver, instruction that names it,
  mean driver weight, unnamed share, pRF eccentricity range, preferred numerosity, ...);
- :func:`mesh_autocorrelation`: lag-1 spatial autocorrelation of a per-target map over the
  edges of the cortical mesh;
- :func:`ring_eccentricity` and :func:`eccentricity_check`: the image eccentricity predicted
  responses follow, compared with the planted pRF eccentricity.

What the pipeline recovered (the ranking per ROI, the eccentricity an encoder recovers) is
computed in :mod:`core.results.recovery`; nothing here fits or reads results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.demo.drives import CHANNELS, FIELD_DEG, PIX
from core.data.demo.subjects import (
    DRIVER_GROUPS,
    GROUPS,
    PLANTED_DRIVERS,
    PlantedInputs,
    planted_label,
)

#: Readable names of the planted driver groups (the category map's legend).
GROUP_LABELS = {
    "low_level": "low-level, retinotopic (IU1)",
    "faces": "faces (VQ2)",
    "bodies": "bodies (VQ2)",
    "places": "places (CR/SR)",
    "numerosity": "numerosity (IU3)",
    "objects": "objects: largest thing's size and place (pool only)",
    "mixed": "mixture (between areas)",
}

#: Planted per-target maps offered for display: key -> (label, kind, colour map).
#: kind: "category" (driver), "value", "cyclic" (angles in radians).
PLANTED_MAPS: dict[str, tuple[str, str, str | None]] = {
    "driver": ("planted driver (dominant tuning group)", "category", None),
    "prf_ecc": ("pRF eccentricity (degrees; V1-V3)", "value", "viridis"),
    "prf_angle": ("pRF polar angle (degrees; + upper field; V1-V3)", "value", "twilight_shifted"),
    "prf_size": ("pRF size (degrees; V1-V3)", "value", "magma"),
    "hue_pref": ("preferred hue direction (degrees; V1-V3)", "cyclic", "hsv"),
    "numerosity_pref": ("preferred number of animals (IPS)", "value", "cividis"),
    "object_x_pref": (
        "preferred horizontal place of the largest thing (LOC; -1 left .. 1 right)",
        "value",
        "coolwarm",
    ),
    "object_y_pref": (
        "preferred vertical place of the largest thing (LOC; -1 bottom .. 1 top)",
        "value",
        "coolwarm",
    ),
    "unnamed_share": ("share of signal no instruction names", "value", "inferno"),
    "planted_ncsnr": ("true ncsnr (signal SD / noise SD)", "value", "inferno"),
}

#: Eccentricity rings (degrees) of :func:`ring_eccentricity`: the image is 8.4 degrees wide,
#: its corners are at 5.9 degrees.
RING_EDGES = (0.0, 0.75, 1.5, 2.25, 3.0, 3.75, 4.5, 6.0)
#: Pixel-grid channels the rings are described by (texture is left out: it is unnamed content).
RING_CHANNELS = ("luminance", "contrast", "red", "green", "blue", "yellow")


def load_planted_inputs(root) -> PlantedInputs:
    """The planted model's drives of every stimulus of a built demo world, recomputed from the
    stored pictures and content exactly as the build computed them.

    Parameters
    ----------
    root : Path
        The demo folder.
    """
    import json
    from pathlib import Path

    from PIL import Image

    from core.data.demo.drives import PrfBank, pixel_grid, scene_drives
    from core.storage import load_npy

    root = Path(root)
    attributes = pd.read_parquet(root / "stimuli" / "attributes.parquet")
    lines = (root / "stimuli" / "content.jsonl").read_text().splitlines()
    contents = [json.loads(line) for line in lines if line.strip()]
    dense = load_npy(root / "stimuli" / "dense_labels.npy")
    grids = []
    for i in attributes["stimulus_id"]:
        with Image.open(root / "stimuli" / "images" / f"{int(i):05d}.png") as im:
            grids.append(pixel_grid(im.convert("RGB")))
    grids = np.stack(grids)
    return PlantedInputs(scene_drives(attributes, contents, dense, grids), PrfBank(grids))


def driver_categories(truth: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """The planted driver per target as category labels for a flatmap.

    Returns
    -------
    labels : array of shape (n_targets,), int
        Index into ``names``; -1 for pure-noise targets (not drawn).
    names : list of str
        :data:`GROUP_LABELS` of the groups and the mixture.
    """
    driver = np.asarray(truth["driver"]).astype(int)
    return driver - 1, [GROUP_LABELS[g] for g in DRIVER_GROUPS[1:]]


def planted_maps(truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-target value maps of :data:`PLANTED_MAPS` (angles in degrees; the driver as
    category labels, see :func:`driver_categories`)."""
    out: dict[str, np.ndarray] = {"driver": driver_categories(truth)[0]}
    for key in PLANTED_MAPS:
        if key == "driver" or key not in truth:
            continue
        v = np.asarray(truth[key], dtype=np.float64)
        if key in ("prf_angle", "hue_pref"):
            v = np.degrees(v)
        out[key] = v
    return out


def _roi_label_masks(targets) -> dict[str, np.ndarray]:
    return {roi: targets.roi_mask(roi) for roi in PLANTED_DRIVERS if roi in targets.roi_names()}


def roi_preferences(truth: dict[str, np.ndarray], targets) -> pd.DataFrame:
    """Each ROI's planted preference (targets = ROI label AND general mask).

    Parameters
    ----------
    truth : dict
        A subject's ``truth.npz``.
    targets : TargetSet
        The subject's targets.

    Returns
    -------
    DataFrame, one row per ROI: roi, targets, planted driver, instruction (the one whose answer
    names what the driver is tuned to), driver weight (mean membership of the ROI's targets in
    its group), unnamed share, true ncsnr, and where they apply: pRF eccentricity range and
    median size (V1-V3), median preferred numerosity (IPS), preferred environment (places),
    preferred position of the largest thing (LOC; median over both hemispheres, whose
    preferences lie in opposite halves of the image).
    """
    weights = np.asarray(truth["driver_weights"])
    rows = []
    env_names = ("outdoor", "indoor", "street")
    for roi, mask in _roi_label_masks(targets).items():
        group = PLANTED_DRIVERS[roi]
        row = {
            "roi": roi,
            "targets": int(mask.sum()),
            "planted driver": group,
            "instruction": planted_label(group),
            "driver weight": float(weights[mask, GROUPS.index(group)].mean())
            if mask.any()
            else np.nan,
            "unnamed share": float(np.mean(truth["unnamed_share"][mask])) if mask.any() else np.nan,
            "true ncsnr": float(np.mean(truth["planted_ncsnr"][mask])) if mask.any() else np.nan,
            "pRF eccentricity (deg)": "",
            "pRF size (deg, median)": np.nan,
            "preferred numerosity (median)": np.nan,
            "preferred environment": "",
            "preferred object position": "",
        }
        if group == "low_level" and mask.any():
            ecc = truth["prf_ecc"][mask]
            ecc = ecc[np.isfinite(ecc)]
            if ecc.size:
                row["pRF eccentricity (deg)"] = f"{np.min(ecc):.1f}-{np.max(ecc):.1f}"
                row["pRF size (deg, median)"] = float(np.nanmedian(truth["prf_size"][mask]))
        if group == "numerosity" and mask.any():
            row["preferred numerosity (median)"] = float(
                np.nanmedian(truth["numerosity_pref"][mask])
            )
        if group == "places" and mask.any():
            env = truth["environment_pref"][mask]
            env = env[env >= 0]
            if env.size:
                counts = np.bincount(env, minlength=3) / env.size
                row["preferred environment"] = ", ".join(
                    f"{n} {c:.0%}" for n, c in zip(env_names, counts, strict=True) if c > 0
                )
        if group == "objects" and mask.any() and "object_x_pref" in truth:
            x = np.nanmedian(truth["object_x_pref"][mask])
            y = np.nanmedian(truth["object_y_pref"][mask])
            if np.isfinite(x) and np.isfinite(y):
                row["preferred object position"] = (
                    f"{'upper' if y > 0 else 'lower'} {'right' if x > 0 else 'left'} "
                    f"(x {x:+.2f}, y {y:+.2f})"
                )
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Autocorrelation:
    """Lag-1 spatial autocorrelation of a per-target map: the Pearson correlation of the values
    at the two ends of every mesh edge joining two targets (both with finite values)."""

    r: float
    n_pairs: int


def mesh_autocorrelation(
    values: np.ndarray, geometry, mask: np.ndarray | None = None
) -> Autocorrelation:
    """Lag-1 autocorrelation of ``values`` over the edges of the geometry's surface mesh.

    Parameters
    ----------
    values : array of shape (n_targets,)
    geometry : TargetGeometry
        Surface id, hemisphere and vertex of each target.
    mask : bool array of shape (n_targets,), optional
        Only pairs with both ends inside.
    """
    from core.data.surfaces import HEMIS, load_flat_mesh

    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values) if mask is None else np.isfinite(values) & mask
    xs, ys = [], []
    for h, name in enumerate(HEMIS):
        sel = np.flatnonzero((geometry.hemi == h) & keep)
        if sel.size < 2:
            continue
        mesh = load_flat_mesh(geometry.surface, name)
        lut = np.full(mesh.n_vertices, -1)
        lut[geometry.vertex[sel]] = sel
        f = mesh.faces
        edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        edges = np.unique(np.sort(edges, 1), axis=0)
        a, b = lut[edges[:, 0]], lut[edges[:, 1]]
        ok = (a >= 0) & (b >= 0)
        xs.append(values[a[ok]])
        ys.append(values[b[ok]])
    if not xs or sum(x.size for x in xs) < 3:
        return Autocorrelation(np.nan, 0)
    x, y = np.concatenate(xs), np.concatenate(ys)
    both_x, both_y = np.concatenate([x, y]), np.concatenate([y, x])  # symmetric
    return Autocorrelation(float(np.corrcoef(both_x, both_y)[0, 1]), int(x.size))


def ring_eccentricity(predicted: np.ndarray, grids: np.ndarray) -> np.ndarray:
    """The image eccentricity each target's (predicted) responses follow.

    For each of the rings :data:`RING_EDGES` around the image centre, the share of a target's
    response variance explained by the ring's mean luminance, contrast and colour-opponent
    channels (a linear regression over images); the preferred eccentricity is the mean ring
    eccentricity weighted by those shares.

    Parameters
    ----------
    predicted : array of shape (n_images, n_targets)
    grids : array of shape (n_images, 7, 32, 32)
        Pixel grids of the same images (:func:`core.data.demo.drives.pixel_grid`).

    Returns
    -------
    eccentricity : array of shape (n_targets,), degrees
    """
    p = np.asarray(predicted, dtype=np.float64)
    p = p - p.mean(0)
    total = np.maximum((p**2).sum(0), 1e-12)
    x = (np.arange(PIX) + 0.5 - PIX / 2) * FIELD_DEG / PIX
    radius = np.sqrt(x[:, None] ** 2 + x[None, :] ** 2)
    chans = [CHANNELS.index(c) for c in RING_CHANNELS]
    edges = np.asarray(RING_EDGES)
    centres = (edges[:-1] + edges[1:]) / 2
    share = np.zeros((centres.size, p.shape[1]))
    for k in range(centres.size):
        ring = (radius >= edges[k]) & (radius < edges[k + 1])
        feats = grids[:, chans][:, :, ring].mean(2).astype(np.float64)
        feats -= feats.mean(0)
        q, _ = np.linalg.qr(feats)
        share[k] = ((q.T @ p) ** 2).sum(0) / total
    w = share / np.maximum(share.sum(0), 1e-12)
    return (centres[:, None] * w).sum(0)


@dataclass(frozen=True)
class EccentricityCheck:
    """Planted pRF eccentricity beside the eccentricity recovered from an encoder.

    Attributes
    ----------
    targets : bool array of shape (n_targets,)
        The V1-V3 targets compared (ROI label AND general mask, with a planted pRF).
    planted, recovered : arrays of shape (n_targets,)
        Degrees; NaN outside ``targets``.
    spearman : float
        Rank correlation over ``targets``.
    """

    targets: np.ndarray
    planted: np.ndarray
    recovered: np.ndarray
    spearman: float


def early_targets(truth: dict[str, np.ndarray], targets) -> np.ndarray:
    """V1-V3 targets (label AND general mask) with a planted pRF."""
    mask = np.zeros(targets.n_targets, bool)
    for roi in ("V1", "V2", "V3"):
        if roi in targets.roi_names():
            mask |= targets.roi_mask(roi)
    return mask & np.isfinite(np.asarray(truth["prf_ecc"]))


def eccentricity_check(
    truth: dict[str, np.ndarray], targets, predicted: np.ndarray, grids: np.ndarray
) -> EccentricityCheck:
    """Compare planted pRF eccentricity with :func:`ring_eccentricity` of ``predicted``.

    Parameters
    ----------
    predicted : array of shape (n_images, n_early)
        Responses of the :func:`early_targets` (in their order) to the images of ``grids``.
    """
    from scipy.stats import spearmanr

    sel = early_targets(truth, targets)
    planted = np.full(targets.n_targets, np.nan)
    recovered = np.full(targets.n_targets, np.nan)
    planted[sel] = truth["prf_ecc"][sel]
    if sel.sum() >= 3:
        recovered[sel] = ring_eccentricity(predicted, grids)
        rho = float(spearmanr(planted[sel], recovered[sel])[0])
    else:
        rho = np.nan
    return EccentricityCheck(sel, planted, recovered, rho)
