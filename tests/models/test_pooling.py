import numpy as np
import torch

from core.models.pooling import generated_lengths, pool_hidden_states, pooled_counts


def _fake(batch=2, prompt=5, steps=4, layers=3, d=2):
    """Step t >= 1 of layer l holds value 100*l + t for every item; step 0 holds -1."""
    hs = [tuple(torch.full((batch, prompt, d), -1.0) for _ in range(layers))]
    for t in range(1, steps):
        hs.append(tuple(torch.full((batch, 1, d), 100.0 * layer + t) for layer in range(layers)))
    return tuple(hs)


def test_lengths_stop_at_first_eos():
    new = torch.tensor([[5, 6, 2, 0], [5, 6, 7, 8], [2, 0, 0, 0]])
    assert generated_lengths(new, [2]).tolist() == [3, 4, 1]
    assert generated_lengths(new, []).tolist() == [4, 4, 4]


def test_mean_excludes_prompt_and_padding_after_eos():
    hs = _fake(batch=2, steps=4)
    # item 0: 3 tokens ending with EOS -> 2 content states ; item 1: 4 tokens -> 3
    emb = pool_hidden_states(hs, np.array([2, 3]), layers=[0, 2], pooling="mean")
    assert emb.shape == (2, 2, 2)
    # item 0: 3 tokens -> steps 1, 2 ; item 1: 4 tokens -> steps 1, 2, 3
    assert np.allclose(emb[0, 0], 1.5) and np.allclose(emb[1, 0], 2.0)
    assert np.allclose(emb[0, 1], 201.5)
    last = pool_hidden_states(hs, np.array([2, 3]), layers=[1], pooling="last")
    assert np.allclose(last[:, 0, 0], [102, 103])


def test_single_token_falls_back_to_prompt_state():
    hs = _fake(batch=2, steps=3)
    emb = pool_hidden_states(hs, np.array([0, 2]), layers=[1])
    assert np.allclose(emb[0], -1.0) and np.allclose(emb[1], 101.5)


def test_budget_cuts_answers_and_truncated_answers_keep_their_last_token():
    # budget 4; one-pass generated 5 tokens (one beyond the budget)
    new = torch.tensor([[5, 6, 7, 8, 9], [5, 2, 0, 0, 0], [5, 6, 7, 8, 2]])
    lengths = generated_lengths(new, [2], max_new_tokens=4)
    assert lengths.tolist() == [4, 2, 4]  # the EOS beyond the budget is not part of the answer
    # a truncated 4-token answer pools 4 states; one ended by EOS pools its content only
    assert pooled_counts(new, lengths, [2]).tolist() == [4, 1, 4]


def test_a_truncated_four_token_answer_pools_four_positions():
    hs = _fake(batch=1, steps=6)  # steps 1..5: the budget of 4 plus the one extra step
    new = torch.tensor([[5, 6, 7, 8, 9]])
    counts = pooled_counts(new, generated_lengths(new, [2], max_new_tokens=4), [2])
    emb = pool_hidden_states(hs, counts, layers=[0])
    assert np.allclose(emb[0, 0], np.mean([1, 2, 3, 4]))


def test_pooling_more_states_than_generate_returned_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="response states asked"):
        pool_hidden_states(_fake(batch=1, steps=3), np.array([3]), layers=[0])
