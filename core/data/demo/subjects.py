"""Simulated subjects on pycortex's real cortical surface S1, with a planted ground-truth model.

Targets
    Vertices of S1 sampled (like voxels sampling cortex) from the general visual mask, a
    contiguous posterior region enclosing the ROIs, plus a 6 mm rim outside it (see
    :mod:`core.data.demo.cortex`). Each subject sees the template cortex through its own smooth
    warp, so ROI sizes and positions, and the maps inside them, differ between subjects.

Planted model
    Every target's noiseless response mixes two parts, each standardised over images:

    ``signal = sqrt(1 - u) * tuned + sqrt(u) * unnamed``

    - ``tuned``: what the target's area is tuned to, with per-target tuning that varies smoothly
      over the cortex (Gaussian random fields a few mm wide) around the area's mean tuning. Areas
      blend into each other over ~2 mm at their borders, and targets between the ROIs in the
      general mask respond to a smooth, weak mixture of everything:

      * V1, V2, V3 (``low_level``): a population receptive field per target (eccentricity and
        polar angle from the retinotopic maps; size grows with eccentricity and from V1 to V3)
        responding to the luminance, the (compressed) contrast and the colour within it; each
        target prefers a hue direction (a smooth hue map over the cortex).
      * OFA, FFA (``faces``): people, saturating in their number (1 - exp(-drive / k)), where
        the drive sums each person's apparent size weighted by what they do (waving most).
      * EBA (``bodies``): the same form with stronger action modulation (kicking, riding).
      * OPA, PPA, RSC (``places``): environment (each target's preference among outdoor,
        indoor, street), openness (visible sky) and layout (the share of navigable ground).
      * IPS (``numerosity``): tuned to the number of animals on a compressed (log) scale, with a
        preferred numerosity that grows along IPS (a numerotopic map), plus a weak monotonic
        response to the number of things.
      * LOC (``objects``; a patch the demo constructs between V3, OFA and EBA, see
        :mod:`core.data.demo.cortex`): the largest thing in the picture, by its drawn size
        times a Gaussian tuning (SD :data:`OBJECT_TUNING_SD`) to where it sits, around a
        preferred position in the contralateral half of the image that varies smoothly over
        the patch, plus a weak response to its size alone; residualised against everything the
        paper's 10 instructions ask about (colour, environment, counts, actions, foods). None
        of the paper's 10 asks about it; the pool's "where is the largest object" prompts do.
        Its random fields come from a second generator (``[seed, 22]``), so every other
        area's draws are those of a world without it.

    - ``unnamed``: image properties no instruction asks about (texture, clutter, object and
      people positions, horizon detail, left-right luminance; residualised against everything
      the instructions ask about; see :mod:`core.data.demo.drives`), and in V1-V3 the fine
      texture inside the pRF. Its share ``u`` is a smooth field around 0.3-0.45, so no
      instruction can reach the noise ceiling.

    The signal is scaled by the target's true ncsnr (NSD-like: about 0.45-0.6 in the ROIs, 0.35
    between them, a smooth field across cortex); most of the rim outside the mask is pure noise.
    Trials add unit-variance Gaussian noise: 3 repetitions per test image, mixed 3/2/1 for train
    images (as in NSD subjects with missing sessions); each target is z-scored over its trials
    (one session), the repetitions are averaged, and ncsnr is estimated from the trials the NSD
    way. The test images' single repeats are kept (``SubjectData.test_repeats``), for the
    noise-ceiling analog of representational similarity.

Ground truth (``truth.npz`` per subject, :func:`simulate_subject`)
    Per target: planted ncsnr, driver (the dominant group or ``mixed``/``none``), the driver
    weights (membership in each group), the unnamed share, pRF eccentricity, polar angle, size
    and visual-field position, preferred hue, preferred numerosity, preferred environment.

Worlds (negative controls; :data:`WORLDS`)
    ``planted`` is the model above. Two controls keep the same stimuli, targets, SNR map, noise
    draws and repetition structure (the random stream is consumed identically) and change only
    the signal:

    - ``null``: the signal of every target to image ``i`` is the planted signal to another,
      independently drawn image (a derangement of the stimulus ids, the same for every target
      and every subject; see :func:`core.data.demo.build.null_signal_source`). Responses keep
      their realistic spatial structure, within-subject noise ceiling and agreement between
      subjects, but nothing in them follows the image shown. The truth records no driver
      (``none``), zero driver weights, an unnamed share of 1 and no preferences.
    - ``uniform``: every target in every area gets the same noiseless signal: the same mixture
      (:data:`UNIFORM_MIX`) of the five groups' retinotopy-free mean tunings (the drives the
      planted model uses between the areas) and the same read-out of the unnamed drives, with
      the same unnamed share (:data:`UNIFORM_UNNAMED_SHARE`); areas differ only in SNR and
      noise, so any instruction's advantage is the same everywhere. The truth records driver
      ``mixed`` and the same driver weights for every signal target, no pRFs.

    Both keep ``planted_world_driver``: the driver the planted world of the same seed plants at
    each target (a reference for chance levels, not planted here), and a 0-d ``world`` array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import RoiFamily, SubjectData, TargetGeometry, TargetSet
from core.data.demo import cortex as cx
from core.data.demo.content import ACTIONS, ENVIRONMENTS
from core.data.demo.drives import CHANNELS, UNNAMED, PrfBank, SceneDrives
from core.data.noise_ceiling import ncsnr_from_trials

SURFACE = cx.SURFACE

#: ROI families of the demo, mirroring NSD's files (name -> {label value: ROI name}).
DEMO_ROI_FAMILIES: dict[str, dict[int, str]] = {
    "visual": {1: "V1", 2: "V2", 3: "V3"},
    "faces": {1: "OFA", 2: "FFA"},
    "bodies": {1: "EBA"},
    "places": {1: "OPA", 2: "PPA", 3: "RSC"},
    "parietal": {1: "IPS"},
    "objects": {1: "LOC"},
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
    "LOC": "objects",
}
GROUPS = ("low_level", "faces", "bodies", "places", "numerosity", "objects")
DRIVER_GROUPS = ("none", *GROUPS, "mixed")
#: The instruction(s) whose answer names what each group is tuned to.
GROUP_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "low_level": ("IU1",),
    "faces": ("VQ2",),
    "bodies": ("VQ2",),
    "places": ("CR", "SR"),
    "numerosity": ("IU3",),
    # none of the paper's 10 asks where and how large the largest thing is; these pool prompts
    # do: every prompt whose answer names where the largest thing sits (answer keys largest,
    # largest_quarter, largest_side, largest_half; the first three also name its size)
    "objects": (
        "pool:object-localization:0",
        "pool:object-localization:2",
        "pool:grounded-generation:0",
        "pool:grounded-matching:0",
        "pool:grounded-matching:2",
        "pool:grounded-matching:3",
    ),
}

#: What a group's planted pool prompts ask, for tables (paper ids are shown as they are).
POOL_GROUP_ASKS: dict[str, str] = {"objects": "where the largest thing is"}


def planted_label(group: str) -> str:
    """How a driver group's planted instructions read in a table: the paper ids joined by "/"
    ("CR/SR"), or for pool prompts their number and what they ask ("6 pool prompts: where the
    largest thing is"); "" for a group with none."""
    ids = GROUP_INSTRUCTIONS.get(group, ())
    if not any(i.startswith("pool:") for i in ids):
        return "/".join(ids)
    return f"{len(ids)} pool prompts: {POOL_GROUP_ASKS[group]}"


#: True ncsnr at the centre of each group's ROIs, between them (mixed) and in the rim.
SNR = {
    "low_level": 0.62,
    "faces": 0.5,
    "bodies": 0.52,
    "places": 0.5,
    "numerosity": 0.46,
    "objects": 0.5,
    "mixed": 0.36,
    "rim": 0.12,
}
#: Mean share of the explainable variance that follows unnamed content, per group.
UNNAMED_SHARE = {
    "low_level": 0.38,
    "faces": 0.36,
    "bodies": 0.36,
    "places": 0.36,
    "numerosity": 0.36,
    "objects": 0.36,
    "mixed": 0.5,
}
#: Spatial variation of the unnamed share (SD) and its scale (flat units, Gaussian SD).
UNNAMED_SD = 0.14
UNNAMED_WIDTH = 6.0
#: pRF size (degrees) = slope * eccentricity + intercept, for V1, V2, V3.
PRF_SLOPE = (0.12, 0.18, 0.28)
PRF_INTERCEPT = (0.2, 0.3, 0.45)
#: Mean action gains of the face and body areas (order of :data:`ACTIONS`).
FACE_GAINS = {
    "standing": 0.4,
    "walking": 0.7,
    "waving": 2.0,
    "sitting on a chair": 0.4,
    "kicking a ball": 1.3,
    "riding a bicycle": 1.0,
}
BODY_GAINS = {
    "standing": 0.3,
    "walking": 1.0,
    "waving": 1.0,
    "sitting on a chair": 0.3,
    "kicking a ball": 2.0,
    "riding a bicycle": 1.8,
}
#: Saturation constants of the face and body areas (in units of summed apparent size).
FACE_K = 1.5
BODY_K = 1.5
#: Mean read-out of the unnamed drives per group (:data:`~core.data.demo.drives.UNNAMED`
#: order: texture, clutter, items_x, people_x, animals_x, horizon_detail, luminance_lr);
#: horizontal positions are read contralaterally (sign flipped in the right hemisphere).
UNNAMED_WEIGHTS = {
    "low_level": (0.6, 0.3, 0.3, 0.0, 0.0, 0.0, -0.6),
    "faces": (0.0, 0.0, 0.3, 1.0, 0.0, 0.0, -0.3),
    "bodies": (0.0, 0.3, 0.3, 1.0, 0.0, 0.0, 0.0),
    "places": (0.4, 0.4, 0.0, 0.0, 0.0, 1.0, -0.3),
    "numerosity": (0.0, 0.3, 0.5, 0.0, 1.0, 0.0, 0.0),
    "objects": (0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0),
    "mixed": (0.3, 0.3, 0.3, 0.3, 0.3, 0.3, -0.3),
}
_LATERAL = (2, 3, 4, 6)  # unnamed drives whose sign follows the hemisphere
#: Mean environment preference of place areas (outdoor, indoor, street).
PLACE_ENV = (1.0, -0.6, 0.3)
#: Width (image half-widths) of the object area's position tuning, and the weight of its
#: position-free response to the largest thing's size.
OBJECT_TUNING_SD = 0.7
OBJECT_SIZE_GAIN = 0.3
#: Share of the rim (outside the general mask) that is pure noise.
RIM_NOISE = 0.85
#: Spatial scales (flat units ~ mm, Gaussian SD) of the tuning fields and the SNR field.
TUNING_WIDTH = 4.0
SNR_WIDTH = 6.0
#: Spatial spread of the trial noise (flat units ~ mm, Gaussian SD; the BOLD point-spread).
NOISE_SPREAD = 0.8

#: The worlds :func:`simulate_subject` can simulate (see the module docstring).
WORLDS = ("planted", "null", "uniform")
#: The uniform world's tuning: the weight of each group's mean tuning (order of :data:`GROUPS`),
#: the same at every target.
UNIFORM_MIX = (1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6)
#: The uniform world's share of the signal that follows unnamed content, at every target.
UNIFORM_UNNAMED_SHARE = 0.4


@dataclass
class PlantedInputs:
    """Everything a subject's responses are computed from, one row per image."""

    scenes: SceneDrives
    bank: PrfBank

    def subset(self, rows: np.ndarray) -> PlantedInputs:
        return PlantedInputs(self.scenes.subset(rows), self.bank.subset(rows))


def _z(a: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Standardise each column (float32; one pass for the variance, no large temporaries)."""
    a = np.asarray(a, dtype=np.float32)
    if not inplace or not a.flags.writeable:
        a = a.copy()
    n = a.shape[0]
    a -= a.mean(0)
    sd = np.sqrt(np.einsum("ij,ij->j", a, a) / n) if a.ndim == 2 else np.sqrt((a * a).mean())
    a *= np.where(sd > 1e-9, 1.0 / np.maximum(sd, 1e-9), 1.0).astype(np.float32)
    return a


@dataclass
class _Targets:
    """The targets of one subject and where they sit in the template."""

    hemi: np.ndarray
    vertex: np.ndarray
    xy: np.ndarray  # the subject's own flat coordinates
    warped: np.ndarray  # where they look into the template
    roi: np.ndarray  # ROI name per target ("" when none)
    general: np.ndarray
    member: np.ndarray  # (n_targets, n_groups) smooth membership of each group
    ecc: np.ndarray
    angle: np.ndarray
    area: np.ndarray
    ips_pos: np.ndarray


def _sample_targets(rng: np.random.Generator, density: float) -> _Targets:
    parts = []
    for hemi in cx.template():
        idx = np.flatnonzero(hemi.reach)
        idx = idx[rng.random(idx.size) < density]
        xy = hemi.coords[idx]
        warped = cx.subject_warp(hemi, xy, rng)
        j = cx.lookup(hemi, warped)
        keep = hemi.candidate[j]
        idx, j, xy, warped = idx[keep], j[keep], xy[keep], warped[keep]
        names = np.array(("",) + cx.ROI_NAMES)[hemi.roi[j]]
        member = np.stack(
            [hemi.raster.sample(cx.membership(hemi.index, _group_rois(g)), warped) for g in GROUPS],
            1,
        )
        parts.append(
            _Targets(
                hemi=np.full(j.size, hemi.index, np.int8),
                vertex=idx.astype(np.int32),
                xy=xy,
                warped=warped,
                roi=names,
                general=hemi.general[j],
                member=np.clip(member, 0.0, 1.0),
                ecc=hemi.ecc_fill[j],
                angle=hemi.angle_fill[j],
                area=hemi.area_fill[j],
                ips_pos=hemi.ips_position(warped),
            )
        )
    return _Targets(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in _Targets.__annotations__)
    )


def _group_rois(group: str) -> tuple[str, ...]:
    return tuple(r for r, g in PLANTED_DRIVERS.items() if g == group)


class _Fields:
    """Smooth random fields of one subject, sampled at its targets (native coordinates)."""

    def __init__(self, targets: _Targets, rng: np.random.Generator) -> None:
        self.t = targets
        self.rng = rng

    def __call__(self, width: float = TUNING_WIDTH) -> np.ndarray:
        out = np.zeros(self.t.hemi.size)
        for hemi in cx.template():
            sel = self.t.hemi == hemi.index
            out[sel] = cx.smooth_field(hemi, self.rng, width).at(self.t.xy[sel])
        return out


def _spread_noise(noise: np.ndarray, t: _Targets) -> np.ndarray:
    """Spatially correlated trial noise (the BOLD point-spread): each target's noise is a
    Gaussian-weighted average (SD :data:`NOISE_SPREAD` mm) of independent noise at the targets
    within 3 SDs, scaled back to unit variance.

    Parameters
    ----------
    noise : array of shape (n_targets, n_trials)
        Independent unit-variance noise.

    Returns
    -------
    spread : array of shape (n_targets, n_trials), float32
    """
    from scipy import sparse
    from scipy.spatial import cKDTree

    rows, cols, vals = [], [], []
    for h in (0, 1):
        sel = np.flatnonzero(t.hemi == h)
        if sel.size == 0:
            continue
        pairs = cKDTree(t.xy[sel]).sparse_distance_matrix(
            cKDTree(t.xy[sel]), 3 * NOISE_SPREAD, output_type="coo_matrix"
        )
        rows.append(sel[pairs.row])
        cols.append(sel[pairs.col])
        vals.append(np.exp(-(pairs.data**2) / (2 * NOISE_SPREAD**2)))
        rows.append(sel)  # the distance matrix leaves out the zero diagonal
        cols.append(sel)
        vals.append(np.ones(sel.size))
    n = t.hemi.size
    a = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    norm = np.sqrt(np.asarray(a.multiply(a).sum(1)).ravel())
    a = sparse.diags(1.0 / norm) @ a
    return np.asarray(a.astype(np.float32) @ noise, dtype=np.float32)


def _saturating(drive: np.ndarray, k: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-drive / k[None, :])


def _tuned_responses(
    inputs: PlantedInputs,
    t: _Targets,
    field: _Fields,
    rng: np.random.Generator,
    object_field: _Fields,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each group's response at the targets that belong to it (membership > 0.02), and the
    planted preferences (``object_field`` draws the object area's fields)."""
    n_t = t.hemi.size
    sc = inputs.scenes
    out: dict[str, np.ndarray] = {}
    prefs = {
        "prf_ecc": np.full(n_t, np.nan, np.float32),
        "prf_angle": np.full(n_t, np.nan, np.float32),
        "prf_size": np.full(n_t, np.nan, np.float32),
        "prf_x": np.full(n_t, np.nan, np.float32),
        "prf_y": np.full(n_t, np.nan, np.float32),
        "hue_pref": np.full(n_t, np.nan, np.float32),
        "numerosity_pref": np.full(n_t, np.nan, np.float32),
        "environment_pref": np.full(n_t, -1, np.int8),
        "object_x_pref": np.full(n_t, np.nan, np.float32),
        "object_y_pref": np.full(n_t, np.nan, np.float32),
    }
    # fields are drawn for every target (the draws do not depend on membership)
    hue = np.arctan2(field(3.0), field(3.0))
    w_col = np.exp(0.25 * field())
    w_lum = 0.6 * np.exp(0.3 * field())
    w_con = 0.5 * np.exp(0.3 * field())
    size_jit = np.exp(0.08 * field())
    k_face = FACE_K * np.exp(0.2 * field())
    k_body = BODY_K * np.exp(0.2 * field())
    act_dirs = rng.standard_normal((2, len(ACTIONS)))
    act_f = np.stack([field(), field()], 1)
    env_dirs = rng.standard_normal((2, len(ENVIRONMENTS)))
    env_f = np.stack([field(), field()], 1)
    w_open = 0.4 * np.exp(0.3 * field())
    w_ground = 0.2 * field(6.0)
    num_jit = field(6.0)

    sel = np.flatnonzero(t.member[:, GROUPS.index("low_level")] > 0.02)
    if sel.size:
        area = t.area[sel]
        ecc = t.ecc[sel]
        sigma = (np.take(PRF_SLOPE, area) * ecc + np.take(PRF_INTERCEPT, area)) * size_jit[sel]
        side = np.where(t.hemi[sel] == 0, 1.0, -1.0)  # lh maps the right hemifield
        x = side * ecc * np.cos(t.angle[sel])
        y = ecc * np.sin(t.angle[sel])
        d = inputs.bank.sample(x, y, sigma)  # (n_img, channel, n_sel)
        c = {name: d[:, k] for k, name in enumerate(CHANNELS)}
        h = hue[sel]
        colour = (
            np.maximum(np.cos(h), 0) * c["red"]
            + np.maximum(-np.cos(h), 0) * c["green"]
            + np.maximum(np.sin(h), 0) * c["blue"]
            + np.maximum(-np.sin(h), 0) * c["yellow"]
        )
        out["low_level"] = (
            w_col[sel] * _z(colour)
            + w_lum[sel] * _z(c["luminance"])
            + w_con[sel] * _z(np.sqrt(np.maximum(c["contrast"], 0)))
        )
        out["prf_texture"] = _z(c["texture"])
        out["_low_level_sel"] = sel
        for key, val in (
            ("prf_ecc", ecc),
            ("prf_angle", t.angle[sel]),
            ("prf_size", sigma),
            ("prf_x", x),
            ("prf_y", y),
            ("hue_pref", np.mod(h, 2 * np.pi)),
        ):
            prefs[key][sel] = val
    for group, base, k in (("faces", FACE_GAINS, k_face), ("bodies", BODY_GAINS, k_body)):
        sel = np.flatnonzero(t.member[:, GROUPS.index(group)] > 0.02)
        gains = np.array([base[a] for a in ACTIONS])[:, None] * np.exp(
            0.25 * (act_dirs.T @ act_f[sel].T)
        )
        drive = sc.action_size @ gains
        out[group] = _saturating(drive, k[sel])
        out[f"_{group}_sel"] = sel
    sel = np.flatnonzero(t.member[:, GROUPS.index("places")] > 0.02)
    env_w = np.array(PLACE_ENV)[:, None] + 0.5 * (env_dirs.T @ env_f[sel].T)
    out["places"] = (
        sc.environment @ env_w
        + w_open[sel] * sc.openness[:, None]
        + w_ground[sel] * sc.ground[:, None]
    )
    out["_places_sel"] = sel
    prefs["environment_pref"][sel] = np.argmax(env_w, 0)
    sel = np.flatnonzero(t.member[:, GROUPS.index("numerosity")] > 0.02)
    # numerotopic map: preferred numerosity from about 1 (posterior) to 4 (anterior)
    log_pref = (
        np.log1p(1.0) + t.ips_pos[sel] * (np.log1p(4.0) - np.log1p(1.0)) + 0.15 * num_jit[sel]
    )
    lnum = np.log1p(sc.n_animals)[:, None]
    out["numerosity"] = (
        np.exp(-((lnum - log_pref[None, :]) ** 2) / (2 * 0.35**2))
        + 0.2 * np.log1p(sc.n_things)[:, None]
    )
    out["_numerosity_sel"] = sel
    prefs["numerosity_pref"][sel] = np.expm1(log_pref)
    # objects: the largest thing's size, tuned to where it sits (contralateral preference)
    side = np.where(t.hemi == 0, 1.0, -1.0)  # lh maps the right half of the image
    x_pref = side * np.clip(0.55 + 0.3 * object_field(6.0), 0.0, 1.0)
    y_pref = np.clip(0.5 * object_field(6.0), -1.0, 1.0)
    sel = np.flatnonzero(t.member[:, GROUPS.index("objects")] > 0.02)
    d2 = (sc.largest_x[:, None] - x_pref[None, sel]) ** 2
    d2 = d2 + (sc.largest_y[:, None] - y_pref[None, sel]) ** 2
    resp = sc.largest_size[:, None] * (np.exp(-d2 / (2 * OBJECT_TUNING_SD**2)) + OBJECT_SIZE_GAIN)
    out["objects"] = _residual(resp, sc.named)
    out["_objects_sel"] = sel
    prefs["object_x_pref"][sel] = x_pref[sel]
    prefs["object_y_pref"][sel] = y_pref[sel]
    return out, prefs


def _residual(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    """``y`` (n_images, n) minus its least-squares fit on ``design`` (n_images, k)."""
    q, _ = np.linalg.qr(np.asarray(design, np.float64))
    y = np.asarray(y, np.float64)
    return y - q @ (q.T @ y)


def group_features(inputs: PlantedInputs) -> dict[str, np.ndarray]:
    """Each group's planted drives as a small design matrix (for sanity checks: the planted
    group of an ROI predicts it better than the other groups do).

    Returns
    -------
    groups : dict of str to array of shape (n_images, n_features)
        ``low_level``: luminance, contrast and colour drives of pRFs (1 degree) on a 3 x 3 grid
        over the image; ``faces`` and ``bodies``: the saturating people drive with the face or
        body action gains at three saturation constants; ``places``: environment, openness,
        ground; ``numerosity``: log-Gaussian tuning curves to 1-4 animals and log things;
        ``objects``: the largest thing's size, alone and in each quarter of the image.
    """
    sc = inputs.scenes
    pos = np.array([-2.5, 0.0, 2.5])
    gx, gy = np.meshgrid(pos, pos)
    d = inputs.bank.sample(gx.ravel(), gy.ravel(), np.ones(gx.size))
    chans = [CHANNELS.index(c) for c in ("luminance", "contrast", "red", "green", "blue", "yellow")]
    out = {"low_level": d[:, chans].reshape(d.shape[0], -1)}
    for group, gains in (("faces", FACE_GAINS), ("bodies", BODY_GAINS)):
        drive = sc.action_size @ np.array([gains[a] for a in ACTIONS])
        out[group] = np.stack([1 - np.exp(-drive / k) for k in (0.75, 1.5, 3.0)], 1)
    out["places"] = np.hstack([sc.environment, sc.openness[:, None], sc.ground[:, None]])
    lnum = np.log1p(sc.n_animals)[:, None]
    prefs = np.log1p(np.arange(1, 5))[None, :]
    out["numerosity"] = np.hstack(
        [np.exp(-((lnum - prefs) ** 2) / (2 * 0.35**2)), np.log1p(sc.n_things)[:, None]]
    )
    quarters = []
    for qx in (-1.0, 1.0):
        for qy in (-1.0, 1.0):
            near = (np.sign(sc.largest_x) == qx) & (np.sign(sc.largest_y) == qy)
            quarters.append(sc.largest_size * near)
    out["objects"] = np.stack([sc.largest_size, *quarters], 1)
    return {k: _z(v).astype(np.float64) for k, v in out.items()}


def simulate_subject(
    subject: str,
    stimulus_ids: np.ndarray,
    is_test: np.ndarray,
    inputs: PlantedInputs,
    density: float,
    seed: int,
    world: str = "planted",
) -> tuple[SubjectData, dict[str, np.ndarray]]:
    """Simulate one subject's responses.

    Parameters
    ----------
    subject : str
    stimulus_ids : array of shape (n_images,)
    is_test : array of shape (n_images,), bool
    inputs : PlantedInputs
        Drives of exactly these images (same order). For the ``null`` world the caller passes
        the drives of *other* images (see :func:`core.data.demo.build.null_signal_source`).
    density : float
        Fraction of candidate vertices that become targets.
    seed : int
    world : {"planted", "null", "uniform"}
        Which world (see the module docstring). ``planted`` gives exactly the planted model;
        the others record their world in the subject's content digest.

    Returns
    -------
    data : SubjectData
    truth : dict of arrays, one value per target (see the module docstring), plus the 0-d
        ``world`` and ``planted_world_driver`` for the control worlds

    Raises
    ------
    ValueError
        For an unknown world.
    """
    if world not in WORLDS:
        raise ValueError(f"unknown demo world {world!r}; expected one of {WORLDS}")
    rng = np.random.default_rng(seed)
    t = _sample_targets(rng, density)
    field = _Fields(t, rng)
    n_t = t.hemi.size
    n_img = stimulus_ids.size
    sc = inputs.scenes

    # who drives each target: smooth group memberships, the rest is a mixture (or noise)
    member = t.member
    rest = np.clip(1.0 - member.sum(1), 0.0, 1.0)
    total = member.sum(1) + rest
    weights = np.hstack([member, rest[:, None]]) / np.maximum(total, 1e-9)[:, None]
    rim = ~t.general
    rim_field = field(5.0)
    noise = rim & (rim_field < np.quantile(rim_field[rim], RIM_NOISE) if rim.any() else False)
    driver = np.where(
        weights[:, :-1].max(1) >= 0.5, 1 + weights[:, :-1].argmax(1), DRIVER_GROUPS.index("mixed")
    ).astype(np.int8)
    driver[noise] = DRIVER_GROUPS.index("none")

    # true ncsnr: group levels blended by membership, a smooth field on top; weak in the rim
    levels = np.array([SNR[g] for g in GROUPS] + [SNR["mixed"]])
    snr = (weights @ levels) * np.exp(0.25 * field(SNR_WIDTH))
    snr[rim] = SNR["rim"] * np.exp(0.25 * field(SNR_WIDTH))[rim]
    snr[noise] = 0.0
    shares = np.array([UNNAMED_SHARE[g] for g in GROUPS] + [UNNAMED_SHARE["mixed"]])
    unnamed_share = np.clip((weights @ shares) + UNNAMED_SD * field(UNNAMED_WIDTH), 0.1, 0.8)

    object_field = _Fields(t, np.random.default_rng([seed, 22]))
    tuned, prefs = _tuned_responses(inputs, t, field, rng, object_field)
    signal = np.zeros((n_img, n_t), np.float32)
    for g, group in enumerate(GROUPS):
        sel = tuned[f"_{group}_sel"]
        signal[:, sel] += weights[sel, g].astype(np.float32)[None, :] * _z(tuned[group], True)
    # between areas: a smooth mixture of every group's mean tuning
    mix_w = np.stack(
        [np.exp(0.8 * field(8.0)) for _ in GROUPS[:-1]] + [np.exp(0.8 * object_field(8.0))], 1
    )
    mix_w /= mix_w.sum(1, keepdims=True)
    central = inputs.bank.sample(np.zeros(1), np.zeros(1), np.full(1, 2.5))[:, :, 0]
    face_gain = np.array([FACE_GAINS[a] for a in ACTIONS])[:, None]
    body_gain = np.array([BODY_GAINS[a] for a in ACTIONS])[:, None]
    red, green = CHANNELS.index("red"), CHANNELS.index("green")
    mean_group = np.stack(
        [
            _z(_z(central[:, 0]) + _z(central[:, red] - central[:, green])),
            _z(_saturating(sc.action_size @ face_gain, np.full(1, FACE_K))[:, 0]),
            _z(_saturating(sc.action_size @ body_gain, np.full(1, BODY_K))[:, 0]),
            _z(sc.environment @ np.array(PLACE_ENV) + 0.5 * sc.openness),
            _z(np.log1p(sc.n_animals) + 0.3 * np.log1p(sc.n_things)),
            _z(_residual(sc.largest_size[:, None], sc.named)[:, 0]),
        ],
        1,
    )
    mixed = mean_group @ mix_w.T.astype(np.float32)
    signal += weights[:, -1].astype(np.float32)[None, :] * _z(mixed, True)
    if world == "uniform":  # the same retinotopy-free mixture at every target
        shared = _z(mean_group @ np.asarray(UNIFORM_MIX, np.float32))
        signal = np.repeat(shared[:, None].astype(np.float32), n_t, axis=1)

    # content no instruction names: smooth per-target read-outs of the unnamed drives
    side = np.where(t.hemi == 0, 1.0, -1.0)
    base = weights @ np.array([UNNAMED_WEIGHTS[g] for g in (*GROUPS, "mixed")])
    base[:, list(_LATERAL)] *= side[:, None]
    dirs = rng.standard_normal((3, len(UNNAMED)))
    u_w = base + 0.3 * np.stack([field() for _ in range(3)], 1) @ dirs
    unnamed = _z(sc.unnamed.astype(np.float32) @ u_w.T.astype(np.float32), True)
    low = tuned["_low_level_sel"]
    texture = 1.2 * weights[low, 0].astype(np.float32)[None, :] * tuned["prf_texture"]
    unnamed[:, low] = _z(unnamed[:, low] + texture, True)
    if world == "uniform":  # the same read-out everywhere (no hemifield, no pRF texture)
        u_shared = _z(sc.unnamed.astype(np.float32) @ np.asarray(UNNAMED_WEIGHTS["mixed"]))
        unnamed = np.repeat(u_shared[:, None].astype(np.float32), n_t, axis=1)
        unnamed_share = np.full(n_t, UNIFORM_UNNAMED_SHARE)

    share = unnamed_share.astype(np.float32)[None, :]
    signal = _z(signal, True)
    signal *= np.sqrt(1.0 - share)
    unnamed *= np.sqrt(share)
    signal += unnamed
    del unnamed
    signal = _z(signal, True)

    # repetitions: test images 3 each; train images mostly 3, some 2 or 1 (missing sessions)
    n_rep = np.where(is_test, 3, rng.choice([3, 2, 1], size=n_img, p=[0.9, 0.07, 0.03]))
    image_index = np.repeat(np.arange(n_img), n_rep)
    # trials are built target-major (n_targets, n_trials): every per-target step is contiguous
    trials_t = np.ascontiguousarray(signal.T)
    del signal
    trials_t = np.take(trials_t, image_index, axis=1)
    trials_t *= snr.astype(np.float32)[:, None]
    trials_t += _spread_noise(rng.standard_normal(trials_t.shape, dtype=np.float32), t)
    trials_t -= trials_t.mean(1, keepdims=True)  # z-scored over the session
    sd = np.sqrt(np.einsum("ij,ij->i", trials_t, trials_t) / trials_t.shape[1])
    trials_t *= (1.0 / np.maximum(sd, 1e-9)).astype(np.float32)[:, None]
    ncsnr = ncsnr_from_trials(trials_t.T, image_index)
    order_starts = np.concatenate([[0], np.cumsum(n_rep)[:-1]])
    sums = np.add.reduceat(trials_t, order_starts, axis=1)
    # the test images' single repeats (3 each), kept for the RSA noise ceiling
    test_rows = np.flatnonzero(is_test)
    cols = order_starts[test_rows][None, :] + np.arange(3)[:, None]  # (3, n_test)
    test_repeats = np.ascontiguousarray(trials_t[:, cols].transpose(1, 2, 0), dtype=np.float32)
    del trials_t
    responses = np.ascontiguousarray((sums / n_rep[None, :]).T, dtype=np.float32)

    families = {}
    for fam, names in DEMO_ROI_FAMILIES.items():
        labels = np.zeros(n_t, np.int16)
        for value, name in names.items():
            labels[t.roi == name] = value
        families[fam] = RoiFamily(name=fam, labels=labels, names=dict(names))
    targets = TargetSet(
        roi_families=families,
        general_mask=t.general,
        ncsnr=ncsnr,
        geometry=TargetGeometry(surface=SURFACE, hemi=t.hemi, vertex=t.vertex),
    )
    data = SubjectData(
        subject=subject,
        stimulus_ids=stimulus_ids.astype(np.int64),
        responses=responses,
        n_repeats=n_rep.astype(np.int16),
        is_test=is_test.astype(bool),
        targets=targets,
        test_repeats=test_repeats,
    )
    truth = {
        "planted_ncsnr": snr.astype(np.float32),
        "driver": driver,
        "driver_weights": weights.astype(np.float32),
        "unnamed_share": unnamed_share.astype(np.float32),
        **prefs,
    }
    if world != "planted":
        truth = _control_truth(truth, world)
        data.content_digest = world_digest(data.digest(), world)
    return data, truth


def world_digest(digest: str, world: str) -> str:
    """A control world's subject content key: the content digest with the world folded in (the
    planted world keeps its plain digest, so existing artifacts stay valid).

    Parameters
    ----------
    digest : str
        :meth:`~core.data.dataset.SubjectData.digest` of the simulated arrays.
    world : str

    Returns
    -------
    digest : str
        24 hex characters.
    """
    from core.hashing import array_digest

    if world == "planted":
        return digest
    return array_digest(np.frombuffer(f"{digest}|world={world}".encode(), dtype=np.uint8))[:24]


def _control_truth(truth: dict[str, np.ndarray], world: str) -> dict[str, np.ndarray]:
    """What a control world planted (see the module docstring), keeping the planted world's
    driver map of the same seed as ``planted_world_driver``."""
    n_t = truth["driver"].size
    noise = truth["driver"] == DRIVER_GROUPS.index("none")
    out = dict(truth)
    out["planted_world_driver"] = truth["driver"].copy()
    for key in ("prf_ecc", "prf_angle", "prf_size", "prf_x", "prf_y", "hue_pref",
                "numerosity_pref", "object_x_pref", "object_y_pref"):  # fmt: skip
        out[key] = np.full(n_t, np.nan, np.float32)
    if world == "null":
        out["driver"] = np.zeros(n_t, np.int8)  # "none": nothing follows the image shown
        out["driver_weights"] = np.zeros_like(truth["driver_weights"])
        out["unnamed_share"] = np.ones(n_t, np.float32)
        out["environment_pref"] = np.full(n_t, -1, np.int8)
    else:  # uniform
        driver = np.full(n_t, DRIVER_GROUPS.index("mixed"), np.int8)
        driver[noise] = DRIVER_GROUPS.index("none")
        out["driver"] = driver
        w = np.zeros_like(truth["driver_weights"])
        w[:, : len(GROUPS)] = np.asarray(UNIFORM_MIX, np.float32)
        out["driver_weights"] = w
        out["unnamed_share"] = np.full(n_t, UNIFORM_UNNAMED_SHARE, np.float32)
        env = np.full(n_t, int(np.argmax(PLACE_ENV)), np.int8)
        env[noise] = -1
        out["environment_pref"] = env
    out["world"] = np.array(world)
    return out
