"""What the planted model responds to: per-image drives computed from the rendered pictures and
the scenes' known content.

Pixel grid (:func:`pixel_grid`)
    Each 256 x 256 image is cut into a 32 x 32 grid of cells (0.26 degrees each: the image spans
    8.4 degrees of visual angle, as NSD's images do). Per cell: mean luminance, RMS luminance
    contrast, fine texture energy (luminance minus its 3 x 3 pixel mean) and four half-wave
    rectified colour-opponent channels (red, green, blue, yellow). Computed at build time from
    the pictures (and again by :func:`pixel_grids` for any analysis that needs them).

Population receptive fields (:class:`PrfBank`)
    Gaussian pRFs on a lattice of positions (every 0.5 degrees over +-7.5 degrees) and sizes
    (0.2 to 2.9 degrees); the drive of each lattice pRF is its Gaussian-weighted sum of each
    channel (the screen outside the image is mid grey: no contrast, no colour). A target's pRF
    interpolates the lattice (trilinear in x, y and log size). Separable Gaussians make this
    cheap.

Scene-level drives (:func:`scene_drives`)
    - people: per action, the summed apparent size of the people doing it (people lower in the
      picture are drawn larger), and the people's mean horizontal position;
    - places: environment (one-hot), openness (square root of the visible-sky fraction),
      navigable ground (fraction of floor, road or ground), horizon height;
    - numerosity: number of animals, number of things;
    - objects: the largest thing's drawn size and where it is (see
      :func:`~core.data.demo.content.largest_item`; none of the paper's 10 instructions asks
      about it, the pool's object-localization and grounding prompts do);
    - content no instruction names (``unnamed``): texture, clutter, object positions, layout
      detail (see :data:`UNNAMED`), each residualised against every property some instruction
      asks about (colour, environment, counts, actions, foods, horizon) and standardised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from core.data.demo.content import (
    ACTIONS,
    COLOUR_NAMES,
    DENSE_ID,
    ENVIRONMENTS,
    GRID,
    SceneContent,
    apparent_size,
    largest_item,
)

#: Cells per side of the pixel grid.
PIX = 32
#: Visual angle spanned by the image (degrees).
FIELD_DEG = 8.4
CELL_DEG = FIELD_DEG / PIX
#: Pixel-grid channels.
CHANNELS = ("luminance", "contrast", "texture", "red", "green", "blue", "yellow")
#: Value of each channel on the grey screen around the image.
_BACKGROUND = np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], np.float32)
#: Lattice of pRF positions (degrees) and sizes (degrees, log-spaced).
LATTICE_STEP = 0.5
LATTICE_MAX = 7.5
LATTICE_SIZES = np.exp(np.linspace(np.log(0.2), np.log(2.9), 6))

#: Content no instruction asks about (names of :attr:`SceneDrives.unnamed` columns).
UNNAMED = (
    "texture",  # fine texture energy over the image
    "clutter",  # share of high-contrast cells
    "items_x",  # mean horizontal position of the things in the scene
    "people_x",  # mean horizontal position of the people (0 without people)
    "animals_x",  # mean horizontal position of the animals (0 without animals)
    "horizon_detail",  # horizon height within its environment and dominant surface
    "luminance_lr",  # luminance of the left half minus the right half
)
# (vertical positions are not here: "What is the foreground ... background?" asks about them)


def pixel_grid(image: Image.Image) -> np.ndarray:
    """The 32 x 32 pixel-grid statistics of one image.

    Returns
    -------
    grid : array of shape (7, 32, 32), float32
        Channels :data:`CHANNELS`; row 0 is the top of the image.
    """
    a = np.asarray(image.convert("RGB"), dtype=np.float32) * np.float32(1 / 255)
    if a.shape[0] % PIX or a.shape[1] % PIX:
        raise ValueError(f"image side {a.shape[:2]} is not a multiple of {PIX}")
    lum = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    rg = a[..., 0] - a[..., 1]
    by = a[..., 2] - 0.5 * (a[..., 0] + a[..., 1])
    fine = np.abs(lum - ndimage.uniform_filter(lum, 3))
    c = a.shape[0] // PIX

    def cell(x: np.ndarray) -> np.ndarray:
        return x.reshape(PIX, c, -1).sum(1).reshape(PIX, PIX, c).sum(2) * np.float32(1 / c**2)

    mean = cell(lum)
    return np.stack(
        [
            mean,
            np.sqrt(np.maximum(cell(lum * lum) - mean**2, 0.0)),
            cell(fine),
            cell(np.maximum(rg, 0)),
            cell(np.maximum(-rg, 0)),
            cell(np.maximum(by, 0)),
            cell(np.maximum(-by, 0)),
        ]
    ).astype(np.float32)


def pixel_grids(load_image, ids) -> np.ndarray:
    """:func:`pixel_grid` of many images; ``load_image(id)`` returns a PIL image.

    Returns
    -------
    grids : array of shape (n_images, 7, 32, 32), float32
    """
    return np.stack([pixel_grid(load_image(int(i))) for i in ids])


def cell_centres() -> tuple[np.ndarray, np.ndarray]:
    """Visual-field coordinates (degrees) of the grid's columns (x, rightwards) and rows (y,
    upwards)."""
    x = (np.arange(PIX) + 0.5 - PIX / 2) * CELL_DEG
    return x, -x


class PrfBank:
    """The drives of a lattice of Gaussian pRFs over a set of images.

    Parameters
    ----------
    grids : array of shape (n_images, 7, 32, 32)
        From :func:`pixel_grid`.
    """

    def __init__(self, grids: np.ndarray) -> None:
        self.pos = np.arange(-LATTICE_MAX, LATTICE_MAX + 1e-9, LATTICE_STEP)
        self.sizes = LATTICE_SIZES
        xs, ys = cell_centres()
        g = grids.astype(np.float32) - _BACKGROUND[None, :, None, None]
        n_pos, n_size = self.pos.size, self.sizes.size
        # drives[i, channel, size, y, x]
        out = np.zeros((grids.shape[0], len(CHANNELS), n_size, n_pos, n_pos), np.float32)
        for s, sigma in enumerate(self.sizes):
            gx = np.exp(-((xs[None, :] - self.pos[:, None]) ** 2) / (2 * sigma**2))
            gy = np.exp(-((ys[None, :] - self.pos[:, None]) ** 2) / (2 * sigma**2))
            norm = 2 * np.pi * sigma**2 / CELL_DEG**2  # the whole Gaussian's weight, in cells
            gx = (gx / np.sqrt(norm)).astype(np.float32)
            gy = (gy / np.sqrt(norm)).astype(np.float32)
            # separable: first along the columns (x), then along the rows (y), as two matmuls
            tmp = (g.reshape(-1, PIX) @ gx.T).reshape(g.shape[0], g.shape[1], PIX, n_pos)
            tmp = np.ascontiguousarray(tmp.transpose(2, 0, 1, 3)).reshape(PIX, -1)
            rows = (gy @ tmp).reshape(n_pos, g.shape[0], g.shape[1], n_pos)
            out[:, :, s] = rows.transpose(1, 2, 0, 3)
        #: (n_lattice, n_images, n_channels), lattice index = (size * n_pos + y) * n_pos + x
        self.lattice = np.ascontiguousarray(
            out.reshape(out.shape[0], len(CHANNELS), -1).transpose(2, 0, 1)
        )

    def subset(self, rows: np.ndarray) -> PrfBank:
        """The bank of some of the images."""
        bank = PrfBank.__new__(PrfBank)
        bank.pos, bank.sizes = self.pos, self.sizes
        bank.lattice = np.ascontiguousarray(self.lattice[:, rows])
        return bank

    def sample(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Drives of pRFs at (x, y) with size sigma (degrees), interpolated on the lattice.

        Returns
        -------
        drives : array of shape (n_images, 7, n_prfs), float32
        """
        from scipy import sparse

        n_pos, n_size = self.pos.size, self.sizes.size
        x, y, sigma = np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(sigma)
        fx = np.clip((x + LATTICE_MAX) / LATTICE_STEP, 0, n_pos - 1 - 1e-6)
        fy = np.clip((y + LATTICE_MAX) / LATTICE_STEP, 0, n_pos - 1 - 1e-6)
        ls = np.log(self.sizes)
        fs = np.clip((np.log(sigma) - ls[0]) / (ls[1] - ls[0]), 0, n_size - 1 - 1e-6)
        ix, iy, js = fx.astype(int), fy.astype(int), fs.astype(int)
        tx, ty, ts = fx - ix, fy - iy, fs - js
        rows, vals = [], []
        for ds, ws in ((0, 1 - ts), (1, ts)):
            for dy, wy in ((0, 1 - ty), (1, ty)):
                for dx, wx in ((0, 1 - tx), (1, tx)):
                    rows.append(((js + ds) * n_pos + iy + dy) * n_pos + ix + dx)
                    vals.append(ws * wy * wx)
        n = x.size
        cols = np.tile(np.arange(n), 8)
        w = sparse.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (cols, np.concatenate(rows))),
            shape=(n, n_size * n_pos * n_pos),
        )
        n_img = self.lattice.shape[1]
        out = np.asarray(w @ self.lattice.reshape(self.lattice.shape[0], -1), dtype=np.float32)
        return np.ascontiguousarray(out.reshape(n, n_img, len(CHANNELS)).transpose(1, 2, 0))


