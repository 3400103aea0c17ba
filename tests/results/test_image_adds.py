"""What the image adds: an instruction partitioned against its own text-only control reads B from
the control's feature space at the control's layer, and its unique part is positive where the
brain follows what only the image carries and near zero where the answer's words carry it all."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.results import partition as part_mod
from core.results.controls import image_adds
from core.results.fit import FitSettings
from core.results.partition import PartitionSpec, partition_rows, run_partition

N_TRAIN, N_TEST, D, N_TARGETS = 300, 150, 6, 30


def _world(target: str, seed: int = 0):
    """Answer-text content ``T`` and image-only content ``I`` (independent), the instruction's
    response embedding (a mix of both), its text-only control (another view of ``T``), and
    responses driven by ``target`` ("image": ``I``; "text": ``T``) plus noise.

    Returns
    -------
    features : dict of (model, layer) to array of shape (n_images, n_features)
    responses : array of shape (n_images, N_TARGETS)
    """
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    t, i = rng.standard_normal((n, D)), rng.standard_normal((n, D))
    mix = lambda x: x @ np.linalg.qr(rng.standard_normal((D, D)))[0]  # noqa: E731  (a rotation)
    response_embedding = np.hstack([mix(t), mix(i)]) + 0.05 * rng.standard_normal((n, 2 * D))
    text_control = mix(t) + 0.05 * rng.standard_normal((n, D))
    drive = i if target == "image" else t
    y = drive @ rng.standard_normal((D, N_TARGETS)) + 1.0 * rng.standard_normal((n, N_TARGETS))
    features = {("m", 3): response_embedding, ("text:m", 1): text_control,
                ("m", 1): np.zeros((n, D)), ("text:m", 3): np.zeros((n, D))}  # fmt: skip
    return features, y.astype(np.float32)


def _image_share(monkeypatch, target: str) -> tuple[pd.Series, list]:
    features, y = _world(target)
    calls = []

    def fake_features(ds, subject, model, instruction, layer, settings=None):
        calls.append((model, instruction, layer))
        return features[(model, layer)].astype(np.float32)

    is_test = np.arange(y.shape[0]) >= N_TRAIN
    subject = SimpleNamespace(responses=y, n_targets=N_TARGETS,
                              split=lambda: (np.flatnonzero(~is_test), np.flatnonzero(is_test)))  # fmt: skip
    ds = SimpleNamespace(subject=lambda name: subject)
    monkeypatch.setattr(part_mod, "aligned_features", fake_features)
    monkeypatch.setattr(PartitionSpec, "identity",
                        lambda self, ds, settings: {"world": target, "spec": repr(self)})  # fmt: skip
    spec = PartitionSpec("planted", "subj01", "m", "IC", "IC", 3, model_b="text:m", layer_b=1)
    arrays = run_partition(ds, spec, FitSettings(alphas="fast", cv=3))
    rows = partition_rows(spec, arrays, {"all": np.ones(N_TARGETS, bool)})
    return image_adds(pd.DataFrame(rows), "m").iloc[0], calls


def test_the_control_pair_reads_b_from_the_text_control_at_its_own_layer(monkeypatch):
    _, calls = _image_share(monkeypatch, "image")
    assert calls == [("m", "IC", 3), ("text:m", "IC", 1)]


def test_the_image_adds_what_the_answer_does_not_say(monkeypatch):
    adds, _ = _image_share(monkeypatch, "image")
    assert adds["r2"] > 0.3
    assert adds["unique"] > 0.3 and adds["image_share"] > 0.9


def test_the_image_adds_nothing_where_the_answers_words_carry_it_all(monkeypatch):
    adds, _ = _image_share(monkeypatch, "text")
    assert adds["r2"] > 0.3 and adds["r2_text"] > 0.3
    assert abs(adds["unique"]) < 0.03 and abs(adds["image_share"]) < 0.1


def test_a_pair_of_one_model_keeps_its_key_and_a_control_pair_names_its_space(monkeypatch):
    import core.results.fit as fit

    monkeypatch.setattr(fit, "features_key", lambda ds, model, ins, settings: f"{model}|{ins}")
    ds = SimpleNamespace(subject_key=lambda s: "k")
    same = PartitionSpec("d", "subj01", "m", "IC", "IU2", 3).identity(ds, FitSettings())
    assert "layer_b" not in same and same["b"] == "m|IU2"  # the keys written before stay valid
    ctrl = PartitionSpec("d", "subj01", "m", "IC", "IC", 3, model_b="text:m", layer_b=1)
    ident = ctrl.identity(ds, FitSettings())
    assert ident["b"] == "text:m|IC" and ident["layer_b"] == 1


def test_partition_rows_always_name_bs_space_and_layer():
    spec = PartitionSpec("d", "subj01", "m", "IC", "IU2", 3)
    arrays = {p: np.zeros(4, np.float32) for p in part_mod.PARTS}
    row = partition_rows(spec, arrays, {"all": np.ones(4, bool)})[0]
    assert row["model_b"] == "m" and row["layer_b"] == 3
    assert set(part_mod.PARTITION_KEY) <= set(row)


@pytest.fixture(autouse=True)
def _fresh_partitions(tmp_path, monkeypatch):
    """Partitions of this file's planted worlds land in a folder of their own."""
    monkeypatch.setattr(part_mod, "partitions_dir", lambda dataset: tmp_path)


def test_no_partitions_table_gives_an_empty_view_not_an_error():
    """A grid run without instruction pairs stores no partitions table: the Compare page and the
    report read an empty frame with no columns and must show "nothing yet", not crash."""
    out = image_adds(pd.DataFrame(), "demo-vlm")
    assert out.empty
    assert "image_share" in out.columns
