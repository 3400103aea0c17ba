"""The version of the code that turns an (image, instruction) into a response embedding.

Prompt building, image preprocessing, decoding and pooling live in :mod:`core.models.adapters`,
:mod:`core.models.pooling` and :func:`core.data.images.sanitize_image`. What they compute is part
of every embedding's identity, so :data:`EMBEDDING_CODE_VERSION` is part of every shard key
(:func:`core.features.store.shard_fields`): bump it when a change alters an embedding, and old
shards are never read again.

A test (``tests/models/test_code_version.py``) fails whenever that code changes while
:data:`EMBEDDING_CODE_DIGEST` still holds the old digest. The digest is taken over the syntax
tree with docstrings removed (comments and formatting never enter it), so a reworded docstring
or comment never forces a re-extraction; any change to the code itself makes the author decide:
bump the version (embeddings change: a GPU-day of extraction is redone) or record the new digest
alone (a refactor that computes the same numbers).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

#: Bumped whenever prompt building, preprocessing, decoding or pooling changes an embedding.
#: 3: answers cut at the token budget keep their last token; vision-tower pooling per tower type.
EMBEDDING_CODE_VERSION = 3
#: :func:`embedding_code_digest` of the code that :data:`EMBEDDING_CODE_VERSION` describes.
EMBEDDING_CODE_DIGEST = "32bee7597a9e50ef4a5cf6c7442ce2629a060896ed26d6d1d0ca0708f84f22a0"

_ROOT = Path(__file__).resolve().parent.parent
#: The files whose code determines an embedding (relative to ``core/``).
EMBEDDING_CODE_FILES = (
    "models/pooling.py",
    "data/images.py",
    *sorted(str(p.relative_to(_ROOT)) for p in (_ROOT / "models" / "adapters").glob("*.py")),
)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_digest(source: str) -> str:
    """SHA-256 of a module's syntax tree without docstrings (comments and layout ignored).

    Parameters
    ----------
    source : str
        Python source.

    Returns
    -------
    digest : str
        64 hex characters.
    """
    tree = _strip_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def embedding_code_digest() -> str:
    """The digest of every file in :data:`EMBEDDING_CODE_FILES`, in order (see the module
    docstring)."""
    h = hashlib.sha256()
    for rel in EMBEDDING_CODE_FILES:
        h.update(rel.encode())
        h.update(code_digest((_ROOT / rel).read_text()).encode())
    return h.hexdigest()
