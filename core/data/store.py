"""The one on-disk layout of a subject's data (demo world, and the compact NSD/Algonauts caches).

``<subject_dir>/subject.json``
    subject id, shapes, ROI family names (label value -> ROI name), surface id, response encoding.
``<subject_dir>/meta.npz``
    stimulus_ids, n_repeats, is_test, general_mask, optional ncsnr, geometry hemi/vertex, and one
    ``roi__<family>`` label array per ROI family.
``<subject_dir>/responses.npy`` (+ ``responses_scale.npy`` for ``int8-scaled``)
    Responses, images x targets. Encodings: ``float32``, ``float16``, or ``int8-scaled``
    (per-target scale, value = int8 * scale; the quantisation error is below 0.05% of a z-scored
    target's variance). Always returned as float32.
``<subject_dir>/test_repeats.npy`` (+ ``test_repeats_scale.npy``), optional
    The single repeats of the test images, ``(n_repeats * n_test) x targets`` in the responses'
    encoding (repeat-major; ``subject.json`` names ``[n_repeats, n_test]``). Image ``i``'s
    repeats fill its first ``n_repeats[i]`` slots; the rest are stored as 0 and read back as
    NaN. Read on first use (:meth:`~core.data.dataset.SubjectData.test_repeat_responses`).

Everything is written atomically and read with ``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.dataset import DatasetError, RoiFamily, SubjectData, TargetGeometry, TargetSet
from core.storage import (
    ArtifactError,
    atomic_write,
    load_npy,
    load_npz,
    read_json,
    save_npy,
    save_npz,
    write_json,
)

ENCODINGS = ("float32", "float16", "int8-scaled")


def _encode_responses(responses: np.ndarray, encoding: str) -> dict[str, np.ndarray]:
    if encoding == "float32":
        return {"responses": np.asarray(responses, dtype=np.float32)}  # no copy when float32
    if encoding == "float16":
        return {"responses": responses.astype(np.float16)}
    if encoding == "int8-scaled":
        scale = np.abs(responses).max(axis=0) / 127.0
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        q = np.clip(np.rint(responses / scale), -127, 127).astype(np.int8)
        return {"responses": q, "responses_scale": scale}
    raise ValueError(f"unknown response encoding {encoding!r}; expected one of {ENCODINGS}")


def save_subject(folder: Path, data: SubjectData, encoding: str = "float32") -> None:
    """Write ``data`` to ``folder`` in the layout above (atomic per file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = data.targets
    arrays: dict[str, np.ndarray] = {
        "stimulus_ids": data.stimulus_ids.astype(np.int64),
        "n_repeats": data.n_repeats.astype(np.int16),
        "is_test": data.is_test.astype(bool),
        "general_mask": t.general_mask.astype(bool),
    }
    if t.ncsnr is not None:
        arrays["ncsnr"] = t.ncsnr.astype(np.float32)
    if t.geometry is not None:
        arrays["geometry_hemi"] = t.geometry.hemi.astype(np.int8)
        arrays["geometry_vertex"] = t.geometry.vertex.astype(np.int32)
    for name, fam in t.roi_families.items():
        arrays[f"roi__{name}"] = fam.labels.astype(np.int16)
    for name, arr in _encode_responses(np.asarray(data.responses), encoding).items():
        save_npy(folder / f"{name}.npy", arr)
    repeats = data.test_repeat_responses()
    if repeats is not None and encoding in ("float32", "float16"):
        _save_repeats(folder / "test_repeats.npy", repeats, np.dtype(encoding))
    elif repeats is not None:
        flat = np.nan_to_num(repeats).reshape(-1, repeats.shape[2])
        for name, arr in _encode_responses(flat, encoding).items():
            save_npy(folder / f"{name.replace('responses', 'test_repeats')}.npy", arr)
    save_npz(folder / "meta.npz", **arrays)
    write_json(
        folder / "subject.json",
        {
            "subject": data.subject,
            "n_images": int(data.responses.shape[0]),
            "n_targets": int(data.responses.shape[1]),
            "encoding": encoding,
            "surface": t.geometry.surface if t.geometry is not None else None,
            "content_digest": data.digest(),
            "roi_family_order": list(t.roi_families),
            "test_repeats": None if repeats is None else list(repeats.shape[:2]),
            "roi_families": {
                name: {str(k): v for k, v in fam.names.items()}
                for name, fam in t.roi_families.items()
            },
        },
    )


def _save_repeats(path: Path, repeats: np.ndarray, dtype: np.dtype) -> None:
    """``repeats`` (n_repeats, n_test, n_targets) as one ``(n_repeats * n_test) x n_targets``
    ``.npy`` of ``dtype``, NaN stored as 0, written one repeat at a time (atomic): the copy
    that replaces NaN is one repeat's, not the whole array's (NSD: 63 MB, not 189 MB)."""
    n_rep, n_test, n_targets = repeats.shape
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (n_rep * n_test, n_targets)}  # fmt: skip

    def write(fh) -> None:
        np.lib.format.write_array_header_1_0(fh, header)
        for k in range(n_rep):
            fh.write(np.ascontiguousarray(np.nan_to_num(repeats[k]), dtype=dtype).data)

    atomic_write(path, write)


