"""Drawing complete demo scenes: content, picture, dense labels, attributes and reference answers.

Scenes come from numbered, independent random streams: stream ``"stimuli"`` gives the stimulus set,
stream ``"train"`` gives any number of further scenes for training the demo model (disjoint from the
stimuli by construction: a different seed sequence), stream ``"heldout"`` gives evaluation scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.data.demo.answers import answer
from core.data.demo.content import ACTIONS, SceneContent, sample_content
from core.data.demo.render import IMAGE_SIZE, colour_fractions, render

INSTRUCTION_IDS = ("IU1", "IU2", "IU3", "VQ1", "VQ2", "VQ3", "IC", "SR", "CR", "VR")
STREAMS = {"stimuli": 0, "train": 1, "heldout": 2}
#: The dominant colour must cover at least this fraction of the pixels (else the scene is redrawn).
MIN_DOMINANT_FRACTION = 0.35


@dataclass
class Scene:
    """One drawn scene.

    Attributes
    ----------
    content : SceneContent
    image : PIL.Image.Image, RGB (IMAGE_SIZE x IMAGE_SIZE)
    dense_labels : array of shape (16, 16), uint8
    dominant_fraction : float
        Measured fraction of pixels of the dominant colour.
    """

    content: SceneContent
    image: Image.Image
    dense_labels: np.ndarray
    dominant_fraction: float

    def answers(self) -> dict[str, str]:
        """Reference answer per instruction id."""
        return {i: answer(self.content, i) for i in INSTRUCTION_IDS}

    def attributes(self) -> dict:
        """Flat, structured ground truth (one table row)."""
        c = self.content
        people = c.people()
        row = {
            "environment": c.environment,
            "dominant_colour": c.dominant_colour,
            "dominant_region": c.dominant_region,
            "dominant_fraction": round(self.dominant_fraction, 4),
            "horizon": c.horizon,
            "n_people": len(people),
            "n_animals": len(c.animals()),
            "animals": " ".join(sorted(i.kind for i in c.animals())),
            "foods": " ".join(c.foods()),
            "objects": " ".join(sorted(c.objects())),
            "n_objects": len(c.items),
            "interactions": "; ".join(c.interactions()),
            "foreground": " ".join(sorted(i.kind for i in c.items if i.row >= 2)),
        }
        for a in ACTIONS:
            row[f"action__{a}"] = sum(p.action == a for p in people)
        return row


def draw_scene(seed: int, stream: str, index: int, size: int = IMAGE_SIZE) -> Scene:
    """Draw scene ``index`` of a stream, deterministically.

    Parameters
    ----------
    seed : int
        World seed.
    stream : {"stimuli", "train", "heldout"}
    index : int
    size : int
        Image side length in pixels.
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown scene stream {stream!r}; expected one of {tuple(STREAMS)}")
    rng = np.random.default_rng([seed, STREAMS[stream], index])
    for _ in range(50):
        content = sample_content(rng)
        image, labels = render(content, size)
        frac = colour_fractions(image)
        best = max(frac, key=frac.get)
        if best == content.dominant_colour and frac[best] >= MIN_DOMINANT_FRACTION:
            return Scene(content, image, labels, frac[best])
    raise RuntimeError(f"could not draw a scene with a clear dominant colour ({stream} {index})")


def low_level_features(image: Image.Image) -> np.ndarray:
    """Mean RGB (3, in 0..1) and the 4 x 4 luminance grid (16) of an image.

    Returns
    -------
    features : array of shape (19,), float32
    """
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    lum = np.asarray(image.convert("L").resize((4, 4), Image.Resampling.BOX), np.float32) / 255.0
    return np.concatenate([arr.reshape(-1, 3).mean(0), lum.ravel()]).astype(np.float32)


def content_from_json(text: str) -> SceneContent:
    """Inverse of ``json.dumps(content.to_dict())``."""
    import json

    return SceneContent.from_dict(json.loads(text))