@dataclass
class SceneDrives:
    """Scene-level drives of a set of images (one row each).

    Attributes
    ----------
    action_size : array of shape (n_images, n_actions)
        Summed apparent size of the people doing each action of :data:`ACTIONS`.
    people_x : array of shape (n_images,)
        Mean horizontal position of the people (-1 left .. 1 right; 0 without people).
    environment : array of shape (n_images, 3)
        One-hot of :data:`ENVIRONMENTS`.
    openness, ground, horizon : arrays of shape (n_images,)
    n_animals, n_things : arrays of shape (n_images,)
    unnamed : array of shape (n_images, len(UNNAMED))
        Standardised, residualised against the named properties.
    colour : array of shape (n_images, n_colours)
        One-hot dominant colour (for the residualisation and sanity checks).
    largest_size : array of shape (n_images,)
        Drawn size of the largest thing (:func:`~core.data.demo.content.apparent_size`, as a
        fraction of a cell; 0 in an empty scene).
    largest_x, largest_y : arrays of shape (n_images,)
        Its position: -1 left .. 1 right, -1 bottom .. 1 top (0 in an empty scene).
    named : array of shape (n_images, n_named)
        :func:`named_design`: what the paper's instructions ask about (to residualise against).
    """

    action_size: np.ndarray
    people_x: np.ndarray
    environment: np.ndarray
    openness: np.ndarray
    ground: np.ndarray
    horizon: np.ndarray
    n_animals: np.ndarray
    n_things: np.ndarray
    unnamed: np.ndarray
    colour: np.ndarray
    largest_size: np.ndarray
    largest_x: np.ndarray
    largest_y: np.ndarray
    named: np.ndarray

    def subset(self, rows: np.ndarray) -> SceneDrives:
        return SceneDrives(**{k: v[rows] for k, v in self.__dict__.items()})


