"""Drawing a demo scene: an RGB picture and its dense label map, from :class:`SceneContent`.

Rendering is a pure function of the content (its ``style_seed`` drives small visual variations),
so a scene can be redrawn at any time. Shapes are drawn at twice the output size and downsampled
for smooth edges; every primitive is drawn into the RGB canvas and, with its class id, into a
label canvas, which gives the dense ground truth of what occupies each region.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from core.data.demo.content import COLOURS, DENSE_ID, GRID, Item, SceneContent

#: Output side length of the stimulus images (pixels).
IMAGE_SIZE = 256
#: Side length of the stored dense label grid.
LABEL_GRID = 16

_SCALE = 2  # supersampling factor
_LABEL_DIV = 4  # label canvas = drawing canvas / 4


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * factor, 0, 255)) for v in rgb)  # type: ignore[return-value]


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


class Painter:
    """Draws each primitive into an RGB canvas and a class-id label canvas at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rgb = Image.new("RGB", (size, size))
        self.lab = Image.new("L", (size // _LABEL_DIV, size // _LABEL_DIV))
        self._d = ImageDraw.Draw(self.rgb)
        self._l = ImageDraw.Draw(self.lab)

    def _lbox(self, box):
        return [v / _LABEL_DIV for v in box]

    def rect(self, box, fill, cls: str | None) -> None:
        self._d.rectangle(box, fill=fill)
        if cls:
            self._l.rectangle(self._lbox(box), fill=DENSE_ID[cls])

    def ellipse(self, box, fill, cls: str | None) -> None:
        self._d.ellipse(box, fill=fill)
        if cls:
            self._l.ellipse(self._lbox(box), fill=DENSE_ID[cls])

    def polygon(self, pts, fill, cls: str | None) -> None:
        self._d.polygon(pts, fill=fill)
        if cls:
            self._l.polygon([(x / _LABEL_DIV, y / _LABEL_DIV) for x, y in pts], fill=DENSE_ID[cls])

    def line(self, pts, fill, width: int, cls: str | None) -> None:
        self._d.line(pts, fill=fill, width=width)
        if cls:
            lp = [(x / _LABEL_DIV, y / _LABEL_DIV) for x, y in pts]
            self._l.line(lp, fill=DENSE_ID[cls], width=max(1, width // _LABEL_DIV))


# ---- backgrounds ----------------------------------------------------------------------------


def _gradient_rect(p: Painter, y0: float, y1: float, top, bottom, cls: str) -> None:
    steps = 24
    h = (y1 - y0) / steps
    for k in range(steps):
        c = _mix(top, bottom, k / max(steps - 1, 1))
        p.rect([0, y0 + k * h, p.size, y0 + (k + 1) * h + 1], c, cls)


def _outdoor(p: Painter, sc: SceneContent, rng: np.random.Generator) -> None:
    s = p.size
    hy = sc.horizon * s
    sky = COLOURS[sc.dominant_colour if sc.dominant_region == "sky" else sc.other_colour]
    ground = COLOURS[sc.dominant_colour if sc.dominant_region == "ground" else sc.other_colour]
    _gradient_rect(p, 0, hy, _shade(sky, 0.92), _shade(sky, 1.06), "sky")
    # distant hills on the horizon
    for _ in range(3):
        cx = rng.uniform(0, s)
        w = rng.uniform(0.25, 0.5) * s
        hgt = rng.uniform(0.03, 0.07) * s
        p.ellipse([cx - w, hy - hgt, cx + w, hy + hgt], _shade(ground, 0.82), "mountain")
    _gradient_rect(p, hy, s, _shade(ground, 1.04), _shade(ground, 0.9), "ground")
    # a few small background trees along the horizon
    for _ in range(int(rng.integers(1, 4))):
        tx = rng.uniform(0.05, 0.95) * s
        th = rng.uniform(0.05, 0.08) * s
        p.rect([tx - 0.006 * s, hy - th * 0.4, tx + 0.006 * s, hy + 0.01 * s], (92, 62, 36), "tree")
        p.ellipse(
            [tx - th * 0.45, hy - th * 1.1, tx + th * 0.45, hy - th * 0.25], (40, 110, 48), "tree"
        )
    if sc.dominant_colour in ("blue", "grey") and sc.dominant_region == "sky":
        for _ in range(int(rng.integers(0, 3))):  # clouds
            cx, cy = rng.uniform(0.1, 0.9) * s, rng.uniform(0.05, 0.2) * s
            for dx in (-0.04, 0.0, 0.04):
                r = 0.035 * s
                p.ellipse(
                    [cx + dx * s - r, cy - r, cx + dx * s + r, cy + r * 0.8],
                    _shade(sky, 1.15),
                    "sky",
                )


def _indoor(p: Painter, sc: SceneContent, rng: np.random.Generator) -> None:
    s = p.size
    hy = sc.horizon * s
    wall = COLOURS[sc.dominant_colour]
    floor = COLOURS[sc.other_colour]
    _gradient_rect(p, 0, hy, _shade(wall, 1.05), _shade(wall, 0.95), "wall")
    _gradient_rect(p, hy, s, _shade(floor, 1.0), _shade(floor, 0.85), "floor")
    p.rect([0, hy - 0.012 * s, s, hy + 0.004 * s], _shade(floor, 0.7), "floor")  # skirting
    # a small window high on the wall showing the sky
    wx = rng.uniform(0.08, 0.72) * s
    ww, wh = 0.2 * s, 0.14 * s
    p.rect([wx - 4, 0.05 * s - 4, wx + ww + 4, 0.05 * s + wh + 4], (245, 245, 240), "window")
    p.rect([wx, 0.05 * s, wx + ww, 0.05 * s + wh], (150, 200, 240), "window")
    p.line([(wx + ww / 2, 0.05 * s), (wx + ww / 2, 0.05 * s + wh)], (245, 245, 240), 5, "window")


def _street(p: Painter, sc: SceneContent, rng: np.random.Generator) -> None:
    s = p.size
    hy = sc.horizon * s
    facade = COLOURS[sc.dominant_colour]
    _gradient_rect(p, 0, 0.14 * s, (150, 190, 230), (185, 210, 235), "sky")
    x = 0.0
    while x < s:
        w = rng.uniform(0.22, 0.34) * s
        top = rng.uniform(0.0, 0.1) * s
        shade = _shade(facade, rng.uniform(0.9, 1.08))
        p.rect([x, top, x + w, hy], shade, "building")
        for wy in np.arange(top + 0.04 * s, hy - 0.06 * s, 0.085 * s):
            for wxx in np.arange(x + 0.03 * s, x + w - 0.05 * s, 0.08 * s):
                p.rect([wxx, wy, wxx + 0.028 * s, wy + 0.035 * s], (70, 80, 95), "building")
        x += w
    p.rect([0, hy, s, hy + 0.05 * s], (180, 178, 170), "road")  # pavement
    _gradient_rect(p, hy + 0.05 * s, s, (96, 96, 100), (80, 80, 84), "road")
    for lx in np.arange(0.05, 1.0, 0.2):
        p.rect([lx * s, 0.9 * s, (lx + 0.08) * s, 0.915 * s], (235, 235, 225), "road")


# ---- objects ---------------------------------------------------------------------------------


def _cell_box(item: Item, size: int) -> tuple[float, float, float, float]:
    cell = size / GRID
    # objects further up (further away) are drawn smaller, anchored at the cell bottom
    scale = 0.78 + 0.07 * item.row
    w = cell * scale
    x0 = item.col * cell + (cell - w) / 2
    y1 = (item.row + 1) * cell - 0.04 * cell
    return x0, y1 - w, x0 + w, y1


def _person(p: Painter, box, item: Item) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    skin = (236, 196, 160) if item.colour[0] % 2 else (150, 104, 72)
    shirt = item.colour
    trousers = (40, 50, 90)
    sitting = item.action == "sitting on a chair"
    riding = item.action == "riding a bicycle"
    if sitting:
        _chair(p, (x0 + 0.1 * w, y0 + 0.35 * h, x1 - 0.1 * w, y1))
    if riding:
        _bicycle(p, (x0, y0 + 0.45 * h, x1, y1))
    head_r = 0.1 * w
    top = y0 + (0.22 * h if (sitting or riding) else 0.05 * h)
    body_top = top + 2 * head_r
    body_bot = body_top + 0.33 * h
    leg_w = max(4, int(0.06 * w))
    p.ellipse([cx - head_r, top, cx + head_r, top + 2 * head_r], skin, "person")
    p.polygon(
        [
            (cx - 0.13 * w, body_top),
            (cx + 0.13 * w, body_top),
            (cx + 0.1 * w, body_bot),
            (cx - 0.1 * w, body_bot),
        ],
        shirt,
        "person",
    )
    if sitting or riding:
        p.line(
            [(cx - 0.06 * w, body_bot), (cx + 0.16 * w, body_bot + 0.02 * h)],
            trousers,
            leg_w,
            "person",
        )
        p.line(
            [(cx + 0.16 * w, body_bot), (cx + 0.16 * w, y1 - 0.12 * h)], trousers, leg_w, "person"
        )
    elif item.action == "walking" or item.action == "kicking a ball":
        p.line(
            [(cx - 0.04 * w, body_bot), (cx - 0.16 * w, y1 - 0.02 * h)], trousers, leg_w, "person"
        )
        kick = 0.26 if item.action == "kicking a ball" else 0.14
        p.line(
            [(cx + 0.04 * w, body_bot), (cx + kick * w, y1 - 0.06 * h)], trousers, leg_w, "person"
        )
    else:
        p.line(
            [(cx - 0.05 * w, body_bot), (cx - 0.07 * w, y1 - 0.02 * h)], trousers, leg_w, "person"
        )
        p.line(
            [(cx + 0.05 * w, body_bot), (cx + 0.07 * w, y1 - 0.02 * h)], trousers, leg_w, "person"
        )
    arm_y = body_top + 0.04 * h
    if item.action == "waving":
        p.line([(cx + 0.12 * w, arm_y), (cx + 0.26 * w, top - 0.02 * h)], skin, leg_w - 1, "person")
        p.line([(cx - 0.12 * w, arm_y), (cx - 0.2 * w, body_bot)], skin, leg_w - 1, "person")
    else:
        p.line([(cx + 0.12 * w, arm_y), (cx + 0.2 * w, body_bot)], skin, leg_w - 1, "person")
        p.line([(cx - 0.12 * w, arm_y), (cx - 0.2 * w, body_bot)], skin, leg_w - 1, "person")
    if item.action == "kicking a ball":
        _ball(p, (cx + 0.22 * w, y1 - 0.26 * h, cx + 0.46 * w, y1 - 0.02 * h))


def _chair(p: Painter, box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    wood = (150, 96, 52)
    p.rect([x0 + 0.1 * w, y0, x0 + 0.22 * w, y1], wood, "chair")  # back post
    p.rect([x0 + 0.1 * w, y0 + 0.5 * h, x1 - 0.1 * w, y0 + 0.6 * h], wood, "chair")  # seat
    p.rect([x1 - 0.22 * w, y0 + 0.5 * h, x1 - 0.1 * w, y1], wood, "chair")  # front leg


def _ball(p: Painter, box) -> None:
    x0, y0, x1, y1 = box
    p.ellipse(box, (240, 240, 240), "ball")
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    p.ellipse([cx - r * 0.35, cy - r * 0.35, cx + r * 0.35, cy + r * 0.35], (30, 30, 30), "ball")


def _bicycle(p: Painter, box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    r = 0.22 * w
    frame = (200, 30, 30)
    for cx in (x0 + 0.25 * w, x1 - 0.25 * w):
        cy = y1 - r
        p.ellipse([cx - r, cy - r, cx + r, cy + r], (30, 30, 30), "bicycle")
        hub = [cx - r * 0.75, cy - r * 0.75, cx + r * 0.75, cy + r * 0.75]
        p.ellipse(hub, (200, 200, 200), None)  # spokes area: still labelled 'bicycle'
    cy = y1 - r
    p.line(
        [(x0 + 0.25 * w, cy), (x0 + 0.5 * w, y0 + 0.2 * h), (x1 - 0.25 * w, cy)],
        frame,
        7,
        "bicycle",
    )


def _animal(p: Painter, box, item: Item) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if item.with_object == "chair":
        _chair(p, (x0, y0 + 0.25 * h, x1, y1))
        y1 = y0 + 0.58 * h  # sitting on the seat
    if item.with_object == "ball":
        _ball(p, (x1 - 0.3 * w, y1 - 0.28 * h, x1 - 0.02 * w, y1))
        x1 = x1 - 0.22 * w
        w = x1 - x0
    if item.kind == "bird":
        body = (60 + item.colour[0] // 3, 60 + item.colour[1] // 4, 160 + item.colour[2] // 4)
        cy = y0 + 0.45 * h
        p.ellipse([x0 + 0.25 * w, cy - 0.14 * h, x0 + 0.7 * w, cy + 0.14 * h], body, "bird")
        p.ellipse([x0 + 0.62 * w, cy - 0.2 * h, x0 + 0.8 * w, cy - 0.02 * h], body, "bird")
        p.polygon(
            [
                (x0 + 0.8 * w, cy - 0.13 * h),
                (x0 + 0.92 * w, cy - 0.1 * h),
                (x0 + 0.8 * w, cy - 0.06 * h),
            ],
            (240, 170, 30),
            "bird",
        )
        p.polygon(
            [
                (x0 + 0.35 * w, cy - 0.05 * h),
                (x0 + 0.55 * w, cy - 0.05 * h),
                (x0 + 0.42 * w, cy - 0.32 * h),
            ],
            _shade(body, 0.7),
            "bird",
        )
        return
    cat = item.kind == "cat"
    fur = (
        (90, 90, 95)
        if cat and item.colour[0] < 128
        else (226, 140, 60)
        if cat
        else (150, 110, 70)
        if item.colour[1] < 128
        else (60, 45, 35)
    )
    body_top = y1 - 0.45 * h
    p.ellipse([x0 + 0.12 * w, body_top, x0 + 0.78 * w, y1 - 0.15 * h], fur, item.kind)
    for lx in (0.2, 0.34, 0.56, 0.68):
        p.rect([x0 + lx * w, y1 - 0.25 * h, x0 + (lx + 0.07) * w, y1], fur, item.kind)
    hx0, hy0 = x0 + 0.62 * w, body_top - 0.22 * h
    hs = 0.3 * w
    p.ellipse([hx0, hy0, hx0 + hs, hy0 + hs], fur, item.kind)
    if cat:
        for ex in (0.05, 0.6):
            p.polygon(
                [
                    (hx0 + ex * hs, hy0 + 0.3 * hs),
                    (hx0 + (ex + 0.18) * hs, hy0 - 0.25 * hs),
                    (hx0 + (ex + 0.35) * hs, hy0 + 0.2 * hs),
                ],
                fur,
                "cat",
            )
        p.line(
            [(x0 + 0.14 * w, body_top + 0.1 * h), (x0 + 0.02 * w, body_top - 0.2 * h)],
            fur,
            7,
            "cat",
        )
    else:
        p.ellipse(
            [hx0 + 0.7 * hs, hy0 + 0.35 * hs, hx0 + 1.25 * hs, hy0 + 0.8 * hs], fur, "dog"
        )  # snout
        p.ellipse(
            [hx0 - 0.05 * hs, hy0 + 0.1 * hs, hx0 + 0.3 * hs, hy0 + 0.75 * hs],
            _shade(fur, 0.7),
            "dog",
        )  # ear
        p.line(
            [(x0 + 0.14 * w, body_top + 0.1 * h), (x0 + 0.0 * w, body_top - 0.05 * h)],
            fur,
            8,
            "dog",
        )
    p.ellipse(
        [hx0 + 0.55 * hs, hy0 + 0.3 * hs, hx0 + 0.68 * hs, hy0 + 0.43 * hs], (20, 20, 20), None
    )


def _food(p: Painter, box, kind: str) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    bx0, by0, bx1, by1 = x0 + 0.2 * w, y0 + 0.4 * h, x1 - 0.2 * w, y1 - 0.05 * h
    p.ellipse([x0 + 0.1 * w, y1 - 0.14 * h, x1 - 0.1 * w, y1], (250, 250, 250), None)  # plate
    if kind == "apple":
        p.ellipse([bx0, by0, bx1, by1], (210, 30, 40), "apple")
        p.line(
            [((bx0 + bx1) / 2, by0 + 4), ((bx0 + bx1) / 2 + 6, by0 - 0.1 * h)],
            (90, 60, 30),
            6,
            "apple",
        )
        p.ellipse(
            [(bx0 + bx1) / 2 + 4, by0 - 0.1 * h, (bx0 + bx1) / 2 + 0.18 * w, by0 - 0.02 * h],
            (60, 150, 50),
            "apple",
        )
    elif kind == "banana":
        p.polygon(
            [
                (bx0, by0 + 0.1 * h),
                (bx0 + 0.2 * w, by1 - 0.05 * h),
                (bx1, by1 - 0.1 * h),
                (bx1, by1),
                (bx0 + 0.1 * w, by1),
                (bx0 - 0.05 * w, by0 + 0.12 * h),
            ],
            (245, 215, 50),
            "banana",
        )
    elif kind == "pizza":
        p.polygon(
            [(bx0 - 0.05 * w, by0), (bx1 + 0.05 * w, by0), ((bx0 + bx1) / 2, by1)],
            (240, 190, 90),
            "pizza",
        )
        p.polygon(
            [(bx0, by0 + 0.03 * h), (bx1, by0 + 0.03 * h), ((bx0 + bx1) / 2, by1 - 0.06 * h)],
            (215, 70, 40),
            "pizza",
        )
        for dx, dy in ((0.35, 0.15), (0.6, 0.12), (0.5, 0.3)):
            cx, cy = bx0 + dx * (bx1 - bx0), by0 + dy * h
            p.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], (250, 240, 200), "pizza")
    elif kind == "cake":
        p.rect([bx0, by0 + 0.1 * h, bx1, by1], (120, 70, 40), "cake")
        p.rect([bx0, by0 + 0.1 * h, bx1, by0 + 0.2 * h], (250, 230, 240), "cake")
        cx = (bx0 + bx1) / 2
        p.rect([cx - 3, by0 - 0.06 * h, cx + 3, by0 + 0.1 * h], (80, 160, 230), "cake")
        p.ellipse([cx - 5, by0 - 0.13 * h, cx + 5, by0 - 0.05 * h], (255, 180, 30), "cake")


def _car(p: Painter, box, colour) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    p.rect([x0, y1 - 0.45 * h, x1, y1 - 0.15 * h], colour, "car")
    p.polygon(
        [
            (x0 + 0.2 * w, y1 - 0.45 * h),
            (x0 + 0.32 * w, y1 - 0.68 * h),
            (x1 - 0.3 * w, y1 - 0.68 * h),
            (x1 - 0.15 * w, y1 - 0.45 * h),
        ],
        colour,
        "car",
    )
    p.rect([x0 + 0.35 * w, y1 - 0.63 * h, x1 - 0.33 * w, y1 - 0.48 * h], (180, 215, 240), "car")
    for cx in (x0 + 0.24 * w, x1 - 0.24 * w):
        p.ellipse([cx - 0.1 * w, y1 - 0.26 * h, cx + 0.1 * w, y1 - 0.06 * h], (25, 25, 25), "car")


def _draw_item(p: Painter, item: Item) -> None:
    box = _cell_box(item, p.size)
    if item.kind == "person":
        _person(p, box, item)
    elif item.kind in ("cat", "dog", "bird"):
        _animal(p, box, item)
    elif item.kind in ("apple", "banana", "pizza", "cake"):
        _food(p, box, item.kind)
    elif item.kind == "ball":
        x0, y0, x1, y1 = box
        w = x1 - x0
        _ball(p, (x0 + 0.3 * w, y1 - 0.4 * w, x1 - 0.3 * w, y1))
    elif item.kind == "chair":
        _chair(p, box)
    elif item.kind == "bicycle":
        x0, y0, x1, y1 = box
        _bicycle(p, (x0, y0 + 0.4 * (y1 - y0), x1, y1))
    elif item.kind == "car":
        _car(p, box, item.colour)
    else:  # pragma: no cover - content and renderer share one vocabulary
        raise ValueError(f"cannot draw {item.kind!r}")


_BACKGROUNDS = {"outdoor": _outdoor, "indoor": _indoor, "street": _street}


def render(content: SceneContent, size: int = IMAGE_SIZE) -> tuple[Image.Image, np.ndarray]:
    """Draw a scene.

    Parameters
    ----------
    content : SceneContent
    size : int
        Output side length in pixels.

    Returns
    -------
    image : PIL.Image.Image
        RGB image of shape (size, size).
    labels : array of shape (LABEL_GRID, LABEL_GRID), uint8
        Dense labels: the class id (:data:`~core.data.demo.content.DENSE_CLASSES`) occupying the
        centre of each region of a LABEL_GRID x LABEL_GRID grid.
    """
    rng = np.random.default_rng(content.style_seed)
    p = Painter(size * _SCALE)
    _BACKGROUNDS[content.environment](p, content, rng)
    for item in sorted(content.items, key=lambda i: (i.row, i.col)):
        _draw_item(p, item)
    image = p.rgb.resize((size, size), Image.Resampling.LANCZOS)
    lab = np.asarray(p.lab)
    step = lab.shape[0] / LABEL_GRID
    centres = (np.arange(LABEL_GRID) * step + step / 2).astype(int)
    labels = lab[np.ix_(centres, centres)].astype(np.uint8)
    return image, labels


def colour_fractions(image: Image.Image) -> dict[str, float]:
    """Fraction of pixels nearest to each named colour (on a 64 x 64 thumbnail).

    Returns
    -------
    fractions : dict of str to float
        Keys are :data:`~core.data.demo.content.COLOURS` names; values sum to 1.
    """
    small = np.asarray(
        image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32
    )
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    d = ((small.reshape(-1, 1, 3) - palette[None]) ** 2).sum(-1)
    counts = np.bincount(d.argmin(1), minlength=len(palette)) / d.shape[0]
    return dict(zip(COLOURS, counts.tolist(), strict=True))
