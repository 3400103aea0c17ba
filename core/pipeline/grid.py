"""The whole grid: extract -> fit -> score -> report, resumable, for chosen subjects, models,
instructions and layers.

Outputs under ``<home>/results/<dataset>/``:

- ``fits/<key>.npz|json``: per-target scores of each fit (see :mod:`core.results.fit`);
- ``roi_scores.parquet`` and ``.csv``: the tidy results table the app reads, one row per
  subject x model x instruction x layer x ROI;
- ``partitions/<key>.npz|json`` and ``partitions.parquet``: variance partitioning of instruction
  pairs (see :mod:`core.results.partition`);
- ``grid.json``: the configuration of the last run and its timing.

The app and the report read these back through :mod:`core.results` (the tables and their
currency rules in :mod:`core.results.tables`, views in :mod:`core.results.views`).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.data.registry import open_dataset
from core.features.store import model_layers
from core.models.roles import is_generative, model_role
from core.results.fit import IMAGE, FitSettings, FitSpec, run_fit
from core.results.selection import best_layers
from core.results.tables import FIT_KEY, merge_table, results_dir
from core.storage import write_json

#: Default models per dataset kind: the MLLM, its random-init twin and its vision tower.
DEMO_MODELS = ("demo-vlm", "random:demo-vlm", "vision:demo-vlm")
#: Default instruction pairs for variance partitioning (the paper's IC vs IU2, and more).
DEFAULT_PAIRS = (("IC", "IU2"), ("IC", "VQ2"), ("IU1", "CR"))


#: Environment variable that sets the default number of fit worker processes (e.g. a Slurm
#: job's ``$SLURM_CPUS_PER_TASK``, or 1 where several pipelines share the cores).
JOBS_ENV = "BRAINPROMPT_JOBS"


def default_jobs() -> int:
    """Fit worker processes when none are asked for: ``$BRAINPROMPT_JOBS`` if set, else the
    number of cores.

    Raises
    ------
    ValueError
        When ``$BRAINPROMPT_JOBS`` is not a positive integer.
    """
    raw = os.environ.get(JOBS_ENV, "").strip()
    if not raw:
        return os.cpu_count() or 1
    try:
        jobs = int(raw)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ValueError(f"{JOBS_ENV}={raw!r}: expected a positive whole number of processes")
    return jobs


@dataclass
class GridConfig:
    """What to run.

    Parameters
    ----------
    dataset : str
    models : list of str
        Registry names (``random:`` prefix for random-init twins, ``vision:`` for a VLM's vision
        tower as the vision-only baseline).
    instructions : list of str
        Instruction ids (the paper's 10 by default).
    layers : list of int or None
        Hidden-state indices; None = all.
    subjects : list of str or None
        None = all.
    settings : FitSettings
    keep_encoders : {"best", "none", "last", "all"}
        Which fitted encoders to keep for the app's predictions (``"best"``, the default: each
        model's cross-validated best layer, the layer every page reports; ``"last"``: the last
        layer of each model x instruction).
    pairs : list of (str, str)
        Instruction pairs for variance partitioning (at each model's CV-best layer).
    control_pairs : list of str or None
        Instructions partitioned against their own text-only control (what the image adds):
        for every trained MLLM ``m`` whose ``text:m`` is among ``models``, instruction X of
        ``m`` against X of ``text:m``, each at its CV-best layer. None (the default): every
        instruction of the grid; ``[]``: none.
    extract_batch_size : int
    engine : {"local", "ray"}
        Where the work runs (see :mod:`core.pipeline.engine`); both write the same store.
    address : str or None
        Ray cluster address (``"auto"``, ``HOST:PORT``); None starts a local Ray instance.
    unit_size : int
        Images per extraction unit (Ray).
    gpus_per_fit : float
        Ray: the GPU share of one fit (e.g. 0.25 runs four fits per GPU); 0 = one CPU each.
    jobs : int
        Encoder fits run in this many worker processes, each with one BLAS thread (default:
        :func:`default_jobs`); 1 fits in this process with multi-threaded BLAS.
    """

    dataset: str = "demo"
    models: list[str] = field(default_factory=lambda: list(DEMO_MODELS))
    instructions: list[str] = field(
        default_factory=lambda: ["IU1", "IU2", "IU3", "VQ1", "VQ2", "VQ3", "IC", "SR", "CR", "VR"]
    )
    layers: list[int] | None = None
    subjects: list[str] | None = None
    settings: FitSettings = field(default_factory=FitSettings)
    keep_encoders: str = "best"
    pairs: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_PAIRS))
    control_pairs: list[str] | None = None
    extract_batch_size: int = 32
    jobs: int = field(default_factory=default_jobs)
    engine: str = "local"
    address: str | None = None
    unit_size: int = 256
    gpus_per_fit: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["settings"] = self.settings.to_dict()
        return d




def fit_specs(
    config: GridConfig, subjects: list[str], layers_of: dict[str, list[int]]
) -> list[FitSpec]:
    """Every fit of the grid, in a stable order."""
    from core.models.layers import layer_indices

    specs = []
    for model in config.models:
        instructions = config.instructions if is_generative(model) else [IMAGE]
        # negative layers count from the end; stored under their positive index (one key per
        # fit); a layer outside the model's range is an error, never wrapped around
        n_states = len(layers_of[model])
        # a one-layer feature space (the length control) has just that layer
        layers = [0] if n_states == 1 else layer_indices(config.layers, n_states, model)
        for subject in subjects:
            for ins in instructions:
                for layer in layers:
                    specs.append(FitSpec(config.dataset, subject, model, ins, int(layer)))
    return specs


def extraction_passes(models: list[str]) -> list[list[str]]:
    """Models in the order extraction must run them: every model first, then the controls
    (``text:``, ``length:``), which read the answers their source generated."""
    from core.models.roles import CONTROL_ROLES

    controls = [m for m in models if m.startswith(tuple(CONTROL_ROLES))]
    return [p for p in ([m for m in models if m not in controls], controls) if p]


def grid_image_ids(ds, subjects: list[str]):
    """The stimuli that have responses for the chosen subjects (sorted): the only images the
    fits need, so nothing else is extracted."""

    return np.unique(np.concatenate([ds.subject(s).stimulus_ids for s in subjects]))


def run_extraction(
    config: GridConfig, ds=None, progress: bool = True, subjects: list[str] | None = None
) -> dict[str, list[int]]:
    """Extract every model x instruction over the images of the chosen subjects (resumable,
    skipping what is stored) with the configured engine; returns layers per model."""
    from core.models.instructions import resolve_instructions

    ds = ds if ds is not None else open_dataset(config.dataset)
    subjects = subjects or config.subjects or ds.subject_names
    image_ids = grid_image_ids(ds, subjects)
    instructions = resolve_instructions(config.instructions)
    extraction = config.settings.extraction()
    options = config.settings.generation_options()
    if config.engine == "ray":
        from core.pipeline.engine import plan_extraction, ray_extract, ray_extraction

        extraction = ray_extraction(extraction)  # "auto" resolved on the workers' devices
        for models in extraction_passes(config.models):  # controls read their source's answers
            units = plan_extraction(ds, models, instructions, options, image_ids,
                                    config.unit_size, extraction)  # fmt: skip
            ray_extract(ds, units, options, batch_size=config.extract_batch_size,
                        progress=progress, extraction=extraction)  # fmt: skip
        return {m: model_layers(m, config.dataset) for m in config.models}
    from core.features.extract import extract_model
    from core.models.adapters import load_adapter

    layers_of = {}
    for model in [m for models in extraction_passes(config.models) for m in models]:
        adapter = load_adapter(model, device=extraction.device, dtype=extraction.dtype)
        extract_model(
            ds,
            adapter,
            instructions,
            options,
            batch_size=config.extract_batch_size,
            prefix_reuse=extraction.prefix_reuse,
            image_ids=image_ids,
            progress=progress,
            method=extraction.method,
        )
        layers_of[model] = list(range(adapter.n_hidden_states))
    return layers_of


def _init_fit_worker() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)


_WORKER_DATASETS: dict = {}


def _fit_in_worker(spec: FitSpec, keep: bool, settings: FitSettings) -> list[dict]:
    if spec.dataset not in _WORKER_DATASETS:
        _WORKER_DATASETS[spec.dataset] = open_dataset(spec.dataset)
    return run_fit(_WORKER_DATASETS[spec.dataset], spec, settings, keep_encoder=keep)


def run_fits(
    ds,
    specs: list[FitSpec],
    keeps: list[bool],
    settings: FitSettings,
    jobs: int = 1,
    progress: bool = True,
) -> list[dict]:
    """Run (or load) every fit; returns the ROI rows in the order of ``specs``.

    With ``jobs > 1`` the fits run in that many spawned worker processes (one BLAS thread each):
    much of a fit is single-threaded numpy, so two single-threaded workers beat one two-threaded
    process on 2 cores.
    """
    bar = tqdm(total=len(specs), desc="fitting encoders", unit="fit", disable=not progress)
    results: list[list[dict]] = [[] for _ in specs]
    if jobs <= 1 or len(specs) < 2:
        for i, (spec, keep) in enumerate(zip(specs, keeps, strict=True)):
            bar.set_postfix_str(spec.label(), refresh=False)
            results[i] = run_fit(ds, spec, settings, keep_encoder=keep)
            bar.update(1)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init_fit_worker
        ) as pool:
            futures = {
                pool.submit(_fit_in_worker, spec, keep, settings): i
                for i, (spec, keep) in enumerate(zip(specs, keeps, strict=True))
            }
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                bar.set_postfix_str(specs[i].label(), refresh=False)
                bar.update(1)
    bar.close()
    return [row for rows in results for row in rows]


def run_grid(config: GridConfig, progress: bool = True, extract: bool = True) -> pd.DataFrame:
    """Run (or resume) the whole grid and write the results table.

    Returns
    -------
    table : DataFrame
        The ROI results table (also written to ``roi_scores.parquet`` / ``.csv``).
    """
    if config.engine not in ("local", "ray"):
        raise ValueError(f"unknown engine {config.engine!r}; expected 'local' or 'ray'")
    t0 = time.perf_counter()
    ds = open_dataset(config.dataset)
    subjects = config.subjects or ds.subject_names
    for s in subjects:
        ds.subject(s)  # fail early on an unknown subject
    if config.engine == "ray":
        from core.pipeline.engine import ray_init

        ray_init(config.address)
    if extract:
        layers_of = run_extraction(config, ds, progress, subjects)
    else:
        layers_of = {m: model_layers(m, config.dataset) for m in config.models}
    t_extract = time.perf_counter() - t0
    specs = fit_specs(config, subjects, layers_of)
    keeps = [
        config.keep_encoders == "all"
        or (config.keep_encoders == "last" and spec.layer == max(layers_of[spec.model]))
        for spec in specs
    ]
    if config.engine == "ray":
        from core.pipeline.engine import ray_fits

        rows, _ = ray_fits(ds, specs, keeps, config.settings, gpus_per_fit=config.gpus_per_fit,
                           progress=progress)  # fmt: skip
    else:
        rows = run_fits(ds, specs, keeps, config.settings, config.jobs, progress)
    table = pd.DataFrame(rows)
    table["role"] = [model_role(m) for m in table["model"]]
    # rows of the same settings (the encoders the dashboard added, other subjects' runs) stay;
    # rows of other settings or of content that is no longer the dataset's go
    written = merge_table(results_dir(config.dataset) / "roi_scores", table, FIT_KEY, current=ds,
                          group="settings_key", settings=config.settings)  # fmt: skip
    t_fit = time.perf_counter() - t0 - t_extract
    from core.pipeline.partitions import partition_specs, run_partitions

    # partitions at the layer the scores are reported at (chosen by the CV training score)
    layer_of = best_layers(written[written["model"].isin(config.models)])
    if config.keep_encoders == "best":  # the app predicts with the layer every page reports
        best_specs = [s for s in specs if s.layer == layer_of.get(s.model)]
        run_fits(ds, best_specs, [True] * len(best_specs), config.settings, config.jobs,
                 progress)  # fmt: skip
    if config.engine == "ray":
        from core.pipeline.engine import ray_partitions

        ray_partitions(ds, partition_specs(config, subjects, layer_of), config.settings)
    run_partitions(ds, config, subjects, layer_of, progress=progress)
    if len(ds.subject_names) >= 2:  # the cross-subject noise ceiling, read by report and app
        from core.results.ceilings import cross_subject_r

        for s in subjects:
            cross_subject_r(ds, s)
    write_json(
        results_dir(config.dataset) / "grid.json",
        {
            "config": config.to_dict(),
            "n_fits": len(specs),
            "seconds_extract": round(t_extract, 1),
            "seconds_fit": round(t_fit, 1),
            "seconds_total": round(time.perf_counter() - t0, 1),
            "finished": time.time(),
        },
    )
    return table


