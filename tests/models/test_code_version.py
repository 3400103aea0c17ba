"""The embedding code's version guard: code changes force a decision, docstrings never do."""

from core.models.code_version import (
    EMBEDDING_CODE_DIGEST,
    EMBEDDING_CODE_VERSION,
    code_digest,
    embedding_code_digest,
)

SOURCE = '''
"""Module doc."""


def pool(states, counts):
    """Mean of the first counts states."""
    # a comment
    return states[:counts].mean(0)
'''


def test_recorded_digest_matches_the_embedding_code():
    got = embedding_code_digest()
    assert got == EMBEDDING_CODE_DIGEST, (
        "prompt-building / preprocessing / pooling code changed (core/models/code_version.py "
        f"lists the files). If embeddings change, bump EMBEDDING_CODE_VERSION (now "
        f"{EMBEDDING_CODE_VERSION}); either way record EMBEDDING_CODE_DIGEST = {got!r}"
    )


def test_docstrings_comments_and_layout_do_not_change_the_digest():
    reworded = SOURCE.replace("Mean of the first counts states.", "Average the states.")
    reworded = reworded.replace("# a comment", "# another comment\n\n")
    reworded = reworded.replace('"""Module doc."""', '"""A reworded module docstring."""')
    assert code_digest(reworded) == code_digest(SOURCE)


def test_a_changed_pooling_rule_changes_the_digest():
    changed = SOURCE.replace("states[:counts]", "states[: counts - 1]")
    assert code_digest(changed) != code_digest(SOURCE)


def test_the_version_is_part_of_every_shard_key(monkeypatch):
    import core.models.code_version as cv
    from core.features.identity import extraction_identity

    before = extraction_identity("cpu", "float32", "one-pass", True, generative=True)
    monkeypatch.setattr(cv, "EMBEDDING_CODE_VERSION", EMBEDDING_CODE_VERSION + 1)
    after = extraction_identity("cpu", "float32", "one-pass", True, generative=True)
    assert before != after
