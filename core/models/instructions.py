"""The paper's 10 instructions (verbatim, with ids and task names), a wider pool, free text.

An instruction is either one of the paper's ids (``"IU1"`` ... ``"VR"``), a pool id
(``"pool:<task>:<k>"``), or free text. :func:`resolve_instruction` turns any of them into an
:class:`Instruction` whose ``text`` is what the model sees and whose ``id`` names output folders.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    """One instruction.

    Parameters
    ----------
    id : str
        Short id: a paper id (``"IC"``), a pool id, or ``"free-<hash8>"`` for free text.
    task : str
        Task category (``"image captioning"``, ...; ``"free text"`` for user text).
    text : str
        The exact text given to the model.
    """

    id: str
    task: str
    text: str


#: The paper's 10 instructions (Oota et al., ICLR 2025), verbatim, in the paper's order.
PAPER_INSTRUCTIONS: tuple[Instruction, ...] = (
    Instruction("IU1", "image understanding", "Describe the most dominant color in the image"),
    Instruction("IU2", "image understanding", "List any food items visible."),
    Instruction("IU3", "image understanding", "How many animals are there in the image?"),
    Instruction("VQ1", "visual question answering", "What is in this image?"),
    Instruction(
        "VQ2",
        "visual question answering",
        "Are there any people in this image? If yes, describe them.",
    ),
    Instruction(
        "VQ3",
        "visual question answering",
        "What is the foreground of the image? What is in the background?",
    ),
    Instruction("IC", "image captioning", "Generate some text to describe the image"),
    Instruction(
        "SR", "scene recognition", "Highlight the area that shows a natural outdoor scene."
    ),
    Instruction("CR", "commonsense reasoning", "What type of environment is shown in the image?"),
    Instruction(
        "VR",
        "visual relationship",
        "What kind of interaction is happening between the animate and inanimate objects here?",
    ),
)

PAPER_IDS: tuple[str, ...] = tuple(i.id for i in PAPER_INSTRUCTIONS)

#: A wider pool of prompts by task group, in the spirit of the authors' pool (66 prompts in 13 task
#: groups: image captioning, visual question answering, visual relationship, commonsense reasoning,
#: image understanding, temporal ordering, grounded generation, grounded matching, region
#: understanding, image-text matching, text legibility, visual text extraction, disaster type
#: classification), written in the project's own words; the paper's 10 are included verbatim under
#: their tasks, and a few groups of the project's earlier pool are kept. Prompts are only ever
#: appended to a group (pool ids ``pool:<task>:<k>`` count within the group and stay stable).
#: Groups that make little sense for the demo scenes (text, disasters) are kept: the demo world
#: answers them truthfully (it has no written text and no disasters).
PROMPT_POOL: dict[str, tuple[str, ...]] = {
    "image captioning": (
        "Generate some text to describe the image",
        "Write a short caption for this image.",
        "Describe the image in one sentence.",
        "Provide a detailed description of the image.",
        "Give this picture a title that says what is in it.",
    ),
    "image understanding": (
        "Describe the most dominant color in the image",
        "List any food items visible.",
        "How many animals are there in the image?",
        "What objects can you see in the image?",
        "Describe the texture of the main object.",
        "How many things are there in the image altogether?",
    ),
    "visual question answering": (
        "What is in this image?",
        "Are there any people in this image? If yes, describe them.",
        "What is the foreground of the image? What is in the background?",
        "What is the main subject of this image?",
        "Is there a dog in this image?",
        "What are the people in the image doing?",
    ),
    "scene recognition": (
        "Highlight the area that shows a natural outdoor scene.",
        "Is this scene indoors or outdoors?",
        "What kind of place is shown in this image?",
    ),
    "commonsense reasoning": (
        "What type of environment is shown in the image?",
        "What might happen next in this scene?",
        "Why might someone take this picture?",
        "Would it be safe to cross this scene on foot? Why?",
    ),
    "visual relationship": (
        "What kind of interaction is happening between the animate and inanimate objects here?",
        "Describe how the objects in the image relate to each other spatially.",
        "What is on the left side of the image and what is on the right side?",
    ),
    "counting": ("How many people are in the image?", "How many objects are on the table?"),
    "object localization": (
        "Where is the largest object in the image?",
        "Which object is closest to the camera, and where is it?",
        "How large is the biggest object in the picture, and where does it sit?",
    ),
    "activity recognition": ("What activity is taking place in the image?",),
    "emotion": ("What mood does this image convey?",),
    "text recognition": ("Is there any written text in the image? What does it say?",),
    "attribute recognition": ("What is the main object made of?",),
    "safety": ("Is there anything dangerous in this image?",),
    "aesthetics": ("Is this a well-composed photograph? Why?",),
    "temporal ordering": (
        "What happened just before this picture was taken?",
        "What will the people or animals in the image do next?",
        "Describe what is going on now and what comes after it.",
    ),
    "grounded generation": (
        "Describe the largest object and say where it is in the image.",
        "Describe what is in the upper left quarter of the image.",
        "Describe what is in the lower right quarter of the image.",
        "Name the object nearest to the viewer and give its position.",
    ),
    "grounded matching": (
        "Which quarter of the image contains the largest object?",
        "In which quarter of the image are most of the things?",
        "Is the largest object on the left or the right side of the image?",
        "Is the largest object in the upper or the lower half of the image?",
    ),
    "region understanding": (
        "What is in the upper right quarter of the image?",
        "What is in the lower left quarter of the image?",
        "What can be seen in the bottom left corner of the image?",
        "What can be seen in the bottom right corner of the image?",
        "What fills the top of the image?",
    ),
    "image-text matching": (
        "Does the caption 'an animal in a natural outdoor field' match this image?",
        "Does the caption 'people on a city street' match this image?",
        "Does the caption 'food in an indoor room' match this image?",
        "Does the sentence 'an empty scene with nothing in it' describe this image?",
    ),
    "text legibility": (
        "Is the text in this image legible?",
        "How clear is the writing in the image?",
        "Are there any signs with readable text in the picture?",
    ),
    "visual text extraction": (
        "Read out any text that appears in the image.",
        "Extract all written words from the image.",
        "What do the signs in the image say?",
    ),
    "disaster type classification": (
        "Does this image show a natural disaster? If so, what kind?",
        "Classify the type of disaster shown in this image.",
        "Is there any fire, flood or storm damage in this image?",
    ),
}

#: The authors' 13 task groups (science.md), each a key of :data:`PROMPT_POOL`.
AUTHOR_TASK_GROUPS: tuple[str, ...] = (
    "image captioning",
    "visual question answering",
    "visual relationship",
    "commonsense reasoning",
    "image understanding",
    "temporal ordering",
    "grounded generation",
    "grounded matching",
    "region understanding",
    "image-text matching",
    "text legibility",
    "visual text extraction",
    "disaster type classification",
)


def _slug(task: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")


def pool_instructions() -> list[Instruction]:
    """Every instruction of :data:`PROMPT_POOL`, with ids ``pool:<task-slug>:<k>``."""
    return [
        Instruction(f"pool:{_slug(task)}:{k}", task, text)
        for task, texts in PROMPT_POOL.items()
        for k, text in enumerate(texts)
    ]


def free_text(text: str) -> Instruction:
    """Wrap user text as an :class:`Instruction` with a stable content-derived id, and
    remember the text under that id (:func:`resolve_instruction` resolves it later)."""
    text = text.strip()
    if not text:
        raise ValueError("an instruction must not be empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    ins = Instruction(f"free-{digest}", "free text", text)
    _remember_free(ins)
    return ins


_FREE_ID = re.compile(r"^free-[0-9a-f]{8}$")
_FREE_SEEN: dict[str, dict[str, str]] = {}


def _free_registry():
    """The file of free-text instructions of the current home (id -> text)."""
    from core.config import subdir

    return subdir("instructions") / "free.json"


def _known_free() -> dict[str, str]:
    from core.storage import ArtifactError, read_json

    path = _free_registry()
    try:
        return dict(read_json(path)) if path.exists() else {}
    except ArtifactError:
        return {}


def _remember_free(ins: Instruction) -> None:
    """Record a free-text instruction once per home (a locked read-merge-write)."""
    from core.storage import file_lock, write_json

    path = _free_registry()
    seen = _FREE_SEEN.setdefault(str(path), {})
    if seen.get(ins.id) == ins.text:
        return
    with file_lock(path.with_suffix(".lock"), what="free-text instructions"):
        known = _known_free()
        if known.get(ins.id) != ins.text:
            known[ins.id] = ins.text
            write_json(path, known)
    seen[ins.id] = ins.text


def resolve_instruction(spec: str | Instruction) -> Instruction:
    """Turn a paper id, a pool id or free text into an :class:`Instruction`.

    A string equal to one of the paper's ids (case-insensitive) or to a pool id resolves to it;
    a string equal to a paper instruction's text resolves to that id; a free-text id
    (``free-<hash8>``) resolves to the text remembered under it in this home; anything else is
    free text.
    """
    if isinstance(spec, Instruction):
        return spec
    key = spec.strip()
    for ins in PAPER_INSTRUCTIONS:
        if key.upper() == ins.id or key == ins.text:
            return ins
    if key.startswith("pool:"):
        for ins in pool_instructions():
            if ins.id == key:
                return ins
        raise ValueError(f"unknown pool instruction {key!r}")
    if _FREE_ID.match(key):  # the id of free text seen before (in this home)
        text = _known_free().get(key)
        if text is None:
            raise ValueError(
                f"unknown free-text instruction id {key!r}: give its text (ids are known once "
                "the text was used in this BrainPrompt home)"
            )
        return Instruction(key, "free text", text)
    return free_text(key)


def resolve_instructions(specs: list[str] | tuple[str, ...] | None) -> list[Instruction]:
    """Resolve a list; ``None``, ``["all"]`` or ``["paper"]`` give the paper's 10, ``["pool"]``
    the whole pool."""
    if not specs or list(specs) in (["all"], ["paper"]):
        return list(PAPER_INSTRUCTIONS)
    if list(specs) == ["pool"]:
        return pool_instructions()
    out: list[Instruction] = []
    for s in specs:
        ins = resolve_instruction(s)
        if ins not in out:
            out.append(ins)
    return out
