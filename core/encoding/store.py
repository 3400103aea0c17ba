"""Fitted encoders on disk: safetensors weights + JSON manifest, content-addressed.

Layout under ``root`` (default ``core.config.subdir("encoders")``)::

    <key>/weights.safetensors   coef (p, t), best_alphas (t,), x_mean (p,), x_scale (p,),
                                y_mean (t,), y_scale (t,), [intercept (t,)], [target_ids (t,)]
    <key>/manifest.json         dataset, subject, model, instruction, layer, settings,
                                scores summary, n_features, n_targets, target_digest,
                                weights_sha256, key

``key = content_key("encoder", {dataset, subject, model, instruction, layer, settings,
n_features, target_digest, provenance})``: everything known before fitting, so a caller can test
whether an encoder exists without fitting it; ``provenance`` carries the content keys of the
subject's data and of the response embeddings (model weights, instruction text, token budget). The manifest is written last (its presence marks a complete
artifact). No pickle anywhere.

Predictions: ``z = ((x - x_mean) / x_scale) @ coef (+ intercept)`` are responses in the
z units of the training set (per target: minus its training mean, divided by its training std);
``original = z * y_scale + y_mean`` are in the units of the training responses (e.g. % signal
change or z-scored betas, whatever the fit saw).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from core.config import subdir
from core.encoding.estimator import RidgeEncoder
from core.encoding.standardize import Standardizer
from core.hashing import array_digest, bytes_digest, content_key
from core.storage import ArtifactError, atomic_write_bytes, read_json, write_json

WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
FORMAT = 1


class EncoderMismatchError(ValueError):
    """A stored encoder does not fit the request (feature size, subject or target set)."""


def target_digest(target_ids: Any) -> str:
    """Digest of a target set (e.g. voxel indices), shape (n_targets,), as int64."""
    ids = np.asarray(target_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError("target_ids must be a 1-D integer array")
    return array_digest(ids.astype(np.int64))


def encoder_key(
    *, dataset: str, subject: str, model: str, instruction: str, layer: int | str,
    settings: dict[str, Any], n_features: int, target_digest: str,
    provenance: dict[str, Any] | None = None,
) -> str:
    """Content key of an encoder (see module docstring).

    ``provenance`` holds the content keys of what the encoder was fitted from (the pipeline
    passes the fit key, the subject's content key and the response-embedding shard key, which
    covers the model's weights, the instruction text, the token budget and the pooling), so two
    encoders for the same names but other content never share a key.
    """
    return content_key("encoder", {
        "dataset": dataset, "subject": subject, "model": model, "instruction": instruction,
        "layer": layer, "settings": settings, "n_features": int(n_features),
        "target_digest": target_digest, "provenance": provenance or {},
    })


def _root(root: Path | str | None) -> Path:
    return Path(root) if root is not None else subdir("encoders")


def save_encoder(
    encoder: Any, *, dataset: str, subject: str, model: str, instruction: str,
    layer: int | str, target_ids: Any | None = None, settings: dict[str, Any] | None = None,
    scores_summary: dict[str, Any] | None = None, root: Path | str | None = None,
    provenance: dict[str, Any] | None = None,
) -> str:
    """Save a fitted :class:`core.encoding.estimator.RidgeEncoder`; return its key.

    Parameters
    ----------
    encoder : RidgeEncoder
        Fitted (``standardize=True`` or False; without standardisation the stored means are 0
        and scales 1).
    dataset, subject, model, instruction : str
    layer : int or str
    target_ids : array-like of int, shape (n_targets,), optional
        Which targets (e.g. voxel indices) the columns are; default ``arange(n_targets)``.
    settings : dict, optional
        Fit settings to record; defaults to the encoder's ``get_params()`` plus the alpha grid.
    scores_summary : dict, optional
        JSON-serialisable summary (e.g. mean test r per ROI).
    root : path, optional
    provenance : dict, optional
        Content keys of what the encoder was fitted from (part of the key and the manifest).

    Returns
    -------
    key : str
    """
    from safetensors.numpy import save

    if not hasattr(encoder, "coef_"):
        raise ValueError("encoder is not fitted")
    p, t = encoder.coef_.shape
    ids = np.arange(t) if target_ids is None else np.asarray(target_ids)
    if ids.shape != (t,):
        raise EncoderMismatchError(f"target_ids has shape {ids.shape}, encoder has {t} targets")
    digest = target_digest(ids)
    if settings is None:
        settings = {k: v for k, v in encoder.get_params().items() if k != "alphas"}
        settings["alphas"] = [float(a) for a in encoder.alphas_]
        settings = {k: (v if isinstance(v, (int, float, str, bool, list, type(None))) else str(v))
                    for k, v in settings.items()}
    key = encoder_key(dataset=dataset, subject=subject, model=model, instruction=instruction,
                      layer=layer, settings=settings, n_features=p, target_digest=digest,
                      provenance=provenance)
    xs, ys = encoder.x_scaler_, encoder.y_scaler_
    tensors = {
        "coef": np.ascontiguousarray(encoder.coef_, dtype=np.float32),
        "best_alphas": np.asarray(encoder.best_alphas_, dtype=np.float32),
        "x_mean": (xs.mean_ if xs else np.zeros(p)).astype(np.float32),
        "x_scale": (xs.scale_ if xs else np.ones(p)).astype(np.float32),
        "y_mean": (ys.mean_ if ys else np.zeros(t)).astype(np.float32),
        "y_scale": (ys.scale_ if ys else np.ones(t)).astype(np.float32),
        "target_ids": ids.astype(np.int64),
    }
    if encoder.intercept_ is not None:
        tensors["intercept"] = np.asarray(encoder.intercept_, dtype=np.float32)
    data = save(tensors)
    folder = _root(root) / key
    atomic_write_bytes(folder / WEIGHTS, data)
    write_json(folder / MANIFEST, {
        "format": FORMAT, "key": key, "dataset": dataset, "subject": subject, "model": model,
        "instruction": instruction, "layer": layer, "settings": settings,
        "scores_summary": scores_summary or {}, "n_features": p, "n_targets": t,
        "target_digest": digest, "weights_sha256": bytes_digest(data),
        "provenance": provenance or {},
    })
    return key


@dataclass
class Prediction:
    """Predicted responses, both of shape (n_samples, n_targets).

    Attributes
    ----------
    original : ndarray
        In the units of the training responses.
    z : ndarray
        In training z units (per target: (response - train mean) / train std).
    """

    original: np.ndarray
    z: np.ndarray


@dataclass
class StoredEncoder:
    """An encoder loaded from disk (manifest + arrays)."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def n_features(self) -> int:
        return int(self.manifest["n_features"])

    @property
    def target_ids(self) -> np.ndarray:
        return self.arrays["target_ids"]

    def check(self, *, subject: str | None = None, target_ids: Any | None = None,
              n_features: int | None = None) -> None:
        """Raise :class:`EncoderMismatchError` naming what differs from the expectation."""
        m = self.manifest
        if subject is not None and subject != m["subject"]:
            raise EncoderMismatchError(
                f"subject mismatch: encoder is for {m['subject']!r}, asked for {subject!r}")
        if n_features is not None and n_features != self.n_features:
            raise EncoderMismatchError(
                f"feature size mismatch: encoder expects {self.n_features} features, "
                f"got {n_features}")
        if target_ids is not None and target_digest(target_ids) != m["target_digest"]:
            raise EncoderMismatchError(
                f"target set mismatch: encoder has {m['n_targets']} targets with digest "
                f"{m['target_digest'][:12]}, asked for {np.size(target_ids)} targets with "
                f"digest {target_digest(target_ids)[:12]}")

    def predict(self, features: Any, *, subject: str | None = None,
                target_ids: Any | None = None) -> Prediction:
        """Predict responses from features of shape (n, p) or (p,) (one stimulus).

        Parameters
        ----------
        features : array-like of shape (n_samples, n_features) or (n_features,)
        subject : str, optional
            If given, must match the encoder's subject.
        target_ids : array-like of int, optional
            If given, must be the encoder's target set.

        Returns
        -------
        Prediction
            ``original`` and ``z``, each (n_samples, n_targets), float32.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise EncoderMismatchError(f"features must be (n, p) or (p,), got shape {x.shape}")
        self.check(subject=subject, target_ids=target_ids, n_features=x.shape[1])
        estimator = self.estimator
        z = estimator.predict(x, units="z")
        return Prediction(estimator.y_scaler_.inverse_transform(z, "float32"), z)

    @cached_property
    def estimator(self) -> RidgeEncoder:
        """The fitted :class:`~core.encoding.estimator.RidgeEncoder` these arrays describe
        (float64 arithmetic), so predictions from disk and in memory share one ``predict``."""
        a = self.arrays
        est = RidgeEncoder(standardize=True, dtype="float64")
        est.x_scaler_ = Standardizer.from_moments(a["x_mean"], a["x_scale"])
        est.y_scaler_ = Standardizer.from_moments(a["y_mean"], a["y_scale"])
        est.coef_ = a["coef"].astype(np.float64)
        est.intercept_ = a["intercept"].astype(np.float64) if "intercept" in a else None
        est.n_features_in_, est.n_targets_ = est.coef_.shape
        return est


def load_encoder(key: str, root: Path | str | None = None) -> StoredEncoder:
    """Load an encoder saved by :func:`save_encoder`.

    Raises
    ------
    ArtifactError
        Missing or corrupt manifest or weights, or weights not matching the manifest digest.
    """
    from safetensors.numpy import load

    folder = _root(root) / key
    manifest = read_json(folder / MANIFEST)
    path = folder / WEIGHTS
    if not path.exists():
        raise ArtifactError(f"missing file: {path}")
    data = path.read_bytes()
    if bytes_digest(data) != manifest.get("weights_sha256"):
        raise ArtifactError(f"weights in {path} do not match the manifest digest")
    try:
        arrays = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise ArtifactError(f"corrupt weights file {path}: {exc}") from exc
    p, t = manifest["n_features"], manifest["n_targets"]
    if arrays["coef"].shape != (p, t):
        raise ArtifactError(f"{path}: coef shape {arrays['coef'].shape} != ({p}, {t})")
    return StoredEncoder(manifest, arrays)


def list_encoders(root: Path | str | None = None) -> list[dict[str, Any]]:
    """Manifests of every complete encoder under ``root`` (sorted by key)."""
    base = _root(root)
    out = []
    for path in sorted(base.glob(f"*/{MANIFEST}")):
        try:
            out.append(read_json(path))
        except ArtifactError:
            continue
    return out
