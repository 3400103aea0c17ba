"""Noise ceilings the NSD way."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.noise_ceiling import (
    effective_inverse_repeats,
    ncsnr_from_trials,
    noise_ceiling_from_ncsnr,
)


def test_nc_from_ncsnr_matches_hand_computed_value():
    # ncsnr 1, 3 trials: NC = 1 / (1 + 1/3) = 0.75
    assert noise_ceiling_from_ncsnr(np.array([1.0]), 3)[0] == pytest.approx(0.75)


def test_mixed_repetitions_use_nsd_formula():
    # A=2 images x3, B=1 x2, C=1 x1: (2/3 + 1/2 + 1) / 4
    n = np.array([3, 3, 2, 1])
    assert effective_inverse_repeats(n) == pytest.approx((2 / 3 + 1 / 2 + 1) / 4)


def test_zero_ncsnr_gives_zero_ceiling():
    assert noise_ceiling_from_ncsnr(np.array([0.0]), 3)[0] == 0.0


def test_ncsnr_estimate_recovers_planted_value(rng):
    n_img, n_rep, snr = 2000, 3, np.array([0.0, 0.5, 1.0])
    signal = rng.standard_normal((n_img, 1, 3)) * snr
    trials = signal + rng.standard_normal((n_img, n_rep, 3))
    est = ncsnr_from_trials(trials)
    assert np.allclose(est, snr, atol=0.06)


def test_ragged_trials_match_the_regular_form(rng):
    trials = rng.standard_normal((50, 3, 4))
    index = np.repeat(np.arange(50), 3)
    assert np.allclose(ncsnr_from_trials(trials), ncsnr_from_trials(trials.reshape(150, 4), index))


def test_single_repeat_cannot_estimate_ncsnr(rng):
    with pytest.raises(ValueError, match="repeats"):
        ncsnr_from_trials(rng.standard_normal((10, 1, 2)))


def test_nonpositive_repeats_are_rejected():
    with pytest.raises(ValueError):
        effective_inverse_repeats(np.array([3, 0]))
