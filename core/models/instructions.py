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

#: A wider pool of prompts by task, in the spirit of the authors' 66-prompt pool (paraphrased here;
#: the paper's 10 are included under their tasks).
PROMPT_POOL: dict[str, tuple[str, ...]] = {
    "image captioning": (
        "Generate some text to describe the image",
        "Write a short caption for this image.",
        "Describe the image in one sentence.",
        "Provide a detailed description of the image.",
    ),
    "image understanding": (
        "Describe the most dominant color in the image",
        "List any food items visible.",
        "How many animals are there in the image?",
        "What objects can you see in the image?",
        "Describe the texture of the main object.",
    ),
    "visual question answering": (
        "What is in this image?",
        "Are there any people in this image? If yes, describe them.",
        "What is the foreground of the image? What is in the background?",
        "What is the main subject of this image?",
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
    ),
    "visual relationship": (
        "What kind of interaction is happening between the animate and inanimate objects here?",
        "Describe how the objects in the image relate to each other spatially.",
    ),
    "counting": ("How many people are in the image?", "How many objects are on the table?"),
    "object localization": ("Where is the largest object in the image?",),
    "activity recognition": ("What activity is taking place in the image?",),
    "emotion": ("What mood does this image convey?",),
    "text recognition": ("Is there any written text in the image? What does it say?",),
    "attribute recognition": ("What is the main object made of?",),
    "safety": ("Is there anything dangerous in this image?",),
    "aesthetics": ("Is this a well-composed photograph? Why?",),
}


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
    """Wrap user text as an :class:`Instruction` with a stable content-derived id."""
    text = text.strip()
    if not text:
        raise ValueError("an instruction must not be empty")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return Instruction(f"free-{digest}", "free text", text)


def resolve_instruction(spec: str | Instruction) -> Instruction:
    """Turn a paper id, a pool id or free text into an :class:`Instruction`.

    A string equal to one of the paper's ids (case-insensitive) or to a pool id resolves to it;
    a string equal to a paper instruction's text resolves to that id; anything else is free text.
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
