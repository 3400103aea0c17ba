"""Candidate instructions for the instruction search (``python -m core discover``).

Three sources, each giving :class:`Candidate` objects (an :class:`Instruction`, its task group
and where it came from):

- the prompt pool (:func:`pool_candidates`, through :mod:`core.models.instructions`' public
  API: :func:`~core.models.instructions.pool_instructions`); a pool prompt whose text is one of
  the paper's 10 is that paper instruction (same id, so the grid's embeddings and fits are
  reused);
- a user file (:func:`file_candidates`): one instruction per line, ``#`` comments and blank
  lines ignored, ``task<TAB>text`` to name a task group (else ``"free text"``); a paper id or a
  pool id on a line resolves to that instruction;
- compositional templates (:func:`template_candidates`): question form x content x attribute,
  e.g. ("question", "the largest object", "position") -> "Where is the largest object in the
  image?". Each attribute belongs to one task group of the pool (position and size: object
  localization; colour: image understanding; ...), so a generated winner says which kind of
  question it is.

Everything here is pure (no model, no dataset): the same arguments give the same candidates in
the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.models.instructions import (
    PAPER_INSTRUCTIONS,
    Instruction,
    free_text,
    pool_instructions,
    resolve_instruction,
)

#: Where a candidate came from.
SOURCES = ("pool", "file", "generated", "rewrite")


@dataclass(frozen=True)
class Candidate:
    """One candidate instruction of a search.

    Parameters
    ----------
    instruction : Instruction
        What the model sees (``instruction.text``) and the id its embeddings and fits are
        stored under (a paper id, a pool id or ``free-<hash8>``).
    task : str
        Task group (a pool group for pool and generated candidates).
    source : str
        One of :data:`SOURCES`.
    """

    instruction: Instruction
    task: str
    source: str

    @property
    def text(self) -> str:
        return self.instruction.text

    @property
    def id(self) -> str:
        return self.instruction.id

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "task": self.task, "source": self.source}


_PAPER_BY_TEXT = {i.text: i for i in PAPER_INSTRUCTIONS}


def canonical(ins: Instruction) -> Instruction:
    """The paper instruction of the same text when there is one (one shard per text), else
    ``ins``."""
    return _PAPER_BY_TEXT.get(ins.text, ins)


def normalized_text(text: str) -> str:
    """Lower-cased, whitespace collapsed, trailing punctuation dropped: two texts that differ
    only so are one candidate."""
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(" .?!")


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Candidates in order, each :func:`normalized_text` once (the first one wins)."""
    seen: set[str] = set()
    out = []
    for c in candidates:
        key = normalized_text(c.text)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def pool_candidates() -> list[Candidate]:
    """Every prompt of the pool (the paper's 10 under their paper ids), with its task group."""
    return [Candidate(canonical(i), i.task, "pool") for i in pool_instructions()]


