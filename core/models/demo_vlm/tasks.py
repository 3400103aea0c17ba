"""Which answer each instruction asks the demo model for: the paper's 10 and every pool prompt.

Every prompt of :data:`core.models.instructions.PROMPT_POOL` maps to one answer key of the demo
world (:func:`core.data.demo.answers.answer`): the paper's 10 to their own ids, the others to
:data:`core.data.demo.answers.POOL_KEYS`. Paraphrases that ask the same thing share a key (and so
the same reference answer). The demo model is trained on every (prompt, key) pair and evaluated
per task group (:mod:`core.models.demo_vlm.evaluate`).
"""

from __future__ import annotations

from core.data.demo.answers import POOL_KEYS
from core.data.demo.scenes import INSTRUCTION_IDS
from core.models.instructions import PAPER_INSTRUCTIONS, PROMPT_POOL

#: Pool prompt text -> answer key (the paper's 10 texts map to their ids).
POOL_ANSWER_KEYS: dict[str, str] = {
    # image captioning
    "Write a short caption for this image.": "IC",
    "Describe the image in one sentence.": "IC",
    "Provide a detailed description of the image.": "detail",
    "Give this picture a title that says what is in it.": "title",
    # image understanding
    "What objects can you see in the image?": "objects",
    "Describe the texture of the main object.": "texture",
    "How many things are there in the image altogether?": "n_things",
    # visual question answering
    "What is the main subject of this image?": "main_subject",
    "Is there a dog in this image?": "n_dogs",
    "What are the people in the image doing?": "people_doing",
    # scene recognition
    "Is this scene indoors or outdoors?": "in_out",
    "What kind of place is shown in this image?": "place",
    # commonsense reasoning
    "What might happen next in this scene?": "next",
    "Why might someone take this picture?": "why",
    "Would it be safe to cross this scene on foot? Why?": "safe_cross",
    # visual relationship
    "Describe how the objects in the image relate to each other spatially.": "spatial",
    "What is on the left side of the image and what is on the right side?": "left_right",
    # counting
    "How many people are in the image?": "n_people",
    "How many objects are on the table?": "table",
    # object localization
    "Where is the largest object in the image?": "largest",
    "Which object is closest to the camera, and where is it?": "closest",
    "How large is the biggest object in the picture, and where does it sit?": "largest",
    # activity recognition, emotion, text recognition, attributes, safety, aesthetics
    "What activity is taking place in the image?": "activity",
    "What mood does this image convey?": "mood",
    "Is there any written text in the image? What does it say?": "no_text",
    "What is the main object made of?": "material",
    "Is there anything dangerous in this image?": "danger",
    "Is this a well-composed photograph? Why?": "composition",
    # temporal ordering
    "What happened just before this picture was taken?": "before",
    "What will the people or animals in the image do next?": "next",
    "Describe what is going on now and what comes after it.": "next",
    # grounded generation
    "Describe the largest object and say where it is in the image.": "largest",
    "Describe what is in the upper left quarter of the image.": "q_upper_left",
    "Describe what is in the lower right quarter of the image.": "q_lower_right",
    "Name the object nearest to the viewer and give its position.": "closest",
    # grounded matching
    "Which quarter of the image contains the largest object?": "largest_quarter",
    "In which quarter of the image are most of the things?": "most_quarter",
    "Is the largest object on the left or the right side of the image?": "largest_side",
    "Is the largest object in the upper or the lower half of the image?": "largest_half",
    # region understanding
    "What is in the upper right quarter of the image?": "q_upper_right",
    "What is in the lower left quarter of the image?": "q_lower_left",
    "What can be seen in the bottom left corner of the image?": "corner_bottom_left",
    "What can be seen in the bottom right corner of the image?": "corner_bottom_right",
    "What fills the top of the image?": "top",
    # image-text matching
    "Does the caption 'an animal in a natural outdoor field' match this image?": (
        "match_animal_outdoor"
    ),
    "Does the caption 'people on a city street' match this image?": "match_people_street",
    "Does the caption 'food in an indoor room' match this image?": "match_food_indoor",
    "Does the sentence 'an empty scene with nothing in it' describe this image?": "match_empty",
    # text legibility
    "Is the text in this image legible?": "no_text_legible",
    "How clear is the writing in the image?": "no_text_legible",
    "Are there any signs with readable text in the picture?": "no_signs",
    # visual text extraction
    "Read out any text that appears in the image.": "no_text_extract",
    "Extract all written words from the image.": "no_text_extract",
    "What do the signs in the image say?": "no_signs",
    # disaster type classification
    "Does this image show a natural disaster? If so, what kind?": "disaster",
    "Classify the type of disaster shown in this image.": "disaster_type",
    "Is there any fire, flood or storm damage in this image?": "no_damage",
}
#: Every answer key the model is trained on: the paper's 10, then the pool's, in a fixed order.
ANSWER_KEYS: tuple[str, ...] = (*INSTRUCTION_IDS, *POOL_KEYS)


def answer_key(text: str) -> str:
    """The answer key of an instruction text (a paper instruction or a pool prompt).

    Raises
    ------
    KeyError
        For text that is neither.
    """
    for ins in PAPER_INSTRUCTIONS:
        if ins.text == text:
            return ins.id
    return POOL_ANSWER_KEYS[text]


def training_prompts() -> list[tuple[str, str]]:
    """Every distinct (instruction text, answer key) the model is trained on: the paper's 10
    first, then the pool's other prompts in pool order."""
    out = [(ins.text, ins.id) for ins in PAPER_INSTRUCTIONS]
    seen = {t for t, _ in out}
    for texts in PROMPT_POOL.values():
        for text in texts:
            if text not in seen:
                out.append((text, answer_key(text)))
                seen.add(text)
    return out
