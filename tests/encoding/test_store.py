"""Encoder store: safetensors + JSON manifest round trip and mismatch errors."""

from __future__ import annotations

import numpy as np
import pytest
from encoding_data import make_regression

from core.encoding.estimator import RidgeEncoder
from core.encoding.store import (
    EncoderMismatchError,
    list_encoders,
    load_encoder,
    save_encoder,
)
from core.storage import ArtifactError, read_json

META = dict(dataset="demo", subject="subj01", model="tiny-llava", instruction="IC", layer=3)


@pytest.fixture
def fitted():
    X, Y, Xt, _ = make_regression(120, 12, 7, seed=5)
    enc = RidgeEncoder(alphas="fast", backend="numpy").fit(X, Y * 3.0 + 2.0)
    return enc, Xt


def test_round_trip_predicts_like_the_encoder(tmp_path, fitted):
    enc, Xt = fitted
    key = save_encoder(enc, root=tmp_path, target_ids=np.arange(100, 107), **META)
    stored = load_encoder(key, root=tmp_path)
    pred = stored.predict(Xt)
    np.testing.assert_allclose(pred.original, enc.predict(Xt), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pred.z, enc.predict(Xt, units="z"), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(stored.arrays["best_alphas"], enc.best_alphas_)


def test_single_feature_vector(tmp_path, fitted):
    enc, Xt = fitted
    stored = load_encoder(save_encoder(enc, root=tmp_path, **META), root=tmp_path)
    assert stored.predict(Xt[0]).original.shape == (1, 7)


def test_manifest_contents_and_key_is_content_addressed(tmp_path, fitted):
    enc, _ = fitted
    key = save_encoder(enc, root=tmp_path, scores_summary={"mean_r": 0.2}, **META)
    assert key == save_encoder(enc, root=tmp_path, **META)
    assert key != save_encoder(enc, root=tmp_path, **{**META, "layer": 4})
    manifest = read_json(tmp_path / key / "manifest.json")
    assert (manifest["n_features"], manifest["n_targets"], manifest["subject"]) == (12, 7, "subj01")
    assert manifest["settings"]["alphas"][0] == pytest.approx(10.0)
    assert len(list_encoders(tmp_path)) == 2


def test_feature_size_mismatch_names_sizes(tmp_path, fitted):
    enc, Xt = fitted
    stored = load_encoder(save_encoder(enc, root=tmp_path, **META), root=tmp_path)
    with pytest.raises(EncoderMismatchError, match="feature size mismatch: .*12 .*got 11"):
        stored.predict(Xt[:, :11])


def test_subject_mismatch(tmp_path, fitted):
    enc, Xt = fitted
    stored = load_encoder(save_encoder(enc, root=tmp_path, **META), root=tmp_path)
    with pytest.raises(EncoderMismatchError, match="subject mismatch.*'subj02'"):
        stored.predict(Xt, subject="subj02")


def test_target_set_mismatch(tmp_path, fitted):
    enc, Xt = fitted
    stored = load_encoder(save_encoder(enc, root=tmp_path, **META), root=tmp_path)
    stored.predict(Xt, target_ids=np.arange(7))
    with pytest.raises(EncoderMismatchError, match="target set mismatch"):
        stored.predict(Xt, target_ids=np.arange(1, 8))


def test_tampered_weights_are_rejected(tmp_path, fitted):
    enc, _ = fitted
    key = save_encoder(enc, root=tmp_path, **META)
    path = tmp_path / key / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ArtifactError, match="digest"):
        load_encoder(key, root=tmp_path)


def test_missing_encoder_is_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="missing"):
        load_encoder("0" * 24, root=tmp_path)


def test_no_pickle_in_weights(tmp_path, fitted):
    enc, _ = fitted
    key = save_encoder(enc, root=tmp_path, **META)
    data = (tmp_path / key / "weights.safetensors").read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    assert data[8:9] == b"{" and b"__pickle__" not in data[: 8 + header_len]
