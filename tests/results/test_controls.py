"""The controls read back (core.results.controls): the text-only control's share of each
instruction's alignment at CV-chosen layers, answer length vs alignment, what the image adds
over the text-only control, and the command that fits missing controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.results.controls import (
    MIN_SCORE,
    control_pair_rows,
    controls_hint,
    image_adds,
    instruction_pair_rows,
    length_alignment,
    text_control_shares,
)
from core.results.fit import FitSettings


def _rows(model: str, layer: int, cv: float, scores: dict[str, float], rois=("general", "V1", "FFA"),
          subjects=("subj01", "subj02")) -> list[dict]:  # fmt: skip
    """ROI rows of one model and layer: ``scores[instruction]`` in every ROI and subject."""
    return [{"subject": s, "model": model, "layer": layer, "roi": roi, "instruction": ins,
             "nalign_mean": v, "cv_score_mean": cv}
            for s in subjects for roi in rois for ins, v in scores.items()]  # fmt: skip


def _table() -> pd.DataFrame:
    """Model ``m`` (layer 2 chosen by CV, layer 1 scores higher on the test set) and its
    text-only control (layer 0 chosen by CV)."""
    rows = _rows("m", 1, 0.1, {"IU1": 0.9, "IC": 0.9, "IU2": 0.9})  # the test set's favourite
    rows += _rows("m", 2, 0.3, {"IU1": 0.6, "IC": 0.5, "IU2": 0.02})
    rows += _rows("text:m", 0, 0.2, {"IU1": 0.3, "IC": 0.5, "IU2": 0.01})
    rows += _rows("text:m", 1, 0.1, {"IU1": 0.0, "IC": 0.0, "IU2": 0.0})
    return pd.DataFrame(rows)


def test_the_share_divides_the_controls_score_by_the_instructions_at_cv_chosen_layers():
    shares = text_control_shares(_table(), "m")
    v1 = shares[shares["roi"] == "V1"].set_index("instruction")
    assert v1.loc["IU1", "share"] == pytest.approx(0.3 / 0.6)  # layer 2 vs layer 0, not test-best
    assert v1.loc["IC", "share"] == pytest.approx(1.0)
    assert (shares["layer"] == 2).all() and (shares["control_layer"] == 0).all()
    assert (shares["n_subjects"] == 2).all()


def test_no_share_where_the_instruction_scores_near_zero():
    shares = text_control_shares(_table(), "m")
    iu2 = shares[shares["instruction"] == "IU2"]
    assert (iu2["score"] < MIN_SCORE).all() and iu2["share"].isna().all()


def test_no_shares_without_the_control():
    table = _table()
    assert text_control_shares(table[table["model"] == "m"], "m").empty


def test_length_correlation_across_instructions_per_roi():
    table = pd.DataFrame(_rows("m", 2, 0.3, {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.5}))
    lengths = pd.DataFrame({"instruction": ["A", "B", "C", "D"],
                            "mean_tokens": [3.0, 5.0, 7.0, 6.0]})  # fmt: skip
    points, corr = length_alignment(table, lengths, "m")
    assert len(points) == 4 * 3  # one point per instruction and ROI
    v1 = corr.set_index("roi").loc["V1"]
    assert v1["n"] == 4
    assert v1["pearson_r"] == pytest.approx(1.0)  # planted: alignment = (length - 1) / 10
    assert v1["spearman_rho"] == pytest.approx(1.0)


def test_no_length_correlation_when_every_answer_has_the_same_length():
    table = pd.DataFrame(_rows("m", 2, 0.3, {"A": 0.2, "B": 0.4, "C": 0.6}))
    lengths = pd.DataFrame({"instruction": ["A", "B", "C"], "mean_tokens": [4.0, 4.0, 4.0]})
    _, corr = length_alignment(table, lengths, "m")
    assert corr["pearson_r"].isna().all() and (corr["n"] == 3).all()


def test_the_hint_names_the_exact_command_with_the_grids_settings():
    table = _table()
    hint = controls_hint("demo", table[table["model"] != "text:m"], "m",
                         FitSettings(alphas="paper"))  # fmt: skip
    assert "text-only control (text:m)" in hint and "length control (length:m)" in hint
    assert ("python -m core run --dataset demo --models m text:m length:m "
            "--instructions IU1 IC IU2 --alphas paper") in hint  # fmt: skip


def test_no_hint_when_both_controls_are_fitted():
    table = pd.concat([_table(), pd.DataFrame(_rows("length:m", 0, 0.1, {"IU1": 0.1, "IC": 0.1,
                                                                         "IU2": 0.1}))])  # fmt: skip
    assert controls_hint("demo", table, "m", FitSettings()) == ""


def _partition_rows() -> pd.DataFrame:
    base = {"model": "m", "layer": 2, "joint": "concat", "roi": "V1"}
    rows = [
        {**base, "subject": s, "a": "IC", "b": "IC", "model_b": "text:m", "layer_b": 0,
         "unique_a": ua, "shared": 0.1, "unique_b": 0.0, "r2_a": 0.1 + ua, "r2_b": 0.1,
         "r2_ab": 0.1 + ua}
        for s, ua in (("subj01", 0.1), ("subj02", 0.3))
    ]  # fmt: skip
    rows.append({**base, "subject": "subj01", "a": "IC", "b": "IU2", "model_b": "m",
                 "layer_b": 2, "unique_a": 0.0, "shared": 0.0, "unique_b": 0.0, "r2_a": 0.0,
                 "r2_b": 0.0, "r2_ab": 0.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_control_pairs_and_instruction_pairs_split_the_partitions_table():
    parts = _partition_rows()
    assert control_pair_rows(parts)["b"].tolist() == ["IC", "IC"]
    assert instruction_pair_rows(parts)["b"].tolist() == ["IU2"]
    old = parts[parts["model_b"] == "m"].drop(columns=["model_b"])  # written before model_b
    assert len(instruction_pair_rows(old)) == 1 and control_pair_rows(old).empty


def test_image_adds_is_the_unique_share_of_the_instruction_over_its_text_control():
    adds = image_adds(_partition_rows(), "m")
    assert len(adds) == 1
    row = adds.iloc[0]
    assert row["instruction"] == "IC" and row["n_subjects"] == 2 and row["control_layer"] == 0
    assert row["unique"] == pytest.approx(0.2)
    assert row["image_share"] == pytest.approx(0.2 / 0.3)
    assert np.isfinite(row["r2_text"])


def test_the_hint_says_when_the_command_line_cannot_give_the_settings_back():
    table = _table()
    hint = controls_hint("demo", table[table["model"] != "text:m"], "m", FitSettings(n_boot=200))
    assert "n_boot=200" in hint and "GridConfig" in hint
