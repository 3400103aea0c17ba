"""Reference answers of a demo scene for each of the paper's 10 instructions and every task of
the wider prompt pool.

The wording is templated and deterministic, so that the demo model can learn it and an evaluation
can parse it back (see :func:`parse_count`, :func:`parse_foods`). Instruction ids follow
science.md: IU1 IU2 IU3 VQ1 VQ2 VQ3 IC SR CR VR. The pool's prompts are answered through answer
keys (:data:`POOL_KEYS`; which prompt asks for which key is decided on the model side, in
:mod:`core.models.demo_vlm.tasks`): counts of each kind, positions and sizes (the largest and the
closest thing, what each quarter and corner holds, left and right), materials and textures,
activities (now, before, next), layout, caption matching, and truthful answers to the tasks the
demo world has nothing for (it has no written text and no disasters).
"""

from __future__ import annotations

from collections import Counter

from core.data.demo.content import (
    ANIMALS,
    FOODS,
    GRID,
    MATERIALS,
    OBJECTS,
    TEXTURES,
    Item,
    SceneContent,
    apparent_size,
    closest_item,
    largest_item,
    quarter,
)

#: Version of the reference answers' wording and order, recorded in a built demo's dataset.json:
#: a demo built with other answers is rebuilt (its images and subjects, and so every artifact
#: keyed by them, stay the same). 2: interactions and activities in a fixed order (they followed
#: the order the scene's items were sampled in).
ANSWERS_VERSION = 2

NUMBER_WORDS = (
    "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
)  # fmt: skip
_PLURAL = {"person": "people", "bicycle": "bicycles", "pizza": "pizzas"}

ENV_PHRASE = {
    "outdoor": "a natural outdoor field",
    "indoor": "an indoor room",
    "street": "an urban city street",
}
ENV_TYPE = {
    "outdoor": "a natural outdoor environment",
    "indoor": "an indoor environment",
    "street": "an urban street environment",
}


def _noun(kind: str, n: int) -> str:
    if n == 1:
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    return f"{NUMBER_WORDS[n]} {_PLURAL.get(kind, kind + 's')}"


def _join(parts: list[str]) -> str:
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _order(kind: str) -> int:
    vocab = ("person",) + ANIMALS + FOODS + OBJECTS
    return vocab.index(kind)


def main_objects(sc: SceneContent, rows: set[int] | None = None) -> list[str]:
    """Noun phrases of the objects (with counts), optionally only those in ``rows``."""
    kinds = [i.kind for i in sc.items if rows is None or i.row in rows]
    kinds += [i.with_object for i in sc.items if i.with_object and (rows is None or i.row in rows)]
    counts = Counter(kinds)
    return [_noun(k, counts[k]) for k in sorted(counts, key=_order)]


def background_phrase(sc: SceneContent) -> str:
    if sc.environment == "outdoor":
        sky = sc.dominant_colour if sc.dominant_region == "sky" else sc.other_colour
        ground = sc.dominant_colour if sc.dominant_region == "ground" else sc.other_colour
        return f"a {ground} field under a {sky} sky"
    if sc.environment == "indoor":
        return f"a {sc.dominant_colour} wall with a window"
    return f"{sc.dominant_colour} buildings along a street"


