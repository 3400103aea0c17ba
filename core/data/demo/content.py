"""What a demo scene contains: the vocabulary of the simulated world and the content sampler.

A scene is a 4 x 4 grid of cells over a background (a natural outdoor field, an indoor room or an
urban street). Objects sit in cells: people (with an action, some of which involve an object),
animals (cats, dogs, birds), food items and stand-alone inanimate objects. The content covers what
each of the paper's 10 instructions asks about: dominant colour, food items, number of animals,
people and what they do, foreground vs background, natural outdoor vs indoor/urban, and
interactions between animate and inanimate objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

GRID = 4  # cells per side

ENVIRONMENTS = ("outdoor", "indoor", "street")

#: Named colours (RGB) used for the dominant-colour ground truth.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (196, 44, 40),
    "orange": (236, 136, 32),
    "yellow": (232, 206, 56),
    "green": (70, 158, 72),
    "blue": (62, 112, 206),
    "purple": (124, 62, 168),
    "pink": (232, 134, 178),
    "brown": (128, 84, 46),
    "grey": (128, 128, 132),
    "white": (236, 236, 232),
}
COLOUR_NAMES = tuple(COLOURS)

#: Which colours the dominant surface may take in each environment (sky or ground outdoors,
#: walls indoors, building facades in the street).
DOMINANT_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "outdoor": {
        "sky": ("blue", "orange", "pink", "grey", "purple"),
        "ground": ("green", "yellow", "white", "brown"),
    },
    "indoor": {"wall": COLOUR_NAMES},
    "street": {"building": COLOUR_NAMES},
}

ANIMALS = ("cat", "dog", "bird")
FOODS = ("apple", "banana", "pizza", "cake")
OBJECTS = ("ball", "chair", "bicycle", "car")  # stand-alone inanimate objects

#: People's actions; the value is the inanimate object the action involves (or None).
ACTIONS: dict[str, str | None] = {
    "standing": None,
    "walking": None,
    "waving": None,
    "sitting on a chair": "chair",
    "kicking a ball": "ball",
    "riding a bicycle": "bicycle",
}
#: Animal interactions with inanimate objects (animal kind -> (verb phrase, object)).
ANIMAL_INTERACTIONS: dict[str, tuple[str, str]] = {
    "dog": ("playing with a ball", "ball"),
    "cat": ("sitting on a chair", "chair"),
}

#: Class ids of the dense labels (what occupies each region of the image).
DENSE_CLASSES = (
    "sky",
    "ground",
    "wall",
    "floor",
    "building",
    "road",
    "window",
    "tree",
    "mountain",
    "person",
    "cat",
    "dog",
    "bird",
    "apple",
    "banana",
    "pizza",
    "cake",
    "ball",
    "chair",
    "bicycle",
    "car",
)
DENSE_ID = {name: i for i, name in enumerate(DENSE_CLASSES)}

#: Nominal size of each kind of thing (a car is bigger than a ball): the drawn size of a thing is
#: its nominal size times its depth scale (things lower in the picture are nearer and drawn larger,
#: see :func:`depth_scale`). All distinct, so "the largest object" ties only between equal kinds.
KIND_SIZE: dict[str, float] = {
    "car": 1.0,
    "person": 0.9,
    "bicycle": 0.85,
    "chair": 0.8,
    "dog": 0.75,
    "cat": 0.65,
    "cake": 0.55,
    "pizza": 0.5,
    "ball": 0.45,
    "banana": 0.42,
    "apple": 0.38,
    "bird": 0.35,
}
#: What each kind of thing is made of, and how its surface looks (materials and textures).
MATERIALS: dict[str, str] = {
    "person": "skin and cloth",
    "cat": "fur",
    "dog": "fur",
    "bird": "feathers",
    "apple": "fruit",
    "banana": "fruit",
    "pizza": "baked dough",
    "cake": "baked sponge",
    "ball": "rubber",
    "chair": "wood",
    "bicycle": "metal",
    "car": "metal and glass",
}
TEXTURES: dict[str, str] = {
    "person": "soft cloth",
    "cat": "soft fur",
    "dog": "rough fur",
    "bird": "fine feathers",
    "apple": "smooth and shiny",
    "banana": "smooth",
    "pizza": "crusty",
    "cake": "soft and creamy",
    "ball": "smooth rubber",
    "chair": "hard wood grain",
    "bicycle": "hard metal",
    "car": "shiny paint",
}

MAX_PEOPLE = 3
MAX_ANIMALS = 4
MAX_FOODS = 2
MAX_OBJECTS = 2


@dataclass
class Item:
    """One thing in a cell.

    Parameters
    ----------
    kind : str
        ``"person"``, an animal, a food or an object kind.
    row, col : int
        Cell position (row 0 is the top of the image).
    action : str or None
        For people: a key of :data:`ACTIONS`; for animals: an interaction phrase or None.
    with_object : str or None
        Inanimate object drawn with this item (the interaction partner).
    colour : tuple of int
        Main colour of the item (shirts, fur, car paint).
    """

    kind: str
    row: int
    col: int
    action: str | None = None
    with_object: str | None = None
    colour: tuple[int, int, int] = (0, 0, 0)

    @property
    def category(self) -> str:
        if self.kind == "person":
            return "person"
        if self.kind in ANIMALS:
            return "animal"
        if self.kind in FOODS:
            return "food"
        return "object"


@dataclass
class SceneContent:
    """Everything that determines a scene (rendering is a pure function of this)."""

    environment: str
    dominant_region: str
    dominant_colour: str
    horizon: float  # fraction of the image height where sky meets ground / wall meets floor
    other_colour: str  # colour of the secondary large surface
    items: list[Item] = field(default_factory=list)
    style_seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SceneContent:
        items = [Item(**{**i, "colour": tuple(i["colour"])}) for i in d["items"]]
        return cls(**{**d, "items": items})

    # ---- derived facts -------------------------------------------------------------------
    def people(self) -> list[Item]:
        return [i for i in self.items if i.kind == "person"]

    def animals(self) -> list[Item]:
        return [i for i in self.items if i.kind in ANIMALS]

    def foods(self) -> list[str]:
        return sorted({i.kind for i in self.items if i.kind in FOODS}, key=FOODS.index)

    def objects(self) -> list[str]:
        """Inanimate objects, stand-alone or interaction partners (with repeats)."""
        out = [i.kind for i in self.items if i.kind in OBJECTS]
        out += [i.with_object for i in self.items if i.with_object]
        return out

    def interactions(self) -> list[str]:
        """Sentences describing animate-inanimate interactions (repeats counted), in a canonical
        order that the picture determines: people first, then animals in :data:`ANIMALS` order,
        each by action name (never the order in which the items were sampled, which no image
        shows)."""
        kinds = ("person", *ANIMALS)
        pairs: list[tuple[str, str]] = []
        for i in self.items:
            if i.with_object and (i.kind == "person" or i.kind in ANIMALS):
                pairs.append((i.kind, i.action or ""))
        pairs.sort(key=lambda p: (kinds.index(p[0]), p[1]))
        counts = {p: pairs.count(p) for p in pairs}
        words = ("", "a", "two", "three", "four")
        plural = {"person": "people"}
        out = []
        for (kind, action), n in counts.items():
            if n == 1:
                out.append(f"a {kind} is {action}")
            else:
                out.append(f"{words[n]} {plural.get(kind, kind + 's')} are {action}")
        return out


def _free_cells(occupied: set[tuple[int, int]], rows: range) -> list[tuple[int, int]]:
    return [(r, c) for r in rows for c in range(GRID) if (r, c) not in occupied]


def sample_content(rng: np.random.Generator) -> SceneContent:
    """Draw the content of one scene.

    Parameters
    ----------
    rng : numpy Generator
        The only source of randomness (deterministic for a given state).

    Returns
    -------
    content : SceneContent
    """
    env = ENVIRONMENTS[rng.integers(len(ENVIRONMENTS))]
    regions = DOMINANT_CHOICES[env]
    region = list(regions)[rng.integers(len(regions))]
    colour = regions[region][rng.integers(len(regions[region]))]
    if env == "outdoor":
        other_region = "ground" if region == "sky" else "sky"
        other = DOMINANT_CHOICES["outdoor"][other_region]
        other_colour = other[rng.integers(len(other))]
        # the dominant region takes most of the picture
        horizon = rng.uniform(0.62, 0.72) if region == "sky" else rng.uniform(0.24, 0.32)
    elif env == "indoor":
        other_colour = ("brown", "grey")[rng.integers(2)]
        horizon = rng.uniform(0.66, 0.74)
    else:
        other_colour = "grey"
        horizon = rng.uniform(0.66, 0.72)
    if other_colour == colour:
        other_colour = "grey" if colour != "grey" else "brown"

    occupied: set[tuple[int, int]] = set()
    items: list[Item] = []

    def place(kind: str, rows: range, **kw) -> Item | None:
        free = _free_cells(occupied, rows)
        if not free:
            return None
        r, c = free[rng.integers(len(free))]
        occupied.add((r, c))
        shade = tuple(int(v) for v in rng.integers(40, 220, size=3))
        item = Item(kind=kind, row=r, col=c, colour=shade, **kw)
        items.append(item)
        return item

    ground_rows = range(1, GRID)
    n_people = int(rng.choice(np.arange(MAX_PEOPLE + 1), p=[0.4, 0.3, 0.2, 0.1]))
    for _ in range(n_people):
        actions = list(ACTIONS)
        if env == "indoor":
            actions.remove("riding a bicycle")
        action = actions[rng.integers(len(actions))]
        place("person", ground_rows, action=action, with_object=ACTIONS[action])
    n_animals = int(rng.integers(0, MAX_ANIMALS + 1))
    for _ in range(n_animals):
        kind = ANIMALS[rng.integers(len(ANIMALS))]
        rows = range(0, GRID) if kind == "bird" and env != "indoor" else ground_rows
        action, obj = None, None
        if kind in ANIMAL_INTERACTIONS and rng.random() < 0.3:
            action, obj = ANIMAL_INTERACTIONS[kind]
        place(kind, rows, action=action, with_object=obj)
    n_foods = int(rng.choice(np.arange(MAX_FOODS + 1), p=[0.45, 0.35, 0.2]))
    for kind in rng.permutation(FOODS)[:n_foods]:
        place(str(kind), ground_rows)
    n_objects = int(rng.integers(0, MAX_OBJECTS + 1))
    for _ in range(n_objects):
        choices = [o for o in OBJECTS if not (o == "car" and env != "street")]
        place(choices[rng.integers(len(choices))], ground_rows)
    return SceneContent(
        environment=env,
        dominant_region=region,
        dominant_colour=colour,
        horizon=float(horizon),
        other_colour=other_colour,
        items=items,
        style_seed=int(rng.integers(0, 2**31 - 1)),
    )


def depth_scale(row: int) -> float:
    """How large a thing in ``row`` is drawn, as a fraction of its cell (the renderer's scale)."""
    return 0.78 + 0.07 * row


def apparent_size(item: Item) -> float:
    """Drawn size of a thing: its nominal :data:`KIND_SIZE` times its :func:`depth_scale`."""
    return KIND_SIZE[item.kind] * depth_scale(item.row)


def largest_item(content: SceneContent) -> Item | None:
    """The thing drawn largest (:func:`apparent_size`; ties go to the lower, then the leftmost
    one); None in an empty scene."""
    if not content.items:
        return None
    return max(content.items, key=lambda i: (round(apparent_size(i), 6), i.row, -i.col))


def closest_item(content: SceneContent) -> Item | None:
    """The thing nearest the camera: the lowest in the picture (ties: the larger, then the
    leftmost); None in an empty scene."""
    if not content.items:
        return None
    return max(content.items, key=lambda i: (i.row, round(apparent_size(i), 6), -i.col))


def quarter(item: Item) -> str:
    """The image quarter holding a thing: ``"upper left"``, ``"lower right"``, ..."""
    return f"{'upper' if item.row < GRID // 2 else 'lower'} {'left' if item.col < GRID // 2 else 'right'}"
