"""One colour per instruction (and per model) in every chart, map and export.

The paper's 10 instructions keep fixed colours in :data:`~core.models.instructions.PAPER_IDS`
order, the image-only row is grey, and any other name (a pool or free-text instruction, a
model) takes the next palette colour in the order it is listed.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The palette (Okabe-Ito-like, colour-blind safe first), RGB in [0, 1].
PALETTE: list[tuple[float, float, float]] = [
    (0.902, 0.624, 0.0),
    (0.337, 0.706, 0.914),
    (0.0, 0.620, 0.451),
    (0.941, 0.894, 0.259),
    (0.0, 0.447, 0.698),
    (0.835, 0.369, 0.0),
    (0.800, 0.475, 0.655),
    (0.4, 0.4, 0.4),
    (0.549, 0.337, 0.294),
    (0.090, 0.745, 0.812),
    (0.737, 0.741, 0.133),
    (0.580, 0.404, 0.741),
]
#: The image-only row of baselines.
IMAGE_GREY = (0.62, 0.62, 0.62)


def named_colours(names: Sequence[str]) -> list[tuple[float, float, float]]:
    """The colour of each name (RGB in [0, 1]), the same wherever the name is drawn.

    Parameters
    ----------
    names : sequence of str
        Instruction ids (paper ids keep their own colour), ``"image"``, or other labels.

    Returns
    -------
    colours : list of (r, g, b), one per name
    """
    from core.models.instructions import PAPER_IDS

    paper = list(PAPER_IDS)
    # other names avoid the paper's colours when paper instructions are drawn beside them
    start = len(paper) if any(n in paper for n in names) else 0
    out, k = [], 0
    for name in names:
        if name in paper:
            out.append(PALETTE[paper.index(name) % len(PALETTE)])
        elif name == "image":
            out.append(IMAGE_GREY)
        else:
            out.append(PALETTE[(start + k) % len(PALETTE)])
            k += 1
    return out


def hex_colour(rgb: tuple[float, float, float]) -> str:
    """``#rrggbb`` of an RGB triple in [0, 1]."""
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgb)
