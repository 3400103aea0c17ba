"""Chart specs and subject summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.viz.charts import (
    ROI_SELECTION,
    grouped_roi_bars,
    heatmap,
    layer_curves,
    partition_bars,
    summarise_subjects,
    venn_figure,
)


@pytest.fixture
def table():
    rows = []
    for s, shift in (("subj01", 0.0), ("subj02", 0.2)):
        for roi in ("V1", "FFA"):
            for inst in ("IU1", "VQ2"):
                for layer in (0, 1):
                    rows.append(
                        {
                            "subject": s,
                            "roi": roi,
                            "instruction": inst,
                            "layer": layer,
                            "value": 0.5 + shift,
                        }
                    )
    return pd.DataFrame(rows)


def test_summary_mean_and_sem_across_subjects(table):
    out = summarise_subjects(table, ["roi", "instruction"], "value")
    row = out[(out.roi == "V1") & (out.instruction == "IU1")].iloc[0]
    assert row["mean"] == pytest.approx(0.6)
    assert row["sem"] == pytest.approx(np.std([0.5, 0.7], ddof=1) / np.sqrt(2))
    assert row["n_subjects"] == 2  # the two layers of a subject are averaged first


def test_single_subject_has_zero_sem(table):
    out = summarise_subjects(
        table[table.subject == "subj01"], ["roi", "instruction", "layer"], "value"
    )
    assert (out["sem"] == 0).all()


def test_bar_chart_has_roi_selection(table):
    s = summarise_subjects(table, ["roi", "instruction"], "value")
    spec = grouped_roi_bars(s, "instruction", "alignment", ["V1", "FFA"], ceiling=1.0).to_dict()
    assert ROI_SELECTION in str(spec)


def test_heatmap_layer_and_partition_specs_build(table):
    s = summarise_subjects(table, ["roi", "instruction"], "value")
    assert heatmap(s, "instruction", ["V1", "FFA"], "a").to_dict()
    s2 = summarise_subjects(table, ["roi", "instruction", "layer"], "value")
    assert layer_curves(s2, "instruction", "a", ["V1", "FFA"]).to_dict()
    parts = pd.DataFrame(
        {
            "roi": ["V1"] * 3,
            "part": ["unique IC", "shared", "unique IU2"],
            "value": [0.1, 0.2, 0.05],
        }
    )
    assert partition_bars(parts, "IC", "IU2", ["V1"]).to_dict()


def test_venn_figure_renders():
    fig = venn_figure(0.1, 0.3, 0.05, "IC", "IU2", "FFA")
    assert len(fig.axes[0].patches) == 2


def test_venn_circles_are_drawn_to_scale():
    """Circle areas are R²(A) and R²(B) and the overlap is the shared part, on a scale that
    several figures can share; negative parts keep a drawable layout."""
    from core.viz.charts import _lens_area, venn_layout

    ra, rb, d = venn_layout(0.1, 0.3, 0.05, scale=0.8)
    assert np.isclose(np.pi * ra**2, np.pi * 0.4 / 0.8) and np.isclose(rb**2, 0.35 / 0.8)
    assert np.isclose(_lens_area(ra, rb, d), np.pi * 0.3 / 0.8, rtol=1e-6)
    small = venn_layout(0.01, 0.03, 0.005, scale=0.8)
    assert small[0] < ra / 2  # a ROI with a tenth of the variance gets smaller circles
    assert venn_layout(0.02, -0.01, 0.03)[2] == pytest.approx(sum(venn_layout(0.02, -0.01,
                                                                              0.03)[:2]))
    ra, rb, d = venn_layout(-0.01, 0.05, 0.02)  # negative unique A: A inside B
    assert ra < rb and d == pytest.approx(rb - ra)
    assert venn_layout(0.0, 0.0, 0.0) == (0.0, 0.0, 0.0)
