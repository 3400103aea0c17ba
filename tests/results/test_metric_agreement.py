"""The 'metrics agree?' view survives an instruction RSA cannot score (a constant feature, as
the length control of an instruction whose answers never change length)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.results.views import metric_agreement


def test_an_instruction_without_an_rsa_score_is_left_out_of_the_rankings():
    rows = [{"subject": s, "model": "m", "layer": 0, "roi": roi, "instruction": ins,
             "nalign_mean": v, "rsa": np.nan if ins == "IU1" else v / 2}
            for s in ("subj01", "subj02") for roi in ("V1", "FFA")
            for ins, v in (("IU1", 0.9), ("IC", 0.5), ("VQ2", 0.3), ("SR", 0.1))]  # fmt: skip
    agree = metric_agreement(pd.DataFrame(rows), "m", 0)
    assert list(agree["roi"]) == ["V1", "FFA"]
    assert (agree["n_instructions"] == 3).all() and np.allclose(agree["tau"], 1.0)
    assert (agree["top_a"] == "IC").all()  # IU1 has no RSA score, so it is not ranked