def load_subject(folder: Path) -> SubjectData:
    """Read a subject written by :func:`save_subject`.

    Raises
    ------
    ArtifactError
        When a file is missing or corrupt (the message names it).
    DatasetError
        When the files disagree in shape.
    """
    folder = Path(folder)
    info = read_json(folder / "subject.json")
    meta = load_npz(folder / "meta.npz")
    encoding = info.get("encoding", "float32")
    responses = _decode(folder, "responses", encoding)
    expected = (info["n_images"], info["n_targets"])
    if responses.shape != tuple(expected):
        raise DatasetError(
            f"{folder / 'responses.npy'}: shape {responses.shape}, expected {tuple(expected)}"
        )
    order = info.get("roi_family_order") or list(info["roi_families"])
    families = {
        name: RoiFamily(
            name=name,
            labels=meta[f"roi__{name}"],
            names={int(k): v for k, v in names.items()},
        )
        for name, names in ((n, info["roi_families"][n]) for n in order)
    }
    geometry = None
    if info.get("surface") is not None:
        geometry = TargetGeometry(
            surface=info["surface"], hemi=meta["geometry_hemi"], vertex=meta["geometry_vertex"]
        )
    targets = TargetSet(
        roi_families=families,
        general_mask=meta["general_mask"],
        ncsnr=meta.get("ncsnr"),
        geometry=geometry,
    )
    repeats = None
    if info.get("test_repeats"):
        n_rep, n_test = (int(v) for v in info["test_repeats"])
        counts = meta["n_repeats"][meta["is_test"]]

        def repeats() -> np.ndarray:
            r = np.require(_decode(folder, "test_repeats", encoding), requirements="W")
            r = r.reshape(n_rep, n_test, -1)
            r[np.arange(n_rep)[:, None] >= counts[None, :]] = np.nan  # slots past the count
            return r

    return SubjectData(
        subject=info["subject"],
        stimulus_ids=meta["stimulus_ids"],
        responses=responses,
        n_repeats=meta["n_repeats"],
        is_test=meta["is_test"],
        targets=targets,
        content_digest=info.get("content_digest"),
        test_repeats=repeats,
    )


def _decode(folder: Path, stem: str, encoding: str) -> np.ndarray:
    """``<stem>.npy`` (with ``<stem>_scale.npy`` for ``int8-scaled``) as float32."""
    raw = load_npy(folder / f"{stem}.npy")
    if encoding == "int8-scaled":
        scale = load_npy(folder / f"{stem}_scale.npy")
        return raw.astype(np.float32) * scale[None, :].astype(np.float32)
    return raw.astype(np.float32, copy=False)


def stored_subject_digest(folder: Path) -> str | None:
    """The content digest recorded in a stored subject's ``subject.json`` (None if absent)."""
    try:
        return read_json(Path(folder) / "subject.json").get("content_digest")
    except ArtifactError:
        return None
