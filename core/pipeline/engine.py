"""Two engines, one store: ``local`` (processes on this machine) and ``ray`` (a Ray cluster).

Both engines plan the same units of work, skip what the content-addressed store already holds,
write every unit with the same atomic writers, and hand results tables to one locked merge
(:func:`core.results.tables.merge_table`), so a run can move between engines, be killed at any
point and resume with nothing lost or done twice.

Extraction units
    :class:`ExtractionUnit` = (model, instructions, a block of image ids), sized by
    ``unit_size`` so that a unit takes minutes (256 images x 10 instructions of a 7B model is
    ~2 min on one H200 at the measured 23.7 images/s). :func:`plan_extraction` lists the units
    whose responses are not all stored yet. On Ray, one long-lived actor per GPU (or per CPU
    slot when the cluster has no GPU, leaving one slot free) holds one model at a time; units
    are handed to actors that already hold their model when possible. A unit is committed in
    chunks by :class:`~core.features.store.ShardWriter` (locked, deduplicating appends), so a
    worker that dies mid-unit loses only its unflushed rows; the unit is retried (at most
    :data:`MAX_ATTEMPTS` times) on the next free actor other than the one it failed on, and
    completes every image exactly once; an actor whose restarts are used up is dropped.

Fits and partitions
    Ray tasks (``num_cpus``, or fractional ``num_gpus`` so several fits share a GPU) running the
    same functions as the local worker processes; each writes its own fit files. Finished fits
    are found in the store by the driver and never resubmitted. Tasks whose worker dies are
    retried by Ray (``max_retries``).

Ray moves task arguments between processes with its own serialiser; nothing BrainPrompt stores
is pickled. Chaos testing: a worker that finds the file ``<home>/.faults/<kind>`` (kind
``extract`` or ``fit``) deletes it and exits at once, mid-unit; the actor that finds
``extract-forever`` dies at every call until its restarts are used up (used by the test suite).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.config import REPO_ROOT, home
from core.data.dataset import Dataset
from core.storage import write_json

ENGINES = ("local", "ray")
#: Images per extraction unit (all pending instructions of a model for that block of images).
UNIT_SIZE = 256
#: Attempts per extraction unit before the run fails.
MAX_ATTEMPTS = 3
#: Retries Ray grants a fit or partition task whose worker died.
TASK_RETRIES = 3
#: Restarts Ray grants an extraction actor whose process died.
ACTOR_RESTARTS = 3
#: Seconds the driver waits for a failed actor to answer a ping (a restart included) before
#: treating it as gone.
PING_TIMEOUT = 120.0
#: Pings (PING_PAUSE seconds apart) before a failed actor counts as gone for good.
PING_ATTEMPTS = 4
PING_PAUSE = 2.0


class EngineError(RuntimeError):
    """The engine cannot run (Ray missing, cluster unreachable, a unit failing repeatedly)."""


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtractionUnit:
    """One unit of extraction work.

    Parameters
    ----------
    model : str
        Registry name (``random:`` / ``vision:`` prefixes allowed).
    instructions : tuple of Instruction
        Pending instructions (empty for image-only models).
    image_ids : tuple of int
        The block of stimulus ids.
    """

    model: str
    instructions: tuple
    image_ids: tuple[int, ...]

    @property
    def n_responses(self) -> int:
        return len(self.image_ids) * max(1, len(self.instructions))

    def label(self) -> str:
        ins = ",".join(i.id for i in self.instructions) or "image"
        return f"{self.model} [{ins}] {self.image_ids[0]}..{self.image_ids[-1]}"


def stored_ids(path: Path) -> set[int]:
    """Image ids committed to the shard at ``path`` (empty when it does not exist)."""
    manifest = path / "manifest.json"
    if not manifest.exists():
        return set()
    chunks = json.loads(manifest.read_text()).get("chunks", [])
    return {int(i) for c in chunks for i in c["ids"]}


def plan_extraction(
    ds: Dataset,
    models: Sequence[str],
    instructions: Sequence,
    options,
    image_ids: Sequence[int] | None = None,
    unit_size: int = UNIT_SIZE,
    extraction=None,
) -> list[ExtractionUnit]:
    """The extraction units whose responses are not all stored yet, model by model.

    Parameters
    ----------
    ds : Dataset
    models : sequence of str
    instructions : sequence of Instruction
    options : GenerationOptions
    image_ids : sequence of int, optional
        Default: every stimulus of the dataset.
    unit_size : int
        Images per unit.
    extraction : ExtractionSettings, optional
        How the workers will compute the embeddings (their shards are the ones checked);
        default all ``"auto"`` on this machine.

    Returns
    -------
    units : list of ExtractionUnit
        Only pending (image, instruction) pairs; a block whose pairs are all stored is absent.
    """
    from core.features.identity import ExtractionSettings, planned_extraction
    from core.features.store import shard_dir
    from core.models.registry import resolve
    from core.models.roles import is_generative

    extraction = extraction or ExtractionSettings()

    ids = np.asarray(ds.stimuli.ids if image_ids is None else image_ids, dtype=np.int64)
    units = []
    for model in models:
        spec = resolve(model)
        ins_list = list(instructions) if is_generative(model) else [None]
        planned = planned_extraction(spec, extraction)
        done = {i: stored_ids(shard_dir(ds, spec, i, options, planned)) for i in ins_list}
        for start in range(0, ids.size, unit_size):
            block = [int(x) for x in ids[start : start + unit_size]]
            pending = tuple(i for i in ins_list if not set(block) <= done[i])
            if pending:
                units.append(
                    ExtractionUnit(model, tuple(i for i in pending if i is not None), tuple(block))
                )
    return units


# --------------------------------------------------------------------------------------------
# progress shared by both engines (CLI bar + a JSON file the Pipeline page reads)
# --------------------------------------------------------------------------------------------
def progress_path(dataset: str) -> Path:
    from core.results.tables import results_dir

    return results_dir(dataset) / "engine_progress.json"


class Progress:
    """One progress display for a whole (cluster) job: a tqdm bar with units done / total,
    throughput and ETA, mirrored to ``<results>/engine_progress.json`` for the app."""

    def __init__(self, dataset: str, phase: str, total: int, unit: str, engine: str,
                 show: bool = True) -> None:  # fmt: skip
        self.dataset, self.phase, self.total, self.unit, self.engine = (
            dataset, phase, total, unit, engine,
        )  # fmt: skip
        self.done = 0
        self.t0 = time.time()
        self.bar = tqdm(total=total, desc=f"{phase} ({engine})", unit=unit, disable=not show)
        self._write()

    def update(self, n: int = 1, label: str = "") -> None:
        self.done += n
        if label:
            self.bar.set_postfix_str(label, refresh=False)
        self.bar.update(n)
        self._write()

    def _write(self, state: str = "running") -> None:
        elapsed = time.time() - self.t0
        rate = self.done / elapsed if elapsed > 0 and self.done else None
        eta = (self.total - self.done) / rate if rate else None
        write_json(progress_path(self.dataset), {
            "phase": self.phase, "engine": self.engine, "unit": self.unit, "done": self.done,
            "total": self.total, "rate_per_s": rate, "eta_s": eta, "state": state,
            "pid": os.getpid(), "updated": time.time(), "started": self.t0,
        })  # fmt: skip

    def close(self, state: str = "done") -> None:
        self.bar.close()
        self._write(state)


def read_progress(dataset: str, max_age_s: float = 120.0) -> dict | None:
    """The latest engine progress of ``dataset`` when it was updated within ``max_age_s``
    (a running job), else None."""
    path = progress_path(dataset)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if info.get("state") == "running" and time.time() - info.get("updated", 0) > max_age_s:
        return None
    return info


# --------------------------------------------------------------------------------------------
# worker-side helpers (run in Ray workers and in local worker processes)
# --------------------------------------------------------------------------------------------
def _enter_home(home_path: str) -> None:
    os.environ["BRAINPROMPT_HOME"] = home_path
    from core.config import setup_environment

    setup_environment()


def maybe_doomed() -> None:
    """Chaos hook for Ray actors: the actor that claims ``<home>/.faults/extract-forever``
    dies at every call, in every restarted incarnation, until its restarts are used up (an
    actor that "died for good"); ``<home>/.faults/doomed-<actor id>`` marks it."""
    import ray

    faults = home() / ".faults"
    actor = ray.get_runtime_context().get_actor_id()
    try:
        (faults / "extract-forever").rename(faults / f"doomed-{actor}")
    except FileNotFoundError:
        pass
    if (faults / f"doomed-{actor}").exists():
        os._exit(18)


def maybe_fault(kind: str) -> None:
    """Chaos hook: exit this worker at once if ``<home>/.faults/<kind>`` exists (claimed by
    deleting it, so exactly one worker dies per file)."""
    marker = home() / ".faults" / kind
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    os._exit(17)


_DATASETS: dict[tuple[str, str], Dataset] = {}


def worker_dataset(name: str, subject: str | None = None, subject_key: str | None = None):
    """The dataset ``name`` of the current home, cached per worker process and reopened when
    the driver's ``subject_key`` says its content changed (a rebuilt dataset)."""
    from core.data.registry import open_dataset

    key = (str(home()), name)
    ds = _DATASETS.get(key)
    if ds is None or (subject_key is not None and ds.subject_key(subject) != subject_key):
        ds = _DATASETS[key] = open_dataset(name)
    return ds


