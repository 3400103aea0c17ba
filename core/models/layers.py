"""Hidden-state indices of a model: one rule for every layer a user, a grid or a link names.

A model with ``n_states`` hidden states (``n_layers + 1``: the embedding output first) has
indices ``0 .. n_states - 1``; negative indices count from the end (``-1`` is the last layer).
Anything outside ``-n_states .. n_states - 1`` is an error naming the model's range: it never
wraps around (``--layers 7`` on a 5-state model must not quietly fit layer 2).
"""

from __future__ import annotations

from collections.abc import Iterable

from core.models.registry import ModelError


class LayerRangeError(ModelError):
    """A layer index outside the model's hidden states."""


def layer_index(layer: int, n_states: int, model: str = "the model") -> int:
    """The non-negative hidden-state index of ``layer``.

    Parameters
    ----------
    layer : int
        Index; negative values count from the end.
    n_states : int
        Number of hidden states of the model (``n_layers + 1``).
    model : str
        Named in the error message.

    Returns
    -------
    index : int
        In ``0 .. n_states - 1``.

    Raises
    ------
    LayerRangeError
        When ``layer`` is outside ``-n_states .. n_states - 1``.
    """
    layer = int(layer)
    if not -n_states <= layer < n_states:
        raise LayerRangeError(
            f"layer {layer} is out of range for {model}: it has {n_states} hidden states, "
            f"layers 0-{n_states - 1} (or -{n_states} to -1 counting from the end)"
        )
    return layer + n_states if layer < 0 else layer


def layer_indices(layers: Iterable[int] | None, n_states: int, model: str = "the model") -> list[int]:
    """Sorted distinct non-negative indices of ``layers`` (None: every hidden state).

    Raises
    ------
    LayerRangeError
        When any layer is out of range (see :func:`layer_index`).
    """
    if layers is None:
        return list(range(n_states))
    return sorted({layer_index(x, n_states, model) for x in layers})