def answer(sc: SceneContent, instruction_id: str) -> str:
    """The reference answer of ``sc`` for one instruction id (IU1 ... VR) or pool answer key
    (:data:`POOL_KEYS`)."""
    if instruction_id in _POOL_ANSWERS:
        return _POOL_ANSWERS[instruction_id](sc)
    people = sc.people()
    animals = sc.animals()
    if instruction_id == "IU1":
        return f"the most dominant color is {sc.dominant_colour} ."
    if instruction_id == "IU2":
        foods = sc.foods()
        if not foods:
            return "there are no food items ."
        return f"the food items are {_join([_noun(f, 1) for f in foods])} ."
    if instruction_id == "IU3":
        n = len(animals)
        if n == 0:
            return "there are no animals ."
        verb = "is" if n == 1 else "are"
        return f"there {verb} {NUMBER_WORDS[n]} {'animal' if n == 1 else 'animals'} ."
    if instruction_id == "VQ1":
        objs = main_objects(sc)
        where = ENV_PHRASE[sc.environment]
        if not objs:
            return f"this image shows {where} ."
        return f"this image shows {_join(objs)} in {where} ."
    if instruction_id == "VQ2":
        if not people:
            return "no , there are no people ."
        acts = Counter(p.action for p in people)
        desc = [
            f"{NUMBER_WORDS[n] if n > 1 else 'one'} {'is' if n == 1 else 'are'} {a}"
            for a, n in sorted(acts.items())
        ]
        head = "one person" if len(people) == 1 else f"{NUMBER_WORDS[len(people)]} people"
        if len(people) == 1:
            return f"yes , there is one person who is {people[0].action} ."
        return f"yes , there are {head} : {_join(desc)} ."
    if instruction_id == "VQ3":
        fg = main_objects(sc, rows={2, 3})
        fg_text = (
            _join(fg)
            if fg
            else "nothing but the "
            + (
                "floor"
                if sc.environment == "indoor"
                else "road"
                if sc.environment == "street"
                else "ground"
            )
        )
        return f"the foreground shows {fg_text} . the background shows {background_phrase(sc)} ."
    if instruction_id == "IC":
        objs = main_objects(sc)
        where = ENV_PHRASE[sc.environment]
        if not objs:
            return f"an empty scene of {where} ."
        return f"{_join(objs)} in {where} ."
    if instruction_id == "SR":
        if sc.environment == "outdoor":
            return "the whole scene is a natural outdoor area with a field and a sky ."
        if sc.environment == "indoor":
            return "there is no natural outdoor area ; only the sky through the window ."
        return "there is no natural outdoor area ; it is a city street ."
    if instruction_id == "CR":
        return f"this is {ENV_TYPE[sc.environment]} ."
    if instruction_id == "VR":
        acts = sc.interactions()
        if not acts:
            return "there is no interaction between animate and inanimate objects ."
        return f"{_join(acts)} ."
    raise KeyError(f"unknown instruction id {instruction_id!r}")


# ---- the wider pool ---------------------------------------------------------------------------

#: The bottom surface of each environment (what an empty lower cell shows).
BOTTOM_SURFACE = {"outdoor": "ground", "indoor": "floor", "street": "road"}
#: What a doer of each activity will do next / did just before (temporal ordering).
NEXT_PHRASE = {
    "standing": "the standing person will start to walk",
    "walking": "the walking person will walk on",
    "waving": "the waving person will lower the arm",
    "sitting on a chair": "the sitting person will stand up from the chair",
    "kicking a ball": "the kicked ball will roll away",
    "riding a bicycle": "the bicycle will ride on",
    "dog": "the dog will chase the ball",
    "cat": "the cat will jump down from the chair",
}
BEFORE_PHRASE = {
    "standing": "the standing person stopped",
    "walking": "the walking person was already walking",
    "waving": "the waving person saw someone",
    "sitting on a chair": "the sitting person sat down on the chair",
    "kicking a ball": "the ball was rolled over",
    "riding a bicycle": "the cyclist got on the bicycle",
    "dog": "the dog found the ball",
    "cat": "the cat jumped onto the chair",
}
LIVELY = {"waving", "kicking a ball", "riding a bicycle"}
YES_MATCH = "yes , the caption matches the image ."
NO_MATCH = "no , the caption does not match the image ."


def _a(kind: str) -> str:
    return _noun(kind, 1)


def _things(n: int) -> str:
    if n == 0:
        return "there are no things ."
    if n == 1:
        return "there is one thing ."
    return f"there are {NUMBER_WORDS[n]} things ."


def _cells(sc: SceneContent, rows, cols) -> list[str]:
    """Noun phrases of the things (with counts and interaction partners) in some cells."""
    sub = SceneContent(
        sc.environment,
        sc.dominant_region,
        sc.dominant_colour,
        sc.horizon,
        sc.other_colour,
        [i for i in sc.items if i.row in rows and i.col in cols],
    )
    return main_objects(sub)


def _region(sc: SceneContent, name: str, rows, cols) -> str:
    objs = _cells(sc, rows, cols)
    return f"the {name} shows {_join(objs) if objs else 'no objects'} ."


def _corner(sc: SceneContent, name: str, row: int, col: int) -> str:
    objs = _cells(sc, {row}, {col})
    if objs:
        return f"the {name} corner shows {_join(objs)} ."
    return f"the {name} corner shows only the {BOTTOM_SURFACE[sc.environment]} ."


def _doings(sc: SceneContent) -> list[str]:
    """Distinct activities in the scene (people's actions, then animals' interactions)."""
    acts = sorted({p.action for p in sc.people() if p.action})
    acts += [k for k in ("dog", "cat") if any(a.kind == k and a.with_object for a in sc.animals())]
    return acts


