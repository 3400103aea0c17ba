"""RSA per ROI: RDMs and Spearman against the slow way, planted structure, ceiling, Kendall flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.encoding.rsa import (
    discordant_pairs,
    flag_flips,
    ranking_agreement,
    rdm,
    rdm_reliability,
    roi_rsa,
    rsa_score,
)


def slow_rdm(x: np.ndarray) -> np.ndarray:
    """1 - np.corrcoef of every image pair i < j, one pair at a time."""
    n = x.shape[0]
    return np.array([1 - np.corrcoef(x[i], x[j])[0, 1] for i in range(n) for j in range(i + 1, n)])


def planted(seed: int = 0, n_images: int = 60, n_targets: int = 40, noise: float = 1.0):
    """Responses and an embedding sharing a 4-d latent image structure."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_images, 4))
    signal = latent @ rng.standard_normal((4, n_targets))
    responses = signal + noise * rng.standard_normal((n_images, n_targets))
    embedding = latent @ rng.standard_normal((4, 32)) + 0.5 * rng.standard_normal((n_images, 32))
    return signal, responses, embedding


def test_rdm_equals_pairwise_correlation_distance():
    x = np.random.default_rng(1).standard_normal((12, 7)) + 3.0
    np.testing.assert_allclose(rdm(x), slow_rdm(x), rtol=0, atol=1e-12)


def test_rsa_score_equals_scipy_spearman_on_slow_upper_triangles():
    _, responses, embedding = planted()
    a, b = slow_rdm(responses[:25]), slow_rdm(embedding[:25])
    expected = stats.spearmanr(a, b).statistic
    assert rsa_score(rdm(responses[:25]), rdm(embedding[:25])) == pytest.approx(expected, abs=1e-12)


def test_rsa_score_handles_ties_like_scipy():
    a = np.array([0.1, 0.1, 0.3, 0.2, 0.2, 0.5])
    b = np.array([0.2, 0.1, 0.1, 0.4, 0.3, 0.3])
    assert rsa_score(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_planted_shared_structure_gives_high_rsa_and_shuffled_gives_none():
    _, responses, embedding = planted()
    masks = {"ROI": np.ones(responses.shape[1], bool)}
    shuffled = embedding[np.random.default_rng(3).permutation(embedding.shape[0])]
    table = roi_rsa(responses, {"planted": embedding, "shuffled": shuffled}, masks)
    rsa = table.set_index("instruction")["rsa"]
    assert rsa["planted"] > 0.6
    assert abs(rsa["shuffled"]) < 0.1


def test_roi_rsa_uses_only_the_roi_targets():
    _, responses, embedding = planted()
    noise = np.random.default_rng(4).standard_normal(responses.shape)
    both = np.concatenate([responses, noise], axis=1)
    t = responses.shape[1]
    masks = {"signal": np.arange(2 * t) < t, "noise": np.arange(2 * t) >= t}
    rsa = roi_rsa(both, embedding, masks).set_index("roi")["rsa"]
    assert rsa["signal"] == pytest.approx(rsa_score(rdm(responses), rdm(embedding)))
    assert abs(rsa["noise"]) < 0.1


def test_ceiling_makes_the_noise_free_model_score_about_one():
    # The noise-free signal is the best possible model: its normalized RSA should be ~1.
    rng = np.random.default_rng(5)
    signal, _, _ = planted(n_images=60)
    repeats = signal[None] + 2.0 * rng.standard_normal((4, *signal.shape))
    masks = {"ROI": np.ones(signal.shape[1], bool)}
    table = roi_rsa(repeats.mean(0), signal, masks, repeats=repeats, n_splits=10)
    assert 0.3 < table["ceiling"].iloc[0] < 1.0
    assert table["normalized"].iloc[0] == pytest.approx(1.0, abs=0.1)


def test_ceiling_of_pure_noise_repeats_is_near_zero():
    repeats = np.random.default_rng(6).standard_normal((3, 50, 30))
    table = rdm_reliability(repeats, {"ROI": np.ones(30, bool)}, n_splits=5)
    assert abs(table["split_half"].iloc[0]) < 0.1


def test_missing_repeats_are_skipped_and_images_with_one_repeat_dropped():
    signal, _, _ = planted(n_images=30)
    repeats = signal[None] + np.random.default_rng(7).standard_normal((3, *signal.shape))
    repeats[2, :10] = np.nan  # images 0-9 have 2 repeats
    repeats[1, :4] = np.nan  # images 0-3 have 1 repeat: dropped
    table = rdm_reliability(repeats, {"ROI": np.ones(signal.shape[1], bool)}, n_splits=3)
    assert table["n_images"].iloc[0] == 26
    assert np.isfinite(table["reliability"].iloc[0])


def test_constant_image_pattern_is_an_error():
    x = np.random.default_rng(8).standard_normal((5, 4))
    x[2] = 1.0
    with pytest.raises(ValueError, match="constant pattern"):
        rdm(x)


def test_embedding_with_other_images_is_an_error():
    _, responses, embedding = planted()
    with pytest.raises(ValueError, match="embeddings 'x'"):
        roi_rsa(responses, {"x": embedding[:-1]}, {"ROI": np.ones(responses.shape[1], bool)})


# --------------------------------------------------------------------------- rankings


def rankings():
    """Encoding and RSA scores of 4 instructions in 3 ROIs: same order, reversed, winner swap."""
    enc = pd.DataFrame(
        {"V1": [0.4, 0.3, 0.2, 0.1], "FFA": [0.4, 0.3, 0.2, 0.1], "PPA": [0.4, 0.3, 0.2, 0.1]},
        index=["IU1", "IC", "VQA", "IU2"],
    )
    rsa = pd.DataFrame(
        {"V1": [0.9, 0.8, 0.7, 0.6], "FFA": [0.1, 0.2, 0.3, 0.4], "PPA": [0.7, 0.8, 0.6, 0.5]},
        index=["IU1", "IC", "VQA", "IU2"],
    )
    return enc, rsa


def test_kendall_tau_per_roi_equals_scipy():
    enc, rsa = rankings()
    table = ranking_agreement(enc, rsa).set_index("roi")
    for roi in enc.columns:
        assert table.loc[roi, "tau"] == pytest.approx(stats.kendalltau(enc[roi], rsa[roi]).statistic)
    assert table.loc["V1", "tau"] == 1.0 and table.loc["FFA", "tau"] == -1.0


def test_flag_flips_marks_reversed_rankings_and_changed_winners():
    enc, rsa = rankings()
    flags = flag_flips(ranking_agreement(enc, rsa)).set_index("roi")
    assert flags["flip"].to_dict() == {"V1": False, "FFA": True, "PPA": False}
    assert flags["winner_changed"].to_dict() == {"V1": False, "FFA": True, "PPA": True}
    assert flags.loc["PPA", "n_discordant"] == 1


def test_discordant_pairs_lists_the_pairs_ordered_oppositely():
    a = {"IC": 0.4, "IU1": 0.3, "VQA": 0.2}
    b = {"IC": 0.1, "IU1": 0.3, "VQA": 0.2}
    assert sorted(discordant_pairs(a, b)) == [("IC", "IU1"), ("IC", "VQA")]
