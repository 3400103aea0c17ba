from core.models.instructions import (
    PAPER_IDS,
    PAPER_INSTRUCTIONS,
    pool_instructions,
    resolve_instruction,
    resolve_instructions,
)


def test_paper_instructions_verbatim():
    assert PAPER_IDS == ("IU1", "IU2", "IU3", "VQ1", "VQ2", "VQ3", "IC", "SR", "CR", "VR")
    by_id = {i.id: i for i in PAPER_INSTRUCTIONS}
    assert by_id["IU1"].text == "Describe the most dominant color in the image"
    assert by_id["VQ2"].text == "Are there any people in this image? If yes, describe them."
    assert by_id["VR"].text == (
        "What kind of interaction is happening between the animate and inanimate objects here?"
    )
    assert by_id["IC"].task == "image captioning"
    assert by_id["SR"].task == "scene recognition"


def test_resolve_ids_text_pool_and_free_text():
    assert resolve_instruction("ic").id == "IC"
    assert resolve_instruction("What is in this image?").id == "VQ1"
    free = resolve_instruction("  Is the sky visible?  ")
    assert free.id.startswith("free-") and free.text == "Is the sky visible?"
    assert resolve_instruction("Is the sky visible?") == free
    pool = pool_instructions()
    assert len(pool) >= 30 and len({p.id for p in pool}) == len(pool)
    assert resolve_instruction(pool[3].id) == pool[3]
    assert len(resolve_instructions(None)) == 10
    assert len(resolve_instructions(["pool"])) == len(pool)
    assert [i.id for i in resolve_instructions(["IC", "IC", "IU1"])] == ["IC", "IU1"]


def test_demo_answer_keys_cover_the_paper_instructions_in_order():
    # core.data cannot import core.models, so the demo world keeps its own copy of the ids
    from core.data.demo.scenes import INSTRUCTION_IDS

    assert INSTRUCTION_IDS == PAPER_IDS
