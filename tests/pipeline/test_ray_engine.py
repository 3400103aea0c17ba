"""The Ray engine on a local CPU cluster: same store and same results as the local engine,
worker deaths retried with every unit present exactly once, and a restarted driver resuming."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from core.encoding.alphas import alpha_grid  # noqa: E402
from core.pipeline.grid import GridConfig  # noqa: E402
from core.results.fit import FitSettings  # noqa: E402
from tests.pipeline.conftest import populate_home  # noqa: E402

pytestmark = pytest.mark.slow  # end to end (still run by the README's test command)

SETTINGS = FitSettings(alphas="fast", max_new_tokens=4, n_boot=100)
KEY = ["subject", "model", "instruction", "layer", "roi"]


def _config(engine: str) -> GridConfig:
    return GridConfig(
        dataset="demo",
        models=["tiny-llava", "vision:tiny-llava"],
        instructions=["IU1", "IC"],
        layers=[0, 1],
        settings=SETTINGS,
        keep_encoders="none",
        pairs=[("IC", "IU1")],
        extract_batch_size=16,
        jobs=1,
        engine=engine,
        unit_size=64,
    )


@pytest.fixture(scope="module")
def cluster():
    from core.pipeline.engine import ray_init

    ray_init(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def homes(tmp_path_factory, tiny_llava_folder, cluster):
    """The same small grid run by the local engine (home "local") and by Ray (home "ray")."""
    from core.pipeline.grid import run_grid

    out = {}
    for engine in ("local", "ray"):
        root = tmp_path_factory.mktemp(f"home-{engine}")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BRAINPROMPT_HOME", str(root))
            populate_home(root, tiny_llava_folder)
            out[engine] = (root, run_grid(_config(engine), progress=False))
    return out


def _use(monkeypatch, root: Path) -> None:
    monkeypatch.setenv("BRAINPROMPT_HOME", str(root))


def test_ray_gives_the_local_engine_results(homes, monkeypatch):
    local = homes["local"][1].sort_values(KEY).reset_index(drop=True)
    on_ray = homes["ray"][1].sort_values(KEY).reset_index(drop=True)
    assert len(local) == len(on_ray) > 0
    assert (local[KEY] == on_ray[KEY]).all().all()
    for col in ("r_mean", "nalign_mean", "cv_score_mean", "frac_significant"):
        np.testing.assert_allclose(on_ray[col], local[col], atol=1e-5, err_msg=col)
    # the same content keys: both engines wrote the same store layout and the same fits
    assert set(local["fit_key"]) == set(on_ray["fit_key"])


def test_ray_selects_the_same_alphas(homes, monkeypatch):
    from core.data.registry import open_dataset
    from core.results.fit import FitSpec, load_fit_scores

    spec = FitSpec("demo", "subj02", "tiny-llava", "IC", 1)
    alphas = {}
    for engine in ("local", "ray"):
        _use(monkeypatch, homes[engine][0])
        alphas[engine] = load_fit_scores(open_dataset("demo"), spec, SETTINGS)["best_alpha"]
    assert np.isin(alphas["ray"], alpha_grid("fast").astype(np.float32)).all()
    assert np.mean(alphas["ray"] == alphas["local"]) > 0.999


def test_a_rerun_on_ray_does_no_work(homes, monkeypatch):
    from core.data.registry import open_dataset
    from core.features.store import model_layers
    from core.models.instructions import resolve_instructions
    from core.pipeline.engine import plan_extraction, ray_fits
    from core.pipeline.grid import fit_specs, grid_image_ids

    _use(monkeypatch, homes["ray"][0])
    ds = open_dataset("demo")
    config = _config("ray")
    units = plan_extraction(ds, config.models, resolve_instructions(config.instructions),
                            SETTINGS.generation_options(), grid_image_ids(ds, ds.subject_names),
                            unit_size=64)  # fmt: skip
    assert units == []
    specs = fit_specs(config, ds.subject_names, {m: model_layers(m, "demo") for m in config.models})
    rows, stats = ray_fits(ds, specs, [False] * len(specs), SETTINGS, progress=False)
    assert stats["submitted"] == 0 and stats["stored"] == len(specs)
    assert len(rows) == len(homes["ray"][1])


def _shard_ids(root: Path) -> list[list[int]]:
    out = []
    for manifest in sorted((root / "features").rglob("manifest.json")):
        chunks = json.loads(manifest.read_text())["chunks"]
        out.append([i for c in chunks for i in c["ids"]])
    return out


def test_dead_workers_are_retried_and_every_unit_lands_once(homes, tmp_path_factory,
                                                            tiny_llava_folder, monkeypatch):  # fmt: skip
    from core.data.registry import open_dataset
    from core.pipeline.grid import grid_image_ids, run_grid
    from core.results.tables import load_roi_table

    root = tmp_path_factory.mktemp("home-chaos")
    _use(monkeypatch, root)
    populate_home(root, tiny_llava_folder)
    (root / ".faults").mkdir()
    for kind in ("extract", "fit"):  # one extraction actor dies mid-unit, one fit task mid-fit
        (root / ".faults" / kind).touch()
    table = run_grid(_config("ray"), progress=False)
    assert not list((root / ".faults").iterdir())  # both faults fired
    n_images = len(grid_image_ids(open_dataset("demo"), ["subj01", "subj02"]))
    shards = _shard_ids(root)
    assert len(shards) == 3  # IU1, IC and the vision tower's image shard
    for ids in shards:
        assert len(ids) == len(set(ids)) == n_images  # complete, nothing twice
    expected = homes["ray"][1].sort_values(KEY).reset_index(drop=True)
    got = load_roi_table("demo").sort_values(KEY).reset_index(drop=True)
    assert len(got) == len(table) == len(expected)
    np.testing.assert_allclose(got["r_mean"], expected["r_mean"], atol=1e-5)


def test_an_interrupted_driver_resumes_without_redoing_units(homes, monkeypatch):
    from core.data.registry import open_dataset
    from core.models.instructions import resolve_instructions
    from core.pipeline.engine import plan_extraction, ray_extract

    _use(monkeypatch, homes["ray"][0])
    ds = open_dataset("demo")
    model = "random:tiny-llava@4"  # nothing of it is stored yet
    options = SETTINGS.generation_options()
    instructions = resolve_instructions(["IC"])
    first = plan_extraction(ds, [model], instructions, options, unit_size=64)
    done = []

    def stop_after_two(unit):
        done.append(unit)
        if len(done) == 2:
            raise KeyboardInterrupt("driver killed")

    with pytest.raises(KeyboardInterrupt):
        ray_extract(ds, first, options, batch_size=16, progress=False,
                    on_unit_done=stop_after_two)  # fmt: skip
    second = plan_extraction(ds, [model], instructions, options, unit_size=64)
    assert not set(done) & set(second)  # finished units are not planned again
    assert len(second) <= len(first) - 2
    stats = ray_extract(ds, second, options, batch_size=16, progress=False)
    assert stats["units"] == len(second)
    assert plan_extraction(ds, [model], instructions, options, unit_size=64) == []
    from core.features.extract import load_embeddings

    ids, _ = load_embeddings(ds, model, "IC", 0, options)
    assert ids.tolist() == sorted(set(ds.stimuli.ids.tolist()))


def test_progress_file_reports_the_last_phase(homes, monkeypatch):
    from core.pipeline.engine import read_progress

    _use(monkeypatch, homes["ray"][0])
    info = read_progress("demo")
    assert info is not None and info["engine"] == "ray" and info["state"] == "done"
    assert info["done"] == info["total"] > 0


def test_unknown_engine_is_a_clear_error():
    from core.pipeline.grid import run_grid

    with pytest.raises(ValueError, match="unknown engine"):
        run_grid(replace(_config("local"), engine="spark"), progress=False)



def test_a_unit_whose_actor_died_for_good_completes_on_another(cluster, tmp_path_factory,
                                                               tiny_llava_folder, monkeypatch):  # fmt: skip
    from core.data.registry import open_dataset
    from core.models.instructions import resolve_instructions
    from core.pipeline.engine import plan_extraction, ray_extract
    from core.pipeline.grid import grid_image_ids

    root = tmp_path_factory.mktemp("home-doomed")
    _use(monkeypatch, root)
    populate_home(root, tiny_llava_folder)
    (root / ".faults").mkdir()
    (root / ".faults" / "extract-forever").touch()  # one actor dies at every call, for good
    ds = open_dataset("demo")
    ids = grid_image_ids(ds, ds.subject_names)
    ins = resolve_instructions(["IU1"])
    opts = SETTINGS.generation_options()
    units = plan_extraction(ds, ["tiny-llava"], ins, opts, ids, unit_size=8)
    assert len(units) > 2
    # no restarts: the actor that claims the marker is gone for good after its first call
    stats = ray_extract(ds, units, opts, batch_size=8, workers=2, progress=False,
                        actor_restarts=0)  # fmt: skip
    assert stats["dead_actors"] == 1 and stats["failures"] == 1
    assert stats["units"] == len(units)  # every unit completed, on the other actor
    assert plan_extraction(ds, ["tiny-llava"], ins, opts, ids, unit_size=8) == []
    (shard,) = _shard_ids(root)
    assert sorted(shard) == sorted(int(i) for i in ids)  # every image exactly once