def _mean_position(items: list[dict], kinds: set[str] | None, axis: str) -> float:
    vals = [it[axis] for it in items if kinds is None or it["kind"] in kinds]
    if not vals:
        return 0.0
    return (float(np.mean(vals)) - (GRID - 1) / 2) / ((GRID - 1) / 2)


def named_design(attributes: pd.DataFrame) -> np.ndarray:
    """The properties some instruction asks about, as a design matrix (for residualising): the
    dominant colour and which surface carries it, the environment, the counts of people, animals,
    things and foods, and what the people do. (No instruction asks for the horizon's height.)"""
    cols = [
        np.stack([(attributes["dominant_colour"] == c).to_numpy() for c in COLOUR_NAMES], 1),
        np.stack([(attributes["environment"] == e).to_numpy() for e in ENVIRONMENTS], 1),
        (attributes["dominant_region"].isin(["sky", "wall", "building"])).to_numpy()[:, None],
        attributes[["n_people", "n_animals", "n_objects"]].to_numpy(float),
        np.stack([attributes[f"action__{a}"].to_numpy(float) for a in ACTIONS], 1),
        attributes["foods"].str.split().str.len().fillna(0).to_numpy(float)[:, None],
        np.ones((len(attributes), 1)),
    ]
    return np.hstack([np.asarray(c, np.float64) for c in cols])


