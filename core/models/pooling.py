"""Response embeddings from ``generate`` hidden states: mean (or last) over generated tokens.

``model.generate(..., output_hidden_states=True, return_dict_in_generate=True)`` returns
``hidden_states`` as a tuple over generation steps; step 0 holds the prompt (``n_layers + 1`` tensors of
shape (batch, prompt_len, d)), and step ``t >= 1`` holds the forward pass of generated token ``t - 1``
(tensors of shape (batch, 1, d)). The response states pooled are those of the answer's *content*
tokens (:func:`pooled_counts`): an answer that ended with its end-of-sequence token after ``n``
tokens pools ``n - 1`` states (steps ``1 .. n - 1``; the end-of-sequence token is not content), and
an answer cut at the token budget pools all ``n`` of its tokens (steps ``1 .. n``). ``generate``
never feeds back its last token, so one-pass extraction asks for one token more than the budget
(:meth:`core.models.adapters.base.Adapter.generation_kwargs`) and keeps only the budget's tokens
as the answer. Step 0 (prompt and image positions) is excluded, and in a batch each item counts
only its own steps, never the padding after its end of sequence, so batched and one-by-one
results agree.

Two-phase extraction (:func:`pool_sequence_states`) pools the same states from one teacher-forced
forward pass over prompt + generated tokens, of hidden states (batch, seq, d): step ``t >= 1`` ran
generated token ``t - 1``, whose input position is ``n_prompt + t - 1``, so the ``c`` pooled steps
``1 .. c`` are positions ``n_prompt .. n_prompt + c - 1`` (the inputs of generated tokens
``0 .. c - 1``), and the fallback for an answer without content (an immediate end of sequence),
step 0's last position, is position ``n_prompt - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POOLINGS = ("mean", "last")


def generated_lengths(
    new_tokens, eos_ids: Sequence[int], max_new_tokens: int | None = None
) -> np.ndarray:
    """Number of tokens in each item's answer, its first end-of-sequence token included.

    Parameters
    ----------
    new_tokens : tensor of shape (batch, n_steps), int
        The generated part of ``generate``'s ``sequences``.
    eos_ids : sequence of int
        End-of-sequence token ids.
    max_new_tokens : int, optional
        The token budget: answers are cut there (one-pass extraction generates one token more
        than the budget to obtain the last answer token's state; see the module docstring).

    Returns
    -------
    lengths : array of shape (batch,), int64
        Between 1 and ``min(n_steps, max_new_tokens)``.
    """
    import torch

    tokens = new_tokens.detach().cpu()
    if max_new_tokens is not None:
        tokens = tokens[:, : int(max_new_tokens)]
    n_steps = tokens.shape[1]
    if not eos_ids or n_steps == 0:
        return np.full(tokens.shape[0], n_steps, dtype=np.int64)
    is_eos = torch.isin(tokens, torch.tensor(list(eos_ids), dtype=tokens.dtype))
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1) + 1, torch.tensor(n_steps))
    return first.numpy().astype(np.int64)


def pooled_counts(new_tokens, lengths: np.ndarray, eos_ids: Sequence[int]) -> np.ndarray:
    """Number of content tokens of each answer: the response states that are pooled.

    Parameters
    ----------
    new_tokens : tensor of shape (batch, n_steps), int
    lengths : array of shape (batch,), int
        From :func:`generated_lengths`.
    eos_ids : sequence of int

    Returns
    -------
    counts : array of shape (batch,), int64
        ``lengths - 1`` for answers that end with an end-of-sequence token, ``lengths`` for
        answers cut at the token budget (their last token is content and is kept).
    """
    tokens = new_tokens.detach().cpu().numpy()
    lengths = np.asarray(lengths, dtype=np.int64)
    last = tokens[np.arange(tokens.shape[0]), np.maximum(lengths - 1, 0)]
    ended = np.isin(last, np.asarray(list(eos_ids), dtype=tokens.dtype)) & (lengths > 0)
    return lengths - ended.astype(np.int64)


def pool_hidden_states(
    hidden_states, counts: np.ndarray, layers: Sequence[int], pooling: str = "mean"
) -> np.ndarray:
    """Pool each item's response states per layer.

    Parameters
    ----------
    hidden_states : tuple over steps of tuple over (n_layers + 1) tensors
        As returned by ``generate``; step 0 of shape (batch, prompt_len, d), later steps
        (batch, 1, d).
    counts : array of shape (batch,), int
        Response states to pool per item (steps ``1 .. count``), from :func:`pooled_counts`.
    layers : sequence of int
        Hidden-state indices to keep (0 = embeddings output, ``n_layers`` = last layer).
    pooling : {"mean", "last"}
        Mean over the item's response states, or the last of them.

    Returns
    -------
    embeddings : array of shape (batch, len(layers), d), float32
        An item with no content token (an immediate end of sequence) falls back to the prompt's
        last position (the state that produced that token).

    Raises
    ------
    ValueError
        Unknown pooling, or a count beyond the steps ``generate`` returned.
    """
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
    n_steps = len(hidden_states)
    batch = hidden_states[0][0].shape[0]
    if len(counts) and int(np.max(counts)) > n_steps - 1:
        raise ValueError(
            f"{int(np.max(counts))} response states asked, generate returned {n_steps - 1}"
        )
    counts = torch.as_tensor(np.asarray(counts), dtype=torch.long)
    steps = torch.arange(1, n_steps)
    mask = (steps[:, None] <= counts[None, :]).float()  # (n_steps - 1, batch)
    out = []
    for layer in layers:
        prompt_last = hidden_states[0][layer][:, -1, :].float().cpu()  # (batch, d)
        if n_steps > 1:
            states = torch.stack(
                [hidden_states[t][layer][:, -1, :].float().cpu() for t in range(1, n_steps)]
            )  # (n_steps - 1, batch, d)
            if pooling == "mean":
                total = (states * mask[:, :, None]).sum(0)
                pooled = total / counts.clamp(min=1)[:, None].float()
            else:
                idx = (counts - 1).clamp(min=0)
                pooled = states[idx, torch.arange(batch)]
            pooled = torch.where((counts > 0)[:, None], pooled, prompt_last)
        else:
            pooled = prompt_last
        out.append(pooled)
    return torch.stack(out, 1).numpy().astype(np.float32)


def pool_sequence_states(
    hidden_states,
    n_prompt: int,
    counts: np.ndarray,
    layers: Sequence[int],
    pooling: str = "mean",
) -> np.ndarray:
    """Pool each item's response states from one teacher-forced forward pass (two-phase).

    The same states as :func:`pool_hidden_states` takes from ``generate``: for an item with ``c``
    content tokens, the states at the input positions of its generated tokens ``0 .. c - 1``
    (``n_prompt .. n_prompt + c - 1``); with ``c = 0``, the prompt's last position
    (``n_prompt - 1``).

    Parameters
    ----------
    hidden_states : tuple over (n_layers + 1) of tensors of shape (batch, seq, d)
        The forward pass's hidden states over prompt (left padded, ``n_prompt`` positions)
        followed by the fed-back response tokens; ``seq >= n_prompt + max(counts)``.
    n_prompt : int
        Padded prompt length.
    counts : array of shape (batch,), int
        Content tokens per item, from :func:`pooled_counts`.
    layers : sequence of int
        Hidden-state indices to keep.
    pooling : {"mean", "last"}

    Returns
    -------
    embeddings : array of shape (batch, len(layers), d), float32
    """
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
    first = hidden_states[0]
    batch, device = first.shape[0], first.device
    counts = torch.as_tensor(np.maximum(np.asarray(counts), 0), dtype=torch.long)
    width = int(counts.max()) if batch else 0
    if n_prompt + width > first.shape[1]:
        raise ValueError(f"hidden states cover {first.shape[1]} positions, need {n_prompt + width}")
    counts = counts.to(device)
    mask = (torch.arange(width, device=device)[None, :] < counts[:, None]).float()  # (batch, width)
    rows = torch.arange(batch, device=device)
    out = []
    for layer in layers:
        h = hidden_states[layer]
        prompt_last = h[:, n_prompt - 1, :].float()  # (batch, d)
        if width > 0:
            states = h[:, n_prompt : n_prompt + width, :].float()  # (batch, width, d)
            if pooling == "mean":
                total = (states * mask[:, :, None]).sum(1)
                pooled = total / counts.clamp(min=1)[:, None].float()
            else:
                pooled = states[rows, (counts - 1).clamp(min=0)]
            pooled = torch.where((counts > 0)[:, None], pooled, prompt_last)
        else:
            pooled = prompt_last
        out.append(pooled.cpu())
    return torch.stack(out, 1).numpy().astype(np.float32)
