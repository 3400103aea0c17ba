"""The grid: extract -> fit -> score -> report, resumable, on the small demo world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.dataset import DatasetError
from core.data.registry import open_dataset
from core.encoding.store import load_encoder
from core.pipeline.grid import run_grid
from core.results.fit import MIN_NC, FitSpec, fits_table, load_fit_scores, run_fit
from core.results.partition import load_partition_table
from core.results.report import format_report
from core.results.tables import load_roi_table, results_dir


def test_results_table_has_one_row_per_fit_and_roi(grid_table, grid_config):
    n_layers = grid_table.groupby("model")["layer"].nunique()
    n_fits = 2 * (2 * n_layers[grid_config.models[0]] * 2 + n_layers[grid_config.models[2]])
    n_rois = grid_table["roi"].nunique()
    assert len(grid_table) == n_fits * n_rois
    assert {"general", "V1", "FFA", "PPA", "IPS"} <= set(grid_table["roi"])
    assert set(grid_table["role"]) == {"mllm", "random init", "vision"}


def test_table_is_written_as_parquet_and_csv(grid_table):
    assert (results_dir("demo") / "roi_scores.parquet").exists()
    assert (results_dir("demo") / "roi_scores.csv").exists()
    assert len(load_roi_table("demo")) == len(grid_table)


def test_roi_order_follows_the_dataset(grid_table):
    rois = list(dict.fromkeys(grid_table["roi"]))
    assert rois[:4] == ["general", "V1", "V2", "V3"]


def test_normalized_alignment_uses_only_targets_with_a_ceiling(grid_table, grid_config):
    spec = FitSpec("demo", "subj01", grid_config.models[0], "IC", 1)
    scores = load_fit_scores(open_dataset("demo"), spec, grid_config.settings)
    low = scores["nc"] <= MIN_NC
    assert np.isnan(scores["nalign"][low]).all()
    assert np.isfinite(scores["nalign"][~low]).all()
    assert np.allclose(
        scores["nalign"][~low], scores["r"][~low] / np.sqrt(scores["nc"][~low]), atol=1e-5
    )


def test_q_values_are_fdr_of_p_values(grid_table, grid_config):
    from scipy.stats import false_discovery_control

    spec = FitSpec("demo", "subj02", grid_config.models[0], "IU1", 2)
    s = load_fit_scores(open_dataset("demo"), spec, grid_config.settings)
    assert np.allclose(s["q"], false_discovery_control(s["p"].astype(float)), atol=1e-9)


def test_rerun_refits_nothing(grid_table, grid_config):
    before = fits_table("demo")
    again = run_grid(grid_config, progress=False)
    after = fits_table("demo")
    assert len(before) == len(after)
    assert (
        before.sort_values("key")["seconds"].tolist()
        == after.sort_values("key")["seconds"].tolist()
    )
    assert again.equals(grid_table)


def test_best_layer_encoders_are_kept_and_predict(grid_table, grid_config):
    from core.results.selection import best_layers

    table = fits_table("demo")
    kept = table[table["encoder_key"].notna()]
    assert len(kept) >= 2 * (2 * 2 + 1)  # subjects x (models x instructions + vision)
    best = best_layers(grid_table)
    for model, layer in best.items():  # the layer every page reports has its encoders
        assert layer in set(kept.loc[kept["model"] == model, "layer"]), model
    enc = load_encoder(kept.iloc[0]["encoder_key"])
    pred = enc.predict(np.zeros((1, enc.n_features), np.float32))
    assert pred.original.shape == (1, enc.manifest["n_targets"])


def test_partition_parts_add_up(grid_table):
    parts = load_partition_table("demo")
    assert not parts.empty
    np.testing.assert_allclose(parts["unique_a"] + parts["shared"], parts["r2_a"], atol=1e-5)
    np.testing.assert_allclose(parts["unique_b"] + parts["shared"], parts["r2_b"], atol=1e-5)


def test_report_names_models_and_best_instructions(grid_table):
    text = format_report(grid_table)
    assert "tiny-llava" in text and "best instructions" in text


def test_fit_without_embeddings_is_a_clear_error(grid_table, grid_config):
    ds = open_dataset("demo")
    spec = FitSpec("demo", "subj01", grid_config.models[0], "VQ3", 0)
    with pytest.raises(Exception, match="extract|no .*embedding|nothing was extracted"):
        run_fit(ds, spec, grid_config.settings)


def test_unknown_subject_fails_before_any_work(grid_config):
    from dataclasses import replace

    with pytest.raises(DatasetError, match="unknown subject"):
        run_grid(replace(grid_config, subjects=["subj42"]), progress=False)


def test_layers_of_an_extracted_model_come_from_its_shards(grid_table, grid_config, monkeypatch):
    import core.models.adapters as adapters
    from core.features.store import model_layers

    expected = grid_table.groupby("model")["layer"].nunique()
    monkeypatch.setattr(adapters, "load_adapter", lambda *a, **k: pytest.fail("weights loaded"))
    for model in grid_config.models:
        assert model_layers(model, "demo") == list(range(expected[model]))


def test_layers_of_a_model_without_shards_come_from_the_model(grid_table, tiny_llava):
    from core.features.store import model_layers

    # a random twin with another seed has no stored embeddings: its config is read instead
    assert model_layers(f"random:{tiny_llava}@99", "demo") == model_layers(tiny_llava)


def test_merge_table_replaces_rows_of_the_same_key_and_keeps_the_others(tmp_path):
    import pandas as pd

    from core.results.tables import merge_table

    stem = tmp_path / "t"
    merge_table(stem, pd.DataFrame({"m": ["a", "b"], "layer": [1, 1], "v": [1.0, 2.0]}),
                ["m", "layer"])
    out = merge_table(stem, pd.DataFrame({"m": ["b", "c"], "layer": [1, 2], "v": [3.0, 4.0]}),
                      ["m", "layer"])
    assert out.values.tolist() == [["a", 1, 1.0], ["b", 1, 3.0], ["c", 2, 4.0]]
    assert pd.read_parquet(stem.with_suffix(".parquet")).equals(out)


def test_dashboard_encoder_rows_join_the_table_and_survive_a_grid_rerun(grid_table, grid_config):
    from core.pipeline.on_demand import compute_encoder
    from core.results.tables import _write_table

    stem = results_dir("demo") / "roi_scores"
    original = load_roi_table("demo")
    model = f"random:{grid_config.models[0]}@5"
    try:
        rows = compute_encoder("demo", "subj01", model, "IU1", 1, grid_config.settings,
                               progress=False)
        merged = load_roi_table("demo")
        assert len(merged) == len(original) + len(rows)
        added = merged[merged["model"] == model]
        assert set(added["roi"]) == {r["roi"] for r in rows}
        assert set(added["role"]) == {"random init"}
        run_grid(grid_config, progress=False)  # same settings: the dashboard's rows are kept
        assert (load_roi_table("demo")["model"] == model).sum() == len(rows)
    finally:
        _write_table(original, stem)


def test_best_layer_ignores_partially_fitted_layers():
    import pandas as pd

    from core.results.selection import best_layers

    rows = [("s1", "IU1", 1, 0.5), ("s1", "IC", 1, 0.4), ("s2", "IU1", 1, 0.5),
            ("s2", "IC", 1, 0.4), ("s1", "IU1", 2, 0.9)]  # layer 2: one fit only
    table = pd.DataFrame(
        [{"subject": s, "model": "m", "instruction": i, "layer": lay, "roi": "general",
          "cv_score_mean": v} for s, i, lay, v in rows]
    )
    assert best_layers(table) == {"m": 1}
    assert best_layers(table[table["layer"] == 2]) == {"m": 2}


def test_best_layer_is_chosen_on_training_cv_scores_not_the_test_set():
    import pandas as pd

    from core.results.selection import best_layers

    # layer 2 looks best on the test set, layer 1 on cross-validated training scores
    table = pd.DataFrame(
        [{"subject": "s1", "model": "m", "instruction": "IC", "layer": lay, "roi": "general",
          "cv_score_mean": cv, "nalign_mean": test} for lay, cv, test in [(1, 0.3, 0.5),
                                                                          (2, 0.2, 0.9)]]
    )  # fmt: skip
    assert best_layers(table) == {"m": 1}
    with pytest.raises(ValueError, match="cross-validated"):
        best_layers(table.drop(columns="cv_score_mean"))


def test_alpha_grid_edges_are_reported_per_fit():
    from core.results.fit import FitSpec, roi_rows
    from core.results.views import alpha_edge_warnings

    alphas = np.logspace(1, 4, 20)
    best = np.array([alphas[0]] * 3 + [alphas[5]] * 90 + [alphas[-1]] * 7, np.float32)
    scores = {k: np.zeros(100, np.float32) for k in ("r", "r2", "nalign", "nalign_var", "nc")}
    scores.update(best_alpha=best, q=np.ones(100))
    masks = {"general": np.ones(100, bool)}
    rows = roi_rows(FitSpec("demo", "s", "m", "IC", 1), scores, masks, alphas=alphas)
    assert rows[0]["alpha_low_frac"] == pytest.approx(0.03)
    assert rows[0]["alpha_high_frac"] == pytest.approx(0.07)
    table = pd.DataFrame(rows)
    assert len(alpha_edge_warnings(table)) == 1 and "10%" in alpha_edge_warnings(table)[0]
    table[["alpha_low_frac", "alpha_high_frac"]] = 0.01
    assert alpha_edge_warnings(table) == []


def test_an_out_of_range_layer_is_an_error_naming_the_models_range(grid_config):
    from dataclasses import replace

    from core.models.layers import LayerRangeError
    from core.pipeline.grid import fit_specs

    config = replace(grid_config, layers=[7])
    with pytest.raises(LayerRangeError, match="has 5 hidden states, layers 0-4"):
        fit_specs(config, ["subj01"], {m: list(range(5)) for m in config.models})
    assert [s.layer for s in fit_specs(replace(grid_config, layers=[-1]), ["subj01"],
                                       {grid_config.models[0]: list(range(5)),
                                        grid_config.models[1]: list(range(5)),
                                        grid_config.models[2]: list(range(5))})][:1] == [4]


def test_cli_fit_with_an_out_of_range_layer_exits_with_the_range(grid_table, grid_config, capsys):
    from core.pipeline.cli import main

    n = int(grid_table.loc[grid_table["model"] == grid_config.models[0], "layer"].max()) + 1
    argv = ["fit", "--dataset", "demo", "--subject", "subj01", "--model", grid_config.models[0],
            "--instruction", "IC", "--layer", str(n + 2)]  # fmt: skip
    assert main(argv) == 1
    assert f"layers 0-{n - 1}" in capsys.readouterr().err


def test_partitions_sit_at_the_layer_the_scores_are_reported_at(grid_table, grid_config):
    from core.results.selection import best_layers

    parts = load_partition_table("demo", open_dataset("demo"))
    best = best_layers(grid_table)
    assert not parts.empty
    for model, layers in parts.groupby("model")["layer"]:
        assert set(layers) == {best[model]}


def test_partition_keys_hold_the_folds_and_the_solver(grid_table, grid_config):
    from dataclasses import replace

    from core.results.partition import PartitionSpec

    ds = open_dataset("demo")
    spec = PartitionSpec("demo", "subj01", grid_config.models[0], "IC", "IU1", 1)
    s = grid_config.settings
    keys = {spec.key(ds, s), spec.key(ds, replace(s, cv=3)), spec.key(ds, replace(s, solver="himalaya"))}
    assert len(keys) == 3


def test_each_fit_stores_a_paired_bootstrap_over_the_test_images(grid_table, grid_config):
    from core.results.fit import load_fit_bootstrap

    ds = open_dataset("demo")
    rois, a = load_fit_bootstrap(ds, FitSpec("demo", "subj01", grid_config.models[0], "IC", 1),
                                 grid_config.settings)  # fmt: skip
    _, b = load_fit_bootstrap(ds, FitSpec("demo", "subj01", grid_config.models[0], "IU1", 1),
                              grid_config.settings)  # fmt: skip
    assert a["nalign"].shape == (grid_config.settings.n_boot, len(rois))
    rows = grid_table[(grid_table["subject"] == "subj01") & (grid_table["layer"] == 1)
                      & (grid_table["model"] == grid_config.models[0])]  # fmt: skip
    inside = (rows["nalign_ci_low"] <= rows["nalign_mean"]) & (rows["nalign_mean"] <= rows["nalign_ci_high"])
    assert inside.mean() > 0.9
    # the same resamples for both instructions: the difference's spread is below the sum of
    # the spreads whenever the two fits' errors are positively related
    assert np.isfinite(a["nalign"] - b["nalign"]).all()


def test_stars_need_both_tests_and_bh_runs_over_the_whole_family(grid_table, grid_config):
    from core.encoding.significance import fdr_bh
    from core.results.views import instruction_stars

    st = instruction_stars(grid_table, grid_config.models[0], 1, "IC", across="subjects")
    assert not st.empty and st["p_images"].notna().all()
    both = st["p_subjects"].notna()
    np.testing.assert_allclose(st.loc[both, "p"],
                               np.maximum(st.loc[both, "p_subjects"], st.loc[both, "p_images"]))  # fmt: skip
    np.testing.assert_allclose(st["q"], fdr_bh(st["p"].to_numpy(float)), equal_nan=True)
    assert (st["ci_low"] <= st["ci_high"]).all()


def test_targets_without_cross_validated_signal_leave_the_alpha_edge_shares():
    from core.results.fit import MIN_CV_SIGNAL, FitSpec, roi_rows

    alphas = np.logspace(-2, 6, 81)
    # 30 noise targets pick the largest alpha (their best prediction is ~0): not a grid problem
    best = np.array([alphas[40]] * 70 + [alphas[-1]] * 30, np.float32)
    cv = np.array([0.05] * 70 + [MIN_CV_SIGNAL / 5] * 30, np.float32)
    scores = {k: np.zeros(100, np.float32) for k in ("r", "r2", "nalign", "nalign_var", "nc")}
    scores.update(best_alpha=best, q=np.ones(100), cv_score=cv)
    rows = roi_rows(FitSpec("demo", "s", "m", "IC", 1), scores, {"general": np.ones(100, bool)},
                    alphas=alphas)  # fmt: skip
    assert rows[0]["alpha_high_frac"] == 0.0 and rows[0]["alpha_low_frac"] == 0.0


def test_the_default_alpha_grid_is_wide_and_the_papers_is_kept():
    from core.encoding.alphas import DEFAULT_ALPHAS, alpha_grid
    from core.results.fit import FitSettings

    assert FitSettings().alphas == DEFAULT_ALPHAS == "wide"
    np.testing.assert_allclose(alpha_grid("wide"), np.logspace(-2, 6, 81))
    np.testing.assert_allclose(alpha_grid("paper"), np.logspace(1, 4, 60))


def test_every_fit_reports_rsa_and_the_metrics_are_compared(grid_table, grid_config):
    from core.results.views import metric_agreement

    assert "rsa" in grid_table and grid_table["rsa"].notna().mean() > 0.9
    assert grid_table["rsa"].between(-1, 1).all()
    agree = metric_agreement(grid_table, grid_config.models[0], 1)
    assert not agree.empty and {"tau", "flagged", "top_a", "top_b"} <= set(agree.columns)
    assert agree["tau"].between(-1, 1).all()


def test_rows_of_other_scoring_code_are_not_current(grid_table):
    from core.results.tables import current_rows

    ds = open_dataset("demo")
    old = grid_table.copy()
    old["scoring_version"] = "0"
    assert current_rows(old, ds).empty
    assert len(current_rows(grid_table, ds)) == len(grid_table)


def test_the_cross_subject_ceiling_is_stored_and_normalizes(grid_table, grid_config):
    from core.results.ceilings import ceiling_table, cross_subject_normalized, cross_subject_r

    ds = open_dataset("demo")
    r = cross_subject_r(ds, "subj01")
    assert r.shape == (ds.subject("subj01").n_targets,) and np.isfinite(r).all()
    table = ceiling_table(ds)
    assert set(table["subject"]) == set(ds.subject_names)
    assert table["nc_cross_subject"].between(0, 1).all()
    rows = grid_table[(grid_table["model"] == grid_config.models[0]) & (grid_table["layer"] == 1)]
    out = cross_subject_normalized(ds, rows, grid_config.settings)
    assert out["nalign_cross"].notna().any()


def test_controls_are_extracted_after_their_source_and_length_has_one_layer(grid_config):
    from dataclasses import replace

    from core.pipeline.grid import extraction_passes, fit_specs

    models = ["length:m", "m", "text:m", "vision:m"]
    assert extraction_passes(models) == [["m", "vision:m"], ["length:m", "text:m"]]
    config = replace(grid_config, models=["length:m"], layers=[2, 3])
    specs = fit_specs(config, ["subj01"], {"length:m": [0]})
    assert {s.layer for s in specs} == {0}


def test_fits_in_worker_processes_equal_fits_in_this_process(grid_table, grid_config):
    """jobs > 1 (spawned worker processes, one BLAS thread each) gives the rows an in-process
    fit gives (the suite itself fits in process: BRAINPROMPT_JOBS=1 under pytest-xdist)."""
    from dataclasses import replace

    from core.pipeline.grid import run_fits

    ds = open_dataset(grid_config.dataset)
    rows = grid_table[(grid_table["subject"] == "subj01") & (grid_table["roi"] == "general")]
    picked = rows.drop_duplicates(["model", "instruction"]).head(2)
    specs = [FitSpec("demo", "subj01", r.model, r.instruction, int(r.layer)) for r in picked.itertuples()]
    # another bootstrap size: new fit keys (computed now, in the workers), the same scores
    settings = replace(grid_config.settings, n_boot=50)
    got = pd.DataFrame(run_fits(ds, specs, [False, False], settings, jobs=2, progress=False))
    got = got[got["roi"] == "general"].set_index(["model", "instruction"])["r_mean"]
    want = picked.set_index(["model", "instruction"])["r_mean"]
    assert len(got) == 2
    np.testing.assert_allclose(got.loc[want.index], want, atol=1e-6)


def test_default_jobs_come_from_the_environment_else_the_cores(monkeypatch):
    import os

    from core.pipeline.grid import JOBS_ENV, GridConfig, default_jobs

    monkeypatch.setenv(JOBS_ENV, "3")
    assert default_jobs() == 3 and GridConfig().jobs == 3
    monkeypatch.delenv(JOBS_ENV)
    assert default_jobs() == (os.cpu_count() or 1)
    for bad in ("0", "two"):
        monkeypatch.setenv(JOBS_ENV, bad)
        with pytest.raises(ValueError, match=JOBS_ENV):
            default_jobs()
