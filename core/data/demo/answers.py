"""Reference answers of a demo scene for each of the paper's 10 instructions.

The wording is templated and deterministic, so that the demo model can learn it and an evaluation
can parse it back (see :func:`parse_count`, :func:`parse_foods`). Instruction ids follow
science.md: IU1 IU2 IU3 VQ1 VQ2 VQ3 IC SR CR VR.
"""

from __future__ import annotations

from collections import Counter

from core.data.demo.content import ANIMALS, FOODS, OBJECTS, SceneContent

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
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
    """The reference answer of ``sc`` for one instruction id (IU1 ... VR)."""
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