def extract_unit(
    ds: Dataset,
    adapter,
    unit: ExtractionUnit,
    options,
    batch_size: int,
    chunk_size: int = 16,
    extraction=None,
) -> int:
    """Run one unit with a loaded adapter (rows already stored are skipped); returns the
    number of responses the unit covers. Commits in chunks of ``chunk_size`` rows.
    ``extraction`` (an ExtractionSettings) gives the method and prefix reuse."""
    from core.features.extract import extract_model
    from core.features.identity import ExtractionSettings

    extraction = extraction or ExtractionSettings()
    half = max(1, len(unit.image_ids) // 2)
    for part in (unit.image_ids[:half], unit.image_ids[half:]):
        if part:
            extract_model(ds, adapter, list(unit.instructions), options, batch_size=batch_size,
                          chunk_size=chunk_size, image_ids=part, progress=False,
                          prefix_reuse=extraction.prefix_reuse,
                          method=extraction.method)  # fmt: skip
            maybe_fault("extract")  # chaos hook: dies mid-unit, after half was committed
    return unit.n_responses


# --------------------------------------------------------------------------------------------
# Ray
# --------------------------------------------------------------------------------------------
def ray_init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to a Ray cluster (``address`` ``"auto"`` or ``HOST:PORT``) or start a local one.

    Workers import BrainPrompt from this checkout (``PYTHONPATH``); on a cluster the checkout
    and ``BRAINPROMPT_HOME`` must sit at the same path on every node (a shared filesystem).
    """
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in requirements.txt
        raise EngineError("--engine ray needs Ray: pip install 'ray==2.60.0'") from exc
    if ray.is_initialized():
        return
    env = {"PYTHONPATH": str(REPO_ROOT), "BRAINPROMPT_HOME": str(home())}
    kwargs: dict = {"runtime_env": {"env_vars": env}, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
    except ConnectionError as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address!r}: {exc}") from exc


def _ray_worker_class():
    import ray

    class ExtractionWorker:
        """Holds one model at a time; runs extraction units."""

        def __init__(self, home_path: str, extraction) -> None:
            _enter_home(home_path)
            self.extraction = extraction
            self.model_name: str | None = None
            self.adapter = None

        def ping(self) -> bool:
            """Liveness probe (the driver's check after a failed unit)."""
            return True

        def run(self, dataset: str, unit: ExtractionUnit, options, batch_size: int) -> int:
            from core.models.adapters import load_adapter

            maybe_doomed()
            if self.model_name != unit.model:
                self.adapter = None  # free the previous model first
                self.adapter = load_adapter(unit.model, device=self.extraction.device,
                                            dtype=self.extraction.dtype)  # fmt: skip
                self.model_name = unit.model
            return extract_unit(worker_dataset(dataset), self.adapter, unit, options, batch_size,
                                extraction=self.extraction)  # fmt: skip

    return ray.remote(ExtractionWorker)


def ray_extraction(extraction=None):
    """``extraction`` (ExtractionSettings) with an ``"auto"`` device resolved to the cluster's
    workers' (``cuda`` when it has GPUs, else ``cpu``), so the driver plans and keys the shards
    the workers will write."""
    from dataclasses import replace

    from core.features.identity import ExtractionSettings

    extraction = extraction or ExtractionSettings()
    if extraction.device != "auto":
        return extraction
    return replace(extraction, device="cuda" if _cluster_slots()[1] else "cpu")


def _cluster_slots() -> tuple[int, bool]:
    import ray

    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    if gpus:
        return gpus, True
    return max(1, int(res.get("CPU", 1)) - 1), False


def ray_extract(
    ds: Dataset,
    units: list[ExtractionUnit],
    options,
    *,
    batch_size: int = 8,
    extraction=None,
    workers: int | None = None,
    progress: bool = True,
    on_unit_done: Callable[[ExtractionUnit], None] | None = None,
    actor_restarts: int = ACTOR_RESTARTS,
) -> dict:
    """Run extraction units on long-lived Ray actors (see the module docstring).

    ``actor_restarts``: how often Ray restarts a dead actor before it is gone for good.
    ``extraction`` (ExtractionSettings; default all ``"auto"``) says how the workers compute
    (an ``"auto"`` device becomes the workers' GPU or CPU, :func:`ray_extraction`). A unit that
    fails is queued again and goes to the next actor that is free, whichever it is; an actor
    that died for good (restarts used up) is dropped from the pool, and the run fails only when
    a unit failed :data:`MAX_ATTEMPTS` times or no actor is left.

    Returns
    -------
    stats : dict
        ``units`` (run), ``attempts`` (including retries), ``failures`` (worker deaths or
        errors that were retried), ``seconds``.

    Raises
    ------
    EngineError
        When a unit failed :data:`MAX_ATTEMPTS` times (the message names it and the error).
    """
    import ray

    t0 = time.time()
    stats = {"units": 0, "attempts": 0, "failures": 0, "dead_actors": 0}
    if not units:
        return {**stats, "seconds": 0.0}
    slots, gpu = _cluster_slots()
    n = max(1, min(len(units), workers or slots))
    Worker = _ray_worker_class().options(
        num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1, max_restarts=actor_restarts
    )
    extraction = ray_extraction(extraction)
    actors = [Worker.remote(str(home()), extraction) for _ in range(n)]
    holds: list[str | None] = [None] * n
    queue = list(units)
    attempts: dict[ExtractionUnit, int] = {}
    running: dict = {}
    bar = Progress(ds.name, "extraction", sum(u.n_responses for u in units), "resp", "ray",
                   progress)  # fmt: skip

    avoid: dict[ExtractionUnit, set[int]] = {}  # actors a unit failed on
    dead: set[int] = set()

    def busy() -> set[int]:
        return {k for k, _ in running.values()}

    def eligible(k: int) -> list[int]:
        """Queue positions actor ``k`` may take: not a unit that failed on it, unless every
        live actor has failed it (then any may retry it)."""
        live = set(range(n)) - dead
        return [j for j, u in enumerate(queue)
                if k not in avoid.get(u, ()) or live <= avoid.get(u, set())]  # fmt: skip

    def submit(k: int) -> bool:
        options_k = eligible(k)
        if not options_k:
            return False
        pick = next((j for j in options_k if queue[j].model == holds[k]), options_k[0])
        unit = queue.pop(pick)
        attempts[unit] = attempts.get(unit, 0) + 1
        stats["attempts"] += 1
        holds[k] = unit.model
        running[actors[k].run.remote(ds.name, unit, options, batch_size)] = (k, unit)
        return True

    def dispatch() -> None:
        for k in range(n):
            if queue and k not in dead and k not in busy():
                submit(k)

    def alive(k: int) -> bool:
        """Whether actor ``k`` answers a ping, allowing for a restart in progress (a call right
        after a crash can fail before Ray has begun the restart)."""
        for attempt in range(PING_ATTEMPTS):
            try:
                ray.get(actors[k].ping.remote(), timeout=PING_TIMEOUT)
                return True
            except ray.exceptions.GetTimeoutError:
                return False
            except ray.exceptions.RayActorError:
                if attempt + 1 < PING_ATTEMPTS:
                    time.sleep(PING_PAUSE)
        return False

    try:
        dispatch()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            k, unit = running.pop(ready[0])
            try:
                ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                stats["failures"] += 1
                if attempts[unit] >= MAX_ATTEMPTS:
                    raise EngineError(
                        f"extraction unit {unit.label()} failed {attempts[unit]} times: {exc}"
                    ) from exc
                holds[k] = None
                avoid.setdefault(unit, set()).add(k)
                queue.insert(0, unit)  # retried first, on the next free live actor
                if not alive(k):  # its restarts are used up: never hand it work again
                    dead.add(k)
                    stats["dead_actors"] = len(dead)
            else:
                stats["units"] += 1
                bar.update(unit.n_responses, unit.label())
                if on_unit_done is not None:
                    on_unit_done(unit)
            dispatch()
            if queue and not running:
                raise EngineError(
                    f"no extraction actor is left to run {len(queue)} units "
                    f"({len(dead)} of {n} died for good)"
                )
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        bar.close("interrupted")
        raise
    finally:
        for actor in actors:
            ray.kill(actor)
    bar.close()
    return {**stats, "seconds": round(time.time() - t0, 2)}


def _ray_task(fn: Callable, resources: dict):
    import ray

    return ray.remote(max_retries=TASK_RETRIES, **resources)(fn)


def _fit_task(home_path: str, spec, keep: bool, settings, subject_key: str) -> list[dict]:
    from threadpoolctl import threadpool_limits

    from core.results.fit import run_fit

    _enter_home(home_path)
    ds = worker_dataset(spec.dataset, spec.subject, subject_key)
    with threadpool_limits(1):
        maybe_fault("fit")
        return run_fit(ds, spec, settings, keep_encoder=keep)


def _partition_task(home_path: str, spec, settings, subject_key: str) -> None:
    from threadpoolctl import threadpool_limits

    from core.results.partition import run_partition

    _enter_home(home_path)
    ds = worker_dataset(spec.dataset, spec.subject, subject_key)
    with threadpool_limits(1):
        run_partition(ds, spec, settings)


def fit_resources(gpus_per_fit: float = 0.0) -> dict:
    """Ray resources of one fit: a fraction of a GPU (several fits share one) or one CPU."""
    return {"num_gpus": gpus_per_fit, "num_cpus": 0} if gpus_per_fit > 0 else {"num_cpus": 1}


def ray_fits(
    ds: Dataset,
    specs: list,
    keeps: list[bool],
    settings,
    *,
    gpus_per_fit: float = 0.0,
    progress: bool = True,
) -> tuple[list[dict], dict]:
    """Run the fits that are not stored yet as Ray tasks; stored ones are read on the driver.

    Returns
    -------
    rows : list of dict
        ROI rows of every spec, in the order of ``specs``.
    stats : dict
        ``submitted`` (fits run on the cluster), ``stored`` (read back), ``seconds``.
    """
    import ray

    from core.results.fit import is_stored, run_fit

    t0 = time.time()
    todo = [i for i, (s, k) in enumerate(zip(specs, keeps, strict=True))
            if not is_stored(ds, s, settings, k)]  # fmt: skip
    task = _ray_task(_fit_task, fit_resources(gpus_per_fit))
    bar = Progress(ds.name, "fitting encoders", len(specs), "fit", "ray", progress)
    refs = {
        task.remote(str(home()), specs[i], keeps[i], settings, ds.subject_key(specs[i].subject)): i
        for i in todo
    }
    results: list[list[dict] | None] = [None] * len(specs)
    try:
        for i, (spec, keep) in enumerate(zip(specs, keeps, strict=True)):
            if i not in set(todo):
                results[i] = run_fit(ds, spec, settings, keep_encoder=keep)
                bar.update(1, spec.label())
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = refs[ready[0]]
            results[i] = ray.get(ready[0])
            bar.update(1, specs[i].label())
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        bar.close("interrupted")
        raise
    bar.close()
    rows = [row for r in results for row in (r or [])]
    stats = {"submitted": len(todo), "stored": len(specs) - len(todo),
             "seconds": round(time.time() - t0, 2)}  # fmt: skip
    return rows, stats


def ray_partitions(ds: Dataset, specs: list, settings) -> int:
    """Compute the partitions that are not stored yet as Ray tasks; returns how many ran."""
    import ray

    from core.results.partition import partition_stored

    todo = [s for s in specs if not partition_stored(ds, s, settings)]
    task = _ray_task(_partition_task, {"num_cpus": 1})
    ray.get([task.remote(str(home()), s, settings, ds.subject_key(s.subject)) for s in todo])
    return len(todo)


def progress_line(info: dict) -> str:
    """A one-line summary of :func:`read_progress` (what the Pipeline page shows)."""
    rate = info.get("rate_per_s")
    eta = info.get("eta_s")
    parts = [f"{info['phase']} on {info['engine']}: {info['done']}/{info['total']} {info['unit']}"]
    if rate:
        parts.append(f"{rate:.1f} {info['unit']}/s")
    if eta is not None and info.get("state") == "running":
        parts.append(f"ETA {eta / 60:.1f} min")
    if info.get("state") != "running":
        parts.append(info.get("state", ""))
    return " · ".join(p for p in parts if p)