def file_candidates(path: str | Path) -> list[Candidate]:
    """Candidates from a text file (see the module docstring).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it holds no instruction.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"candidate file {path} does not exist")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        task, _, text = line.partition("\t") if "\t" in line else ("", "", line)
        text = text.strip()
        if not text:
            continue
        ins = canonical(resolve_instruction(text))
        task = task.strip() or (ins.task if ins.task != "free text" else "free text")
        out.append(Candidate(ins, task, "file"))
    if not out:
        raise ValueError(f"candidate file {path} holds no instruction")
    return dedupe(out)


# --------------------------------------------------------------------------- templates

#: Contents: (noun phrase, plural, count noun). The count noun is what "How many ..." counts.
CONTENTS: tuple[tuple[str, bool, str], ...] = (
    ("the largest object", False, "objects"),
    ("the people", True, "people"),
    ("the animals", True, "animals"),
    ("the food", False, "food items"),
    ("the main subject", False, "things"),
    ("the objects", True, "objects"),
    ("the background", False, "objects in the background"),
    ("the scene", False, "things in the scene"),
)

#: Question forms.
FORMS: tuple[str, ...] = ("question", "instruction", "brief")

#: Attributes: task group, the contents they make sense for (indices into :data:`CONTENTS`;
#: None = all) and one template per form. ``{c}`` is the content, ``{is}`` "is"/"are",
#: ``{n}`` the count noun.
ATTRIBUTES: dict[str, tuple[str, tuple[int, ...] | None, dict[str, str]]] = {
    "position": ("object localization", (0, 1, 2, 3, 4, 5), {
        "question": "Where {is} {c} in the image?",
        "instruction": "Describe where {c} {is} in the image.",
        "brief": "Give the position of {c}.",
    }),
    "size": ("object localization", (0, 1, 2, 3, 4, 5), {
        "question": "How large {is} {c} in the picture?",
        "instruction": "Describe how big {c} {is}.",
        "brief": "Give the size of {c}.",
    }),
    "colour": ("image understanding", None, {
        "question": "What color {is} {c}?",
        "instruction": "Describe the color of {c}.",
        "brief": "Name the main color of {c}.",
    }),
    "count": ("counting", None, {
        "question": "How many {n} are there in the image?",
        "instruction": "Count the {n} in the image.",
        "brief": "Give the number of {n}.",
    }),
    "activity": ("activity recognition", (1, 2), {
        "question": "What {is} {c} doing?",
        "instruction": "Describe what {c} {is} doing.",
        "brief": "Name the action of {c}.",
    }),
    "identity": ("visual question answering", None, {
        "question": "What {is} {c}?",
        "instruction": "Describe {c} in the image.",
        "brief": "Name {c}.",
    }),
    "relation": ("visual relationship", (0, 1, 2, 3, 5), {
        "question": "What is next to {c}?",
        "instruction": "Describe how {c} relate{s} to the rest of the image.",
        "brief": "Name what is near {c}.",
    }),
    "place": ("scene recognition", (6, 7), {
        "question": "What kind of place is {c}?",
        "instruction": "Describe the environment of {c}.",
        "brief": "Name the type of place in {c}.",
    }),
}


def template_texts() -> list[tuple[str, str, str, str, str]]:
    """Every composed text, once, in a stable order (by attribute, then content, then form).

    Returns
    -------
    rows : list of (text, task, form, content, attribute)
    """
    rows, seen = [], set()
    for attribute, (task, allowed, forms) in ATTRIBUTES.items():
        for k, (phrase, plural, noun) in enumerate(CONTENTS):
            if allowed is not None and k not in allowed:
                continue
            for form in FORMS:
                text = forms[form].format(c=phrase, n=noun, **{"is": "are" if plural else "is",
                                                              "s": "" if plural else "s"})
                text = text[0].upper() + text[1:]
                if normalized_text(text) not in seen:  # two contents may count the same noun
                    seen.add(normalized_text(text))
                    rows.append((text, task, form, phrase, attribute))
    return rows


def template_candidates(n: int | None = None, exclude: Sequence[str] = ()) -> list[Candidate]:
    """Generated candidates: question form x content x attribute (see :data:`ATTRIBUTES`).

    Parameters
    ----------
    n : int or None
        How many (None: all). Taken round-robin over attributes, then contents, then forms, so
        a small ``n`` still spans every attribute and task group.
    exclude : sequence of str
        Texts already among the candidates (compared by :func:`normalized_text`).

    Returns
    -------
    candidates : list of Candidate
        Distinct texts (source ``"generated"``); their ids are free-text ids.
    """
    by_attribute: dict[str, list] = {}
    for row in template_texts():
        by_attribute.setdefault(row[4], []).append(row)
    # within an attribute: the first form of every content, then the second, ...
    queues = []
    for rows in by_attribute.values():
        ordered = sorted(rows, key=lambda r: (FORMS.index(r[2]),))
        queues.append(ordered)
    seen = {normalized_text(t) for t in exclude}
    out: list[Candidate] = []
    depth = 0
    while any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q):
                text, task = q[depth][0], q[depth][1]
                key = normalized_text(text)
                if key not in seen:
                    seen.add(key)
                    out.append(Candidate(canonical(free_text(text)), task, "generated"))
                    if n is not None and len(out) >= n:
                        return out
        depth += 1
    return out


def candidate_set(spec: str, n_generated: int = 32) -> list[Candidate]:
    """The candidates a search compares, from a comma-separated spec.

    Parameters
    ----------
    spec : str
        Parts joined by ``,`` or ``+``: ``pool`` (the prompt pool), ``paper`` (the paper's 10),
        ``generated`` (``n_generated`` template candidates) or a path to a candidate file.
        E.g. ``"pool+generated"``, ``"my_prompts.txt"``, ``"paper,generated"``.
    n_generated : int

    Returns
    -------
    candidates : list of Candidate
        Deduplicated by :func:`normalized_text`, in the order of the parts.
    """
    parts = [p.strip() for p in re.split(r"[,+]", spec) if p.strip()]
    if not parts:
        raise ValueError("no candidates: give 'pool', 'paper', 'generated' or a file")
    out: list[Candidate] = []
    for part in parts:
        if part == "pool":
            out += pool_candidates()
        elif part == "paper":
            out += [Candidate(i, i.task, "pool") for i in PAPER_INSTRUCTIONS]
        elif part == "generated":
            out += template_candidates(n_generated, exclude=[c.text for c in out])
        else:
            out += file_candidates(part)
    return dedupe(out)
