"""What the Pipeline page reports, without streamlit: the artifacts in the BrainPrompt home
(:func:`artifact_status`), the live-inference cache (:func:`inference_cache_entries`,
:func:`clear_inference_cache`), background jobs (:func:`jobs_frame`), the configured datasets
(:func:`datasets_frame`, :func:`describe_dataset`) and their validation (:func:`validation_report`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.config import home
from core.data.dataset import Dataset


def folder_size(path: Path) -> tuple[int, int]:
    """(number of files, total bytes) under ``path`` (0, 0 when absent)."""
    n = size = 0
    if not path.exists():
        return 0, 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                n += 1
                size += p.stat().st_size
        except OSError:
            continue
    return n, size


def artifact_status() -> pd.DataFrame:
    """What the BrainPrompt home holds: one row per kind of artifact with files and bytes."""
    root = home()
    kinds = [
        ("datasets", "built datasets (the demo world)"),
        ("features", "response-embedding shards"),
        ("encoders", "fitted encoders kept for predictions"),
        ("results", "fit scores, results tables, partitions"),
        ("cache/inference", "live-inference cache"),
        ("flatmaps", "flatmap rasters"),
        ("jobs", "background job status and logs"),
    ]
    rows = []
    for rel, what in kinds:
        n, size = folder_size(root / rel)
        rows.append(
            {"artifact": rel, "what": what, "files": n, "MB": round(size / 2**20, 2),
             "path": str(root / rel)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def inference_cache_entries() -> int:
    """Number of entries in the live-inference cache."""
    from core.features.infer import default_cache

    return len(default_cache())


def clear_inference_cache() -> int:
    """Remove every live-inference cache entry; returns how many were removed."""
    from core.features.infer import default_cache

    return default_cache().clear()


def jobs_frame() -> pd.DataFrame:
    """Every background job with its state, start time and duration."""
    import time as _time

    from core.config import subdir
    from core.pipeline.jobs import job_status

    rows = []
    for folder in sorted(subdir("jobs").iterdir()):
        if not folder.is_dir():
            continue
        try:
            st = job_status(folder.name)
        except ValueError:
            continue
        if st.state == "absent":
            continue
        end = st.finished or _time.time()
        rows.append(
            {
                "job": st.name,
                "state": st.state,
                "started": pd.Timestamp(st.started, unit="s").strftime("%Y-%m-%d %H:%M:%S")
                if st.started
                else "",
                "seconds": round(end - st.started, 1) if st.started else None,
                "command": "python -m core " + " ".join(st.argv),
            }
        )
    return pd.DataFrame(rows)


def datasets_frame(entries: dict[str, dict]) -> pd.DataFrame:
    """The configured datasets as a table (name, kind, path, simulated)."""
    return pd.DataFrame(
        [
            {"name": n, "kind": e["kind"], "simulated": e["kind"] == "demo",
             "path": e.get("path") or "(built into <home>/datasets/demo)"}
            for n, e in entries.items()
        ]
    )  # fmt: skip


def validation_report(name: str) -> pd.DataFrame | None:
    """The validation report of a configured real dataset (None for the demo)."""
    from core.data.registry import configured

    entry = configured().get(name)
    if entry is None or entry["kind"] == "demo":
        return None
    if entry["kind"] == "nsd":
        from core.data.nsd_validate import validate_nsd

        return validate_nsd(entry["path"]).to_frame()
    from core.data.algonauts import validate_algonauts

    return validate_algonauts(entry["path"]).to_frame()


def describe_dataset(ds: Dataset) -> dict:
    """A few numbers about a dataset for a header (images, subjects, simulated)."""
    return {
        "name": ds.name,
        "kind": ds.kind,
        "simulated": bool(ds.simulated),
        "n_images": int(len(ds.stimuli.ids)),
        "subjects": list(ds.subject_names),
    }
