"""Every "best" is chosen by the cross-validated training score and only reported on the test
set: where the two disagree, the CV choice wins."""

import numpy as np
import pandas as pd
import pytest

from core.results.selection import (
    best_layers,
    best_target_labels,
    chosen_instructions,
    rank_instructions,
)


def _table() -> pd.DataFrame:
    """Two subjects, one model, one layer, ROI FFA: IC has the higher test score, VQ2 the
    higher cross-validated training score (IC's test win is the winner's curse)."""
    rows = []
    for subject in ("subj01", "subj02"):
        for ins, test, cv in (("IC", 0.80, 0.10), ("VQ2", 0.70, 0.30), ("IU1", 0.50, 0.05)):
            for roi in ("FFA", "general"):
                rows.append({"subject": subject, "model": "m", "layer": 1, "roi": roi,
                             "instruction": ins, "nalign_mean": test, "r_mean": test / 2,
                             "cv_score_mean": cv})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_best_instruction_is_the_cv_argmax_where_the_test_score_disagrees():
    ranked = rank_instructions(_table())
    ffa = ranked[ranked["roi"] == "FFA"]
    assert ffa["instruction"].tolist() == ["VQ2", "IC", "IU1"]
    assert ffa["nalign_mean"].iloc[0] == pytest.approx(0.70)  # reported on the test set
    chosen = chosen_instructions(_table())
    assert set(chosen["instruction"]) == {"VQ2"}


def test_best_instruction_mode_of_the_model_comparison_uses_cv():
    from core.results.views import model_comparison

    rows = model_comparison(_table(), "best per model", "best instruction per ROI")
    assert set(rows["instruction"]) == {"VQ2"}
    assert rows["nalign_mean"].tolist() == pytest.approx([0.70] * len(rows))


def test_reproduce_best_instruction_table_uses_cv():
    from core.pipeline.reproduce import best_instruction_table

    out = best_instruction_table(_table(), "m")
    row = out[out["roi"] == "FFA"].iloc[0]
    assert row["best"] == "VQ2" and row["second"] == "IC"
    assert row["best_value"] == pytest.approx(0.70)


def test_report_names_the_cv_choice():
    from core.results.report import format_report

    text = format_report(_table())
    line = next(x for x in text.splitlines() if x.startswith("best instructions"))
    assert "FFA: VQ2, IC" in line


def test_per_target_labels_are_the_cv_argmax():
    cv = np.array([[0.1, np.nan, 0.5], [0.2, np.nan, 0.4]])
    assert best_target_labels(cv).tolist() == [1, -1, 0]


def test_best_layer_is_chosen_by_cv():
    t = _table()
    t2 = t.copy()
    t2["layer"] = 2
    t2["cv_score_mean"] -= 0.01
    t2["nalign_mean"] += 0.5  # far better on the test set, slightly worse in CV
    assert best_layers(pd.concat([t, t2])) == {"m": 1}


def test_the_inspectors_best_instruction_is_the_cv_argmax():
    from core.dashboard.inspector import AlignmentCube, best_instruction

    shape = (3, 1, 2)  # IC, VQ2, image x one layer x two targets
    r = np.zeros(shape, np.float32)
    cv = np.zeros(shape, np.float32)
    r[0, 0, 0], r[1, 0, 0], r[2, 0, 0] = 0.9, 0.5, 0.99  # IC wins on test, the image highest
    cv[0, 0, 0], cv[1, 0, 0], cv[2, 0, 0] = 0.1, 0.3, 0.9  # VQ2 wins in CV among instructions
    q = np.full(shape, 0.01, np.float32)
    cube = AlignmentCube(["IC", "VQ2", "image"], [4], nalign=r, r=r, q=q,
                         alpha=np.ones(shape, np.float32), nc=np.ones(2, np.float32), cv=cv)  # fmt: skip
    assert best_instruction(cube, 0, 4) == ("VQ2", True)
