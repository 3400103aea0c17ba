"""``roi_winners`` computed directly (one t-test per ROI, each fit's bootstrap loaded once) gives
the same table as through ``instruction_stars`` per ROI (the general path it replaced), on
several subjects, one subject, missing values, a fit without a stored bootstrap and repeated
rows; and it loads each fit's bootstrap once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core.results.fit as fit
import core.results.views as views
from core.storage import ArtifactError


def _world(tmp_path, monkeypatch, n_rois=24, n_ins=10, n_sub=4, n_boot=1000, seed=0,
           missing=0.0, no_boot=()):  # fmt: skip
    rng = np.random.default_rng(seed)
    rois = ["general"] + [f"roi{i:02d}" for i in range(n_rois - 1)]
    ins = [f"ins{i}" for i in range(n_ins)]
    subs = [f"subj{i + 1:02d}" for i in range(n_sub)]
    rows = []
    for s in subs:
        for i in [*ins, fit.IMAGE]:
            for r in rois:
                v = rng.normal(0.5, 0.02) + (0.03 if i == "ins0" and r < "roi05" else 0.0)
                rows.append({"dataset": "fake", "model": "m", "layer": 3, "instruction": i,
                             "roi": r, "subject": s,
                             "nalign_mean": np.nan if rng.random() < missing else v,
                             "cv_score_mean": v + rng.normal(0, 0.01)})  # fmt: skip
    boots = {(s, i): rng.normal(0.5 + (0.002 if i == "ins0" else 0), 0.01, (n_boot, n_rois))
             for s in subs for i in ins if (s, i) not in no_boot}  # fmt: skip
    loads = []

    def load(ds, spec, settings):
        loads.append((spec.subject, spec.instruction))
        if (spec.subject, spec.instruction) not in boots:
            raise ArtifactError("no stored bootstrap")
        return list(rois), {"nalign": boots[(spec.subject, spec.instruction)].astype(np.float32)}

    monkeypatch.setattr(fit, "load_fit_bootstrap", load)
    monkeypatch.setattr(views, "grid_settings", lambda dataset: None)
    return pd.DataFrame(rows), loads


def _reference(table):
    sub = table[(table["model"] == "m") & (table["layer"] == 3)]
    sub = sub[sub["instruction"] != fit.IMAGE]
    rois = [r for r in dict.fromkeys(sub["roi"]) if r != "general"]
    return views._roi_winners_by_stars(sub, "m", 3, rois, ds=object())[
        ["roi", "winner", "runner_up", "winner_score", "runner_up_score", "difference",
         "ci_low", "ci_high", "p", "q", "significant"]]  # fmt: skip


@pytest.mark.parametrize("kw", [
    {}, {"n_sub": 1}, {"n_sub": 2, "missing": 0.1, "seed": 3},
    {"n_rois": 31, "n_sub": 3, "missing": 0.3, "seed": 5},
    {"n_sub": 3, "no_boot": {("subj02", "ins3")}, "seed": 7},
])  # fmt: skip
def test_the_direct_winners_equal_the_per_roi_stars(tmp_path, monkeypatch, kw):
    table, loads = _world(tmp_path, monkeypatch, **kw)
    got = views.roi_winners(table, "m", 3, ds=object())
    n_loads = len(loads)
    pd.testing.assert_frame_equal(got, _reference(table), check_exact=True)
    assert len(got) == kw.get("n_rois", 24) - 1
    assert n_loads <= len(set(loads))  # each fit's bootstrap read at most once
    if not kw.get("no_boot"):
        assert got["ci_low"].notna().any()


def test_repeated_rows_take_the_general_path(tmp_path, monkeypatch):
    table, _ = _world(tmp_path, monkeypatch, n_sub=2, n_rois=6, n_ins=3)
    table = pd.concat([table, table], ignore_index=True)  # every row twice
    got = views.roi_winners(table, "m", 3, ds=object())
    pd.testing.assert_frame_equal(got, _reference(table), check_exact=True)