def _activity(sc: SceneContent) -> str:
    parts = []
    for a, n in sorted(Counter(p.action for p in sc.people()).items()):
        parts.append(f"{'one person is' if n == 1 else NUMBER_WORDS[n] + ' people are'} {a}")
    for i in sorted(sc.animals(), key=lambda a: ANIMALS.index(a.kind)):  # not sampling order
        if i.with_object and i.action:
            parts.append(f"a {i.kind} is {i.action}")
    parts = list(dict.fromkeys(parts))
    if not parts:
        return "nothing is happening ; the scene is still ."
    return f"{_join(parts)} ."


def _largest(sc: SceneContent) -> str:
    item = largest_item(sc)
    if item is None:
        return "there are no objects ."
    return (
        f"the largest object is {_a(item.kind)} in the {quarter(item)} quarter ; "
        f"it is {size_word(item)} ."
    )


def size_word(item: Item) -> str:
    """``"large"``, ``"medium"`` or ``"small"`` from the thing's :func:`apparent_size`."""
    s = apparent_size(item)
    return "large" if s >= 0.75 else "medium" if s >= 0.5 else "small"


def _closest(sc: SceneContent) -> str:
    item = closest_item(sc)
    if item is None:
        return "there are no objects ."
    return f"the closest object is {_a(item.kind)} in the {quarter(item)} quarter ."