def _residualise(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    r = y - design @ coef
    sd = r.std(0)
    return r / np.where(sd > 0, sd, 1.0)


def scene_drives(
    attributes: pd.DataFrame, contents: list[dict], dense: np.ndarray, grids: np.ndarray
) -> SceneDrives:
    """Scene-level drives of a set of images.

    Parameters
    ----------
    attributes : DataFrame, one row per image
        The stored attributes table (columns environment, dominant_colour, dominant_region,
        horizon, n_people, n_animals, n_objects, foods, action__<name>).
    contents : list of dict
        Each image's :meth:`SceneContent.to_dict`.
    dense : array of shape (n_images, 16, 16)
        Dense class labels.
    grids : array of shape (n_images, 7, 32, 32)
        Pixel grids.
    """
    n = len(attributes)
    sizes = np.zeros((n, len(ACTIONS)))
    people_x = np.zeros(n)
    unnamed = np.zeros((n, len(UNNAMED)))
    actions = list(ACTIONS)
    for i, c in enumerate(contents):
        items = c["items"]
        for it in items:
            if it["kind"] == "person":
                sizes[i, actions.index(it["action"])] += 0.78 + 0.07 * it["row"]
        people_x[i] = _mean_position(items, {"person"}, "col")
        unnamed[i, 2] = _mean_position(items, None, "col")
        unnamed[i, 3] = people_x[i]
        unnamed[i, 4] = _mean_position(items, {"cat", "dog", "bird"}, "col")
    tex = grids[:, CHANNELS.index("texture")]
    con = grids[:, CHANNELS.index("contrast")]
    lum = grids[:, CHANNELS.index("luminance")]
    unnamed[:, 0] = tex.mean((1, 2))
    unnamed[:, 1] = (con > 0.08).mean((1, 2))
    unnamed[:, 6] = lum[:, :, : PIX // 2].mean((1, 2)) - lum[:, :, PIX // 2 :].mean((1, 2))
    env = np.stack([(attributes["environment"] == e).to_numpy() for e in ENVIRONMENTS], 1)
    horizon = attributes["horizon"].to_numpy(float)
    key = attributes["environment"].astype(str) + attributes["dominant_region"].astype(str)
    unnamed[:, 5] = horizon - pd.Series(horizon).groupby(key.to_numpy()).transform("mean").values
    design = named_design(attributes)
    sky = (dense == DENSE_ID["sky"]).mean((1, 2))
    ground = np.isin(dense, [DENSE_ID["floor"], DENSE_ID["road"], DENSE_ID["ground"]]).mean((1, 2))
    colour = np.stack([(attributes["dominant_colour"] == c).to_numpy() for c in COLOUR_NAMES], 1)
    largest = np.zeros((n, 3))
    for i, c in enumerate(contents):
        item = largest_item(SceneContent.from_dict(c))
        if item is not None:
            half = (GRID - 1) / 2
            largest[i] = (apparent_size(item), (item.col - half) / half, (half - item.row) / half)
    return SceneDrives(
        action_size=sizes,
        people_x=people_x,
        environment=env.astype(np.float64),
        openness=np.sqrt(sky),
        ground=ground,
        horizon=horizon,
        n_animals=attributes["n_animals"].to_numpy(float),
        n_things=attributes["n_objects"].to_numpy(float),
        unnamed=_residualise(unnamed, design),
        colour=colour.astype(np.float64),
        largest_size=largest[:, 0],
        largest_x=largest[:, 1],
        largest_y=largest[:, 2],
        named=design,
    )
