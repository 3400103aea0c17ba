"""Variance partitioning over the grid: every configured pair for every trained MLLM and subject
(one partition: :mod:`core.results.partition`)."""

from __future__ import annotations

import pandas as pd
from tqdm import tqdm

from core.data.dataset import Dataset
from core.data.rois import roi_masks
from core.results.partition import (
    PARTITION_KEY,
    PartitionSpec,
    partition_provenance,
    partition_rows,
    run_partition,
)


def partition_specs(
    config, subjects: list[str], layer_of: dict[str, int]
) -> list[PartitionSpec]:
    """Every configured pair for every trained MLLM and subject, at ``layer_of[model]``: the
    layer its scores are reported at (partitions of the random-init control are not shown
    anywhere); then each instruction of ``config.control_pairs`` against its own text-only
    control, for every MLLM whose ``text:`` control the grid fits (B at the control's own
    CV-chosen layer)."""
    from core.models.roles import control_of, model_role

    models = [m for m in config.models if model_role(m) == "mllm"]
    pairs = [
        (a, b) for a, b in config.pairs if a in config.instructions and b in config.instructions
    ]
    specs = [
        PartitionSpec(config.dataset, s, m, a, b, int(layer_of[m]))
        for m in models
        if m in layer_of
        for a, b in pairs
        for s in subjects
    ]
    wanted = getattr(config, "control_pairs", None)
    wanted = config.instructions if wanted is None else wanted
    for m in models:
        text = control_of(m)
        if m not in layer_of or text not in config.models or text not in layer_of:
            continue
        specs += [
            PartitionSpec(config.dataset, s, m, ins, ins, int(layer_of[m]), model_b=text,
                          layer_b=int(layer_of[text]))  # fmt: skip
            for ins in config.instructions
            if ins in wanted
            for s in subjects
        ]
    return specs


def run_partitions(
    ds: Dataset, config, subjects: list[str], layer_of: dict[str, int], progress: bool = True
) -> pd.DataFrame:
    """Partition every configured pair for every generative model and subject; write the table.
    (With ``--engine ray`` the missing ones were computed on the cluster first and are read
    from the store here.)"""
    from core.results.tables import merge_table, results_dir

    specs = partition_specs(config, subjects, layer_of)
    rows = []
    for spec in tqdm(
        specs, desc="variance partitioning", unit="pair", disable=not progress or not specs
    ):
        arrays = run_partition(ds, spec, config.settings)
        prov = partition_provenance(ds, spec, config.settings)
        rows.extend(partition_rows(spec, arrays, roi_masks(ds.subject(spec.subject)), prov))
    table = pd.DataFrame(rows)
    if not table.empty:
        # pairs the dashboard added with the same settings stay
        merge_table(
            results_dir(config.dataset) / "partitions",
            table,
            PARTITION_KEY,
            current=ds,
            group="settings_key",
            settings=config.settings,
        )
    return table