def _most_quarter(sc: SceneContent) -> str:
    if not sc.items:
        return "there are no things ."
    counts = Counter(quarter(i) for i in sc.items)
    (best, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        return "no quarter holds more things than the others ."
    return f"most things are in the {best} quarter ."


def _on_largest(sc: SceneContent, what) -> str:
    item = largest_item(sc)
    return "there are no objects ." if item is None else what(item)


def _top(sc: SceneContent) -> str:
    if sc.environment == "outdoor":
        sky = sc.dominant_colour if sc.dominant_region == "sky" else sc.other_colour
        return f"the top is filled by a {sky} sky ."
    if sc.environment == "indoor":
        return f"the top is filled by a {sc.dominant_colour} wall with a window ."
    return f"the top is filled by {sc.dominant_colour} buildings under a strip of sky ."


def _match(ok: bool) -> str:
    return YES_MATCH if ok else NO_MATCH


def _count(n: int, one: str, many: str) -> str:
    if n == 0:
        return f"there are no {many} ."
    if n == 1:
        return f"there is one {one} ."
    return f"there are {NUMBER_WORDS[n]} {many} ."


def _clauses(sc: SceneContent, table: dict[str, str], empty: str) -> str:
    acts = _doings(sc)
    return f"{_join([table[a] for a in acts])} ." if acts else empty


def _has_car(sc: SceneContent) -> bool:
    return any(i.kind == "car" for i in sc.items)


_POOL_ANSWERS = {
    "objects": lambda sc: (
        f"i can see {_join(main_objects(sc))} ." if sc.items else "i can see no objects ."
    ),
    "texture": lambda sc: _on_largest(
        sc, lambda i: f"the main object is {_a(i.kind)} ; it looks like {TEXTURES[i.kind]} ."
    ),
    "material": lambda sc: _on_largest(
        sc, lambda i: f"the main object is {_a(i.kind)} , made of {MATERIALS[i.kind]} ."
    ),
    "n_things": lambda sc: _things(len(sc.items)),
    "n_people": lambda sc: _count(len(sc.people()), "person", "people"),
    "n_dogs": lambda sc: _count(sum(i.kind == "dog" for i in sc.items), "dog", "dogs"),
    "table": lambda sc: "there is no table in this image .",
    "main_subject": lambda sc: _on_largest(sc, lambda i: f"the main subject is {_a(i.kind)} ."),
    "title": lambda sc: (
        f"a picture of {_a(largest_item(sc).kind) if sc.items else 'nothing'} in "
        f"{ENV_PHRASE[sc.environment]} ."
    ),
    "detail": lambda sc: f"{answer(sc, 'IC')} the background shows {background_phrase(sc)} .",
    "people_doing": lambda sc: (
        _activity(
            SceneContent(
                sc.environment,
                sc.dominant_region,
                sc.dominant_colour,
                sc.horizon,
                sc.other_colour,
                sc.people(),
            )
        )
        if sc.people()
        else "there are no people ."
    ),
    "activity": _activity,
    "in_out": lambda sc: (
        "this scene is indoors ." if sc.environment == "indoor" else "this scene is outdoors ."
    ),
    "place": lambda sc: f"it is {ENV_PHRASE[sc.environment]} .",
    "next": lambda sc: _clauses(sc, NEXT_PHRASE, "nothing will change ; the scene stays still ."),
    "before": lambda sc: _clauses(
        sc, BEFORE_PHRASE, "nothing happened ; the scene was already still ."
    ),
    "why": lambda sc: (
        f"to show {_a(largest_item(sc).kind) if sc.items else 'the place'} in "
        f"{ENV_PHRASE[sc.environment]} ."
    ),
    "safe_cross": lambda sc: (
        "no , a car on the street could hit someone ."
        if _has_car(sc)
        else "yes , it looks safe to walk across ."
    ),
    "danger": lambda sc: (
        "yes , a car on the street could be dangerous ."
        if _has_car(sc)
        else "no , nothing looks dangerous ."
    ),
    "mood": lambda sc: (
        "a lively and playful mood ."
        if {p.action for p in sc.people()} & LIVELY or any(a.with_object for a in sc.animals())
        else "a calm and quiet mood ."
        if sc.items
        else "an empty and still mood ."
    ),
    "composition": lambda sc: (
        _on_largest(
            sc,
            lambda i: (
                f"yes , it is a simple picture with {_a(i.kind)} in the {quarter(i)} "
                "quarter as its main object ."
            ),
        )
        if sc.items
        else f"it is a plain picture of {ENV_PHRASE[sc.environment]} ."
    ),
    "spatial": lambda sc: (
        f"the upper half shows {_join(_cells(sc, {0, 1}, range(GRID))) or 'no objects'}"
        f" and the lower half shows {_join(_cells(sc, {2, 3}, range(GRID))) or 'no objects'} ."
    ),
    "left_right": lambda sc: (
        f"the left side shows {_join(_cells(sc, range(GRID), {0, 1})) or 'no objects'}"
        f" and the right side shows {_join(_cells(sc, range(GRID), {2, 3})) or 'no objects'} ."
    ),
    "largest": _largest,
    "closest": _closest,
    "largest_quarter": lambda sc: _on_largest(
        sc, lambda i: f"the largest object is in the {quarter(i)} quarter ."
    ),
    "largest_side": lambda sc: _on_largest(
        sc, lambda i: f"it is on the {quarter(i).split()[1]} side ."
    ),
    "largest_half": lambda sc: _on_largest(
        sc, lambda i: f"it is in the {quarter(i).split()[0]} half ."
    ),
    "most_quarter": _most_quarter,
    "q_upper_left": lambda sc: _region(sc, "upper left quarter", {0, 1}, {0, 1}),
    "q_upper_right": lambda sc: _region(sc, "upper right quarter", {0, 1}, {2, 3}),
    "q_lower_left": lambda sc: _region(sc, "lower left quarter", {2, 3}, {0, 1}),
    "q_lower_right": lambda sc: _region(sc, "lower right quarter", {2, 3}, {2, 3}),
    "corner_bottom_left": lambda sc: _corner(sc, "bottom left", GRID - 1, 0),
    "corner_bottom_right": lambda sc: _corner(sc, "bottom right", GRID - 1, GRID - 1),
    "top": _top,
    "match_animal_outdoor": lambda sc: _match(bool(sc.animals()) and sc.environment == "outdoor"),
    "match_people_street": lambda sc: _match(bool(sc.people()) and sc.environment == "street"),
    "match_food_indoor": lambda sc: _match(bool(sc.foods()) and sc.environment == "indoor"),
    "match_empty": lambda sc: _match(not sc.items),
    "no_text": lambda sc: "no , there is no written text in the image .",
    "no_text_legible": lambda sc: "there is no text in the image to read .",
    "no_signs": lambda sc: "no , there are no signs or text in the picture .",
    "no_text_extract": lambda sc: "there is no text in the image .",
    "disaster": lambda sc: f"no , there is no disaster ; it shows {ENV_PHRASE[sc.environment]} .",
    "disaster_type": lambda sc: f"no disaster : this is {ENV_TYPE[sc.environment]} .",
    "no_damage": lambda sc: "no , there is no fire , flood or storm damage .",
}
#: Every answer key of the wider pool (besides the paper's 10 ids).
POOL_KEYS: tuple[str, ...] = tuple(_POOL_ANSWERS)


def parse_count(text: str) -> int | None:
    """Number of animals stated in an IU3-style answer, or None if unparseable."""
    words = text.lower().split()
    for w in words:
        if w in NUMBER_WORDS:
            return NUMBER_WORDS.index(w)
    return None


def parse_foods(text: str) -> set[str]:
    """Set of food kinds named in a text."""
    words = set(text.lower().replace(",", " ").split())
    return {f for f in FOODS if f in words or _PLURAL.get(f, f + "s") in words}
