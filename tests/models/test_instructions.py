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


def test_pool_is_grown_to_the_authors_size_with_their_groups():
    from core.models.instructions import AUTHOR_TASK_GROUPS, PROMPT_POOL

    pool = pool_instructions()
    assert len(pool) >= 66
    assert len(PROMPT_POOL) >= 13
    assert set(AUTHOR_TASK_GROUPS) <= set(PROMPT_POOL) and len(AUTHOR_TASK_GROUPS) == 13
    assert all(len(PROMPT_POOL[g]) >= 3 for g in AUTHOR_TASK_GROUPS)
    texts = [p.text for p in pool]
    assert len(set(texts)) == len(texts)
    # the paper's 10, verbatim, each under its own task
    for ins in PAPER_INSTRUCTIONS:
        assert ins.text in PROMPT_POOL[ins.task], ins.id
    # ids count within a group and stay stable as prompts are appended
    assert resolve_instruction("pool:image-captioning:1").text == (
        "Write a short caption for this image."
    )
    assert resolve_instruction("pool:object-localization:0").text == (
        "Where is the largest object in the image?"
    )


def test_a_free_text_id_resolves_to_its_text_once_seen(tmp_path, monkeypatch):
    from core.models.instructions import resolve_instruction

    monkeypatch.setenv("BRAINPROMPT_HOME", str(tmp_path))
    ins = resolve_instruction("Which object is closest to the camera?")
    again = resolve_instruction(ins.id)  # a fit spec, a results row or a link holds the id
    assert again == ins and again.text == "Which object is closest to the camera?"
    import pytest

    with pytest.raises(ValueError, match="unknown free-text instruction id"):
        resolve_instruction("free-0123abcd")
