"""Provenance: every artifact is keyed by content, so a rebuilt dataset, a retrained model or
another token budget never meets an old artifact, and no stale row reaches a results table."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.registry import open_dataset
from core.encoding.store import list_encoders
from core.features.store import list_shards
from core.pipeline.grid import GridConfig, run_grid
from core.results.fit import FitSettings, FitSpec, fit_key, fits_dir, fits_table, run_fit
from core.results.tables import load_roi_table
from tests.pipeline.conftest import populate_home

SETTINGS = FitSettings(alphas="fast", max_new_tokens=4, n_boot=100)


def _mini_config(model: str) -> GridConfig:
    return GridConfig(
        dataset="demo",
        models=[model],
        instructions=["IC"],
        layers=[1],
        subjects=["subj01"],
        settings=SETTINGS,
        keep_encoders="all",
        pairs=[],
        extract_batch_size=32,
        jobs=1,
    )


@pytest.fixture
def own_home(tmp_path, monkeypatch, tiny_llava_folder):
    """A fresh BrainPrompt home with the small demo (seed 0) and the tiny LLaVA registered."""
    monkeypatch.setenv("BRAINPROMPT_HOME", str(tmp_path / "home"))
    return populate_home(tmp_path / "home", tiny_llava_folder)


def _artifacts() -> dict[str, set[str]]:
    return {
        "shards": {info.path.name for info in list_shards()},  # all stimulus sets
        "fits": set(fits_table("demo")["key"]),
        "encoders": {m["key"] for m in list_encoders()},
    }


def _used(table) -> dict[str, set[str]]:
    """The embeddings, fits and encoders a results table was computed from."""
    fits = fits_table("demo")
    return {
        "shards": set(table["features_key"]),
        "fits": set(table["fit_key"]),
        "encoders": set(fits.loc[fits["key"].isin(table["fit_key"]), "encoder_key"].dropna()),
    }


def test_rebuilding_the_demo_recomputes_everything_and_leaves_no_stale_row(own_home):
    from core.data.demo.build import build_demo, default_demo_root

    first = run_grid(_mini_config("tiny-llava"), progress=False)
    before = _artifacts()
    assert all(before.values())
    build_demo(root=default_demo_root(), size="small", seed=1, progress=False)
    second = run_grid(_mini_config("tiny-llava"), progress=False)
    after = _artifacts()
    used_first, used_second = _used(first), _used(second)
    for kind in before:  # new content: every artifact was recomputed, none reused
        assert used_first[kind] and used_second[kind], kind
        assert not used_first[kind] & used_second[kind], kind
        assert after[kind] > before[kind], kind
    assert not np.allclose(first["r_mean"], second["r_mean"])
    ds = open_dataset("demo")
    table = load_roi_table("demo")
    assert len(table) == len(second)  # the seed-0 rows are gone from the file itself
    assert set(table["subject_key"]) == {ds.subject_key("subj01")}
    assert len(load_roi_table("demo", ds)) == len(table)


def test_retraining_the_model_recomputes_embeddings_fits_and_encoders(own_home):
    from safetensors.numpy import load_file, save_file

    first = run_grid(_mini_config("tiny-llava"), progress=False)
    # "retrain": same architecture, same file names and sizes, one weight changed
    weights = own_home / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(k for k in tensors if k.endswith("weight"))[-1]
    tensors[name] = tensors[name] + np.float32(0.5)
    save_file(tensors, weights, metadata={"format": "pt"})
    second = run_grid(_mini_config("tiny-llava"), progress=False)
    used_first, used_second = _used(first), _used(second)
    for kind in used_first:
        assert used_second[kind] and not used_first[kind] & used_second[kind], kind
    assert set(load_roi_table("demo")["fit_key"]) == used_second["fits"]


def test_another_token_budget_gets_its_own_embeddings_fits_and_encoders(own_home):
    from dataclasses import replace

    from core.dashboard.stored_encoders import encoder_table

    config = _mini_config("tiny-llava")
    first = run_grid(config, progress=False)
    before = _artifacts()
    second = run_grid(replace(config, settings=replace(SETTINGS, max_new_tokens=6)), progress=False)
    after = _artifacts()
    used_first, used_second = _used(first), _used(second)
    for kind in before:  # nothing overwritten, everything new
        assert before[kind] < after[kind], kind
        assert not used_first[kind] & used_second[kind], kind
    table = encoder_table("demo")
    assert set(fits_table("demo")["setting_max_new_tokens"]) == {4, 6}
    assert table["max_new_tokens"].tolist() == [6]  # the last grid's budget is offered


def test_stale_rows_are_hidden_from_readers(own_home):
    run_grid(_mini_config("tiny-llava"), progress=False)
    from core.data.demo.build import build_demo, default_demo_root

    build_demo(root=default_demo_root(), size="small", seed=2, progress=False)
    ds = open_dataset("demo")
    assert not load_roi_table("demo").empty  # still in the file...
    assert load_roi_table("demo", ds).empty  # ...but never shown for the rebuilt dataset


def test_instruction_text_and_negative_layer_make_the_same_fit(grid_table, grid_config):
    ds = open_dataset("demo")
    model = grid_config.models[0]
    last = int(grid_table.loc[grid_table["model"] == model, "layer"].max())
    by_id = FitSpec("demo", "subj01", model, "IC", last)
    by_text = FitSpec("demo", "subj01", model, "Generate some text to describe the image", -1)
    assert fit_key(ds, by_id, grid_config.settings) == fit_key(ds, by_text, grid_config.settings)
    n = len(list(fits_dir("demo").glob("*.json")))
    rows = run_fit(ds, by_text, grid_config.settings)
    assert len(list(fits_dir("demo").glob("*.json"))) == n  # reused, not stored twice
    assert {r["instruction"] for r in rows} == {"IC"} and {r["layer"] for r in rows} == {last}


def test_a_fit_whose_target_digest_differs_is_recomputed(grid_table, grid_config):
    import json

    ds = open_dataset("demo")
    spec = FitSpec("demo", "subj02", grid_config.models[0], "IU1", 0)
    key = fit_key(ds, spec, grid_config.settings)
    manifest = fits_dir("demo") / f"{key}.json"
    info = json.loads(manifest.read_text())
    info["target_digest"] = "0" * 24
    manifest.write_text(json.dumps(info))
    run_fit(ds, spec, grid_config.settings)
    assert json.loads(manifest.read_text())["target_digest"] == ds.subject("subj02").targets.digest()


def test_p_values_off_is_not_computed_rather_than_zero(grid_table, grid_config):
    from dataclasses import replace

    ds = open_dataset("demo")
    spec = FitSpec("demo", "subj01", grid_config.models[0], "IC", 1)
    rows = run_fit(ds, spec, replace(grid_config.settings, p_values="none"))
    assert all(np.isnan(r["frac_significant"]) for r in rows)
    assert {r["p_values"] for r in rows} == {"none"}
    rows = run_fit(ds, spec, replace(grid_config.settings, p_values="permutation",
                                     n_permutations=0))  # fmt: skip
    assert all(np.isnan(r["frac_significant"]) for r in rows)


def test_rows_carry_provenance_and_diagnostics(grid_table):
    for col in ("fit_key", "subject_key", "features_key", "settings_key", "max_new_tokens",
                "p_values", "cv_score_mean", "alpha_low_frac", "alpha_high_frac"):  # fmt: skip
        assert col in grid_table, col
        assert grid_table[col].notna().all(), col
    assert grid_table["alpha_low_frac"].between(0, 1).all()



def test_retrain_then_rerun_one_layer_leaves_only_new_weight_rows(own_home):
    """Rows of the old weights never share a table with the new ones: a retrained model rerun
    on one layer gives a table of that layer only, and the best layer is chosen among them."""
    from dataclasses import replace

    from safetensors.numpy import load_file, save_file

    from core.results.selection import best_layers

    config = _mini_config("tiny-llava")
    run_grid(replace(config, layers=[0, 1, 2]), progress=False)
    weights = own_home / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(k for k in tensors if k.endswith("weight"))[-1]
    tensors[name] = tensors[name] + np.float32(0.5)
    save_file(tensors, weights, metadata={"format": "pt"})
    new = run_grid(replace(config, layers=[1]), progress=False)
    ds = open_dataset("demo")
    for table in (load_roi_table("demo"), load_roi_table("demo", ds)):  # the file and the view
        assert set(table["layer"]) == {1}
        assert set(table["features_key"]) == set(new["features_key"])
        assert best_layers(table) == {"tiny-llava": 1}


def test_partition_rows_of_old_weights_are_dropped(own_home):
    from dataclasses import replace

    from safetensors.numpy import load_file, save_file

    from core.results.partition import load_partition_table

    config = replace(_mini_config("tiny-llava"), instructions=["IC", "IU1"], pairs=[("IC", "IU1")])
    run_grid(config, progress=False)
    ds = open_dataset("demo")
    assert not load_partition_table("demo", ds).empty
    weights = own_home / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(k for k in tensors if k.endswith("weight"))[-1]
    tensors[name] = tensors[name] * np.float32(1.5)
    save_file(tensors, weights, metadata={"format": "pt"})
    assert load_partition_table("demo", ds).empty  # computed from the old weights: not shown
