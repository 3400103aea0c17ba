"""One encoder or one instruction pair on demand: what the app's background jobs run
(``python -m core encoder|partition``), so a page can ask for a layer, model or pair the grid
did not compute."""

from __future__ import annotations

import pandas as pd

from core.data.rois import roi_masks
from core.models.roles import model_role
from core.results.fit import IMAGE, FitSettings, FitSpec, run_fit
from core.results.tables import FIT_KEY, grid_settings, merge_table, results_dir


def compute_encoder(
    dataset: str,
    subject: str,
    model: str,
    instruction: str | None,
    layer: int,
    settings: FitSettings,
    progress: bool = True,
) -> list[dict]:
    """Extract the embeddings of one model x instruction (resumable) and fit one encoder, kept.

    When ``settings`` are the last grid's, the fit's ROI rows are merged into ``roi_scores``
    (so the results pages show the new layer, model or subject too).

    Returns the fit's ROI rows (see :func:`core.results.fit.run_fit`).
    """
    from core.data.registry import open_dataset
    from core.features.extract import extract_model
    from core.features.infer import get_adapter
    from core.models.instructions import resolve_instruction

    ds = open_dataset(dataset)
    ext = settings.extraction()
    adapter = get_adapter(model, ext.device, ext.dtype)
    ins = None if instruction in (None, IMAGE) else resolve_instruction(instruction)
    extract_model(ds, adapter, [ins] if ins else [], settings.generation_options(),
                  prefix_reuse=ext.prefix_reuse, method=ext.method, progress=progress)  # fmt: skip
    spec = FitSpec(dataset, subject, model, ins.id if ins else IMAGE, int(layer))
    rows = run_fit(ds, spec, settings, keep_encoder=True)
    if rows and settings == grid_settings(dataset):
        new = pd.DataFrame(rows)
        new["role"] = model_role(model)
        merge_table(results_dir(dataset) / "roi_scores", new, FIT_KEY, current=ds,
                    group="settings_key", settings=settings)  # fmt: skip
    return rows


def compute_partition(
    dataset: str, model: str, a: str, b: str, settings: FitSettings, progress: bool = True
) -> pd.DataFrame:
    """Extract what is missing and partition one instruction pair for every subject; the new
    rows are merged into ``partitions.parquet`` (replacing any earlier rows of that pair)."""
    from core.data.registry import open_dataset
    from core.features.extract import extract_model
    from core.features.infer import get_adapter
    from core.models.instructions import resolve_instruction
    from core.results.partition import (
        PARTITION_KEY,
        PartitionSpec,
        partition_provenance,
        partition_rows,
        run_partition,
    )

    ds = open_dataset(dataset)
    ext = settings.extraction()
    adapter = get_adapter(model, ext.device, ext.dtype)
    ins = [resolve_instruction(a), resolve_instruction(b)]
    extract_model(ds, adapter, ins, settings.generation_options(), prefix_reuse=ext.prefix_reuse,
                  method=ext.method, progress=progress)  # fmt: skip
    layer = reported_layer(dataset, model, ds, adapter.n_hidden_states - 1)
    rows = []
    for subject in ds.subject_names:
        spec = PartitionSpec(dataset, subject, model, ins[0].id, ins[1].id, layer)
        arrays = run_partition(ds, spec, settings)
        prov = partition_provenance(ds, spec, settings)
        rows.extend(partition_rows(spec, arrays, roi_masks(ds.subject(subject)), prov))
    return merge_table(
        results_dir(dataset) / "partitions",
        pd.DataFrame(rows),
        PARTITION_KEY,
        current=ds,
        group="settings_key",
        settings=settings,
    )


def reported_layer(dataset: str, model: str, ds, default: int) -> int:
    """The layer a model's scores are reported at (its CV-best layer in the results table),
    so a partition the dashboard adds agrees with the scores beside it; ``default`` when the
    grid has not fitted the model."""
    from core.results.selection import best_layers
    from core.results.tables import load_roi_table

    table = load_roi_table(dataset, ds)
    if table.empty or model not in set(table["model"]):
        return default
    return best_layers(table[table["model"] == model]).get(model, default)
