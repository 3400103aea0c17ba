"""The RSA noise-ceiling analog on the small demo world: the demo keeps its test images' single
repeats, the split-half RDM reliability per ROI is computed once per subject, and RSA is
normalised by it beside the encoders' ceiling; a dataset without repeats says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.results import rsa_ceiling as rc


def test_the_demo_keeps_the_test_repeats_whose_mean_is_the_response(demo_small):
    s = demo_small.subject("subj01")
    repeats = s.test_repeat_responses()
    test = s.split()[1]
    assert repeats.shape == (3, test.size, s.n_targets)
    # both stored int8-scaled: equal to the quantisation step of a z-scored single trial
    assert np.abs(repeats.mean(0) - s.responses[test]).max() < 0.05


def test_rdm_reliability_is_high_where_signal_is_planted_and_computed_once(demo_small, monkeypatch):
    c = rc.rdm_ceiling(demo_small, "subj01").set_index("roi")
    assert c.loc["V1", "reliability"] > 0.5  # retinotopic luminance: a strong shared geometry
    assert np.allclose(c["ceiling"], np.sqrt(np.clip(c["reliability"], 0, None)), equal_nan=True)
    assert (c["n_images"] == demo_small.subject("subj01").is_test.sum()).all()

    def no_recompute(*args, **kwargs):
        raise AssertionError("the stored ceiling should have been read")

    monkeypatch.setattr("core.encoding.rsa.rdm_reliability", no_recompute)
    again = rc.rdm_ceiling(demo_small, "subj01").set_index("roi")
    pd.testing.assert_frame_equal(again, c)


def test_rdm_reliability_of_pure_noise_repeats_is_near_zero(demo_small, monkeypatch):
    s = demo_small.subject("subj02")
    noise = np.random.default_rng(0).standard_normal(s.test_repeat_responses().shape)
    monkeypatch.setattr(s, "test_repeats", noise.astype(np.float32))
    monkeypatch.setattr(rc, "_path", lambda ds, subject, masks: rc.subdir("noise") / "c.json")
    c = rc.rdm_ceiling(demo_small, "subj02")
    assert c["reliability"].abs().max() < 0.2


def test_rsa_is_normalised_by_its_ceiling_beside_the_encoders(demo_small):
    rows = [{"subject": s, "model": "m", "layer": 1, "instruction": ins, "roi": roi,
             "nalign_mean": 0.5, "rsa": rsa}
            for s in ("subj01", "subj02") for roi in ("V1", "FFA")
            for ins, rsa in (("IU1", 0.2), ("IC", 0.1))]  # fmt: skip
    out = rc.metric_ceilings(demo_small, pd.DataFrame(rows), "m", 1).set_index(["roi", "instruction"])
    ceil = {s: rc.rdm_ceiling(demo_small, s).set_index("roi")["ceiling"] for s in ("subj01", "subj02")}
    expect = np.mean([0.2 / ceil[s]["V1"] for s in ceil])
    assert out.loc[("V1", "IU1"), "rsa_normalized"] == pytest.approx(expect)
    assert out.loc[("V1", "IU1"), "rsa_ceiling"] == pytest.approx(np.mean([ceil[s]["V1"] for s in ceil]))
    assert 0 < out.loc[("V1", "IU1"), "encoding_ceiling"] <= 1
    assert (out["n_subjects"] == 2).all()


def test_without_repeats_there_is_no_ceiling_and_the_reason_is_given(demo_small, monkeypatch):
    s = demo_small.subject("subj02")
    monkeypatch.setattr(s, "test_repeats", None)
    monkeypatch.setattr(rc, "_path", lambda ds, subject, masks: rc.subdir("none") / "c.json")
    assert rc.rdm_ceiling(demo_small, "subj02") is None
    assert "python -m core demo build" in rc.unavailable_reason(demo_small, "subj02")


def test_the_report_gives_the_ceiling_once_and_each_models_normalised_rsa(demo_small):
    from core.results.report import _rsa_ceiling_lines

    rows = [{"subject": s, "model": m, "layer": 1, "instruction": "IU1", "roi": roi,
             "nalign_mean": 0.5, "rsa": 0.2}
            for m in ("m1", "m2") for s in ("subj01", "subj02") for roi in ("V1", "FFA")]  # fmt: skip
    table = pd.DataFrame(rows)
    first = _rsa_ceiling_lines(table, "m1", 1, "demo")
    later = _rsa_ceiling_lines(table, "m2", 1, "demo", ceiling=False)
    assert sum(line.startswith("RSA ceiling per ROI") for line in first) == 1
    assert not any(line.startswith("RSA ceiling per ROI") for line in later)
    assert any("(m1, " in line for line in first) and any("(m2, " in line for line in later)
