"""``run --dry-run``: what a grid would do, without loading a model or fitting anything.

:func:`plan_grid` reports the subjects and images found, the responses still to generate (the
same units the engines would run), the fits still to compute, which models' weights are present
(and where to put the missing ones), and an estimate of the GPU time from measured throughput.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.config import home

#: Measured on one H200 (../shared/docs/platform.md): a LLaVA-1.5-7B-shaped model, 48 new
#: tokens, hidden states on, batch 64. Used when no local benchmark result exists.
REFERENCE_THROUGHPUT = {"responses_per_s": 23.7, "source": "H200, LLaVA-1.5-7B-shaped, batch 64"}


@dataclass
class ModelPlan:
    """One model of the plan."""

    model: str
    weights: str  # "present", "missing", "random init (config present)", ...
    where: str  # where the weights were found or must be put
    n_hidden_states: int | None
    pending_responses: int = 0
    pending_fits: int = 0


@dataclass
class GridPlan:
    """What :func:`plan_grid` found."""

    dataset: str
    subjects: list[str]
    n_images: int
    n_units: int
    pending_responses: int
    total_fits: int
    pending_fits: int
    models: list[ModelPlan] = field(default_factory=list)
    throughput: dict = field(default_factory=dict)

    @property
    def gpu_hours(self) -> float:
        return self.pending_responses / self.throughput["responses_per_s"] / 3600.0

    def format(self) -> str:
        """The plan as text (what ``run --dry-run`` prints)."""
        out = [
            f"dataset {self.dataset}: subjects {', '.join(self.subjects)}; "
            f"{self.n_images} images with responses",
            f"responses to generate: {self.pending_responses} in {self.n_units} units",
            f"encoder fits: {self.pending_fits} to compute of {self.total_fits}",
            "",
            f"{'model':<34} {'weights':<30} {'layers':>6} {'responses':>10} {'fits':>6}",
        ]
        for m in self.models:
            layers = "?" if m.n_hidden_states is None else str(m.n_hidden_states)
            out.append(f"{m.model:<34} {m.weights:<30} {layers:>6} "
                       f"{m.pending_responses:>10} {m.pending_fits:>6}")  # fmt: skip
        missing = [m for m in self.models if m.weights == "missing"]
        if missing:
            out.append("")
            out.append("missing weights (the run would stop at these models):")
            out += [f"  {m.model}: {m.where}" for m in missing]
        out.append("")
        where = self.throughput["source"]
        if not where.startswith("measured"):
            where += "; a reference for 7B models, not measured here: small models such as "
            where += "the demo's run far faster, and `benchmarks/extract.py --save` measures"
        out.append(
            f"estimated generation time: {self.gpu_hours:.2f} GPU-hours at "
            f"{self.throughput['responses_per_s']:.1f} responses/s ({where})"
        )
        return "\n".join(out)


def _throughput() -> dict:
    """The measured throughput of ``benchmarks/extract.py`` when it saved one
    (``<home>/benchmarks/extract.json``), else :data:`REFERENCE_THROUGHPUT`."""
    path = home() / "benchmarks" / "extract.json"
    try:
        info = json.loads(path.read_text())
        rate = float(info["responses_per_s"])
        if rate > 0:
            return {"responses_per_s": rate, "source": f"measured: {info.get('source', path)}"}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return dict(REFERENCE_THROUGHPUT)


def _hidden_states_from_config(cfg: dict, vision: bool) -> int | None:
    if vision:
        sub = cfg.get("vision_config") or {}
        n = sub.get("num_hidden_layers") or sub.get("depth")
    else:
        sub = cfg.get("text_config") or cfg
        n = sub.get("num_hidden_layers")
    return int(n) + 1 if n else None


def model_weights(model: str) -> tuple[str, str, int | None]:
    """Whether a model can run offline: ``(status, where, n_hidden_states)``.

    Never raises for a missing model: the status says ``"missing"`` and ``where`` says exactly
    where to put it.
    """
    from core.models.registry import ModelError, read_config, resolve

    try:
        spec = resolve(model)
    except ModelError as exc:
        return "missing", str(exc), None
    try:
        cfg = read_config(spec)
    except ModelError:
        hub = os.environ.get("HF_HOME", str(home() / "env" / "huggingface"))
        return "missing", (
            f"download {spec.source} where there is network (`hf download {spec.source}`) "
            f"into the Hugging Face cache {hub}/hub, or save it to a folder and "
            f"`register_local`"
        ), None
    n = _hidden_states_from_config(cfg, spec.family == "vision_tower")
    if spec.family == "length_control":
        n = 1  # one feature space: the answer's length and its square
    if spec.random_init:
        return "random init (config present)", spec.source, n
    if spec.is_local:
        has_weights = any(p.suffix in (".safetensors", ".bin") for p in Path(spec.source).iterdir())
        return ("present" if has_weights else "missing"), spec.source, n
    return "present (HF cache)", spec.source, n


def plan_grid(config) -> GridPlan:
    """Plan a grid (see the module docstring); nothing is loaded, generated or fitted.

    Parameters
    ----------
    config : GridConfig
    """
    from core.data.registry import open_dataset
    from core.models.instructions import resolve_instructions
    from core.models.layers import layer_indices
    from core.models.roles import is_generative
    from core.pipeline.engine import plan_extraction
    from core.pipeline.grid import grid_image_ids
    from core.results.fit import IMAGE, FitSpec, is_stored

    ds = open_dataset(config.dataset)
    subjects = config.subjects or ds.subject_names
    image_ids = grid_image_ids(ds, subjects)
    options = config.settings.generation_options()
    instructions = resolve_instructions(config.instructions)
    plans, n_units, pending, total_fits, pending_fits = [], 0, 0, 0, 0
    for model in config.models:
        status, where, n_states = model_weights(model)
        mp = ModelPlan(model, status, where, n_states)
        if status != "missing":
            units = plan_extraction(ds, [model], instructions, options, image_ids,
                                    config.unit_size)  # fmt: skip
            n_units += len(units)
            mp.pending_responses = sum(u.n_responses for u in units)
        else:
            n_ins = len(instructions) if is_generative(model) else 1
            mp.pending_responses = len(image_ids) * n_ins
            n_units += -(-len(image_ids) // max(1, config.unit_size))  # all of its units
        if n_states is not None:
            layers = layer_indices(config.layers, n_states, model)
            ins_list = config.instructions if is_generative(model) else [IMAGE]
            for s in subjects:
                for ins in ins_list:
                    for layer in layers:
                        total_fits += 1
                        spec = FitSpec(config.dataset, s, model, ins, int(layer))
                        done = status != "missing" and _stored_quietly(ds, spec, config, is_stored)
                        if not done:
                            pending_fits += 1
                            mp.pending_fits += 1
        pending += mp.pending_responses
        plans.append(mp)
    return GridPlan(config.dataset, list(subjects), int(len(image_ids)), n_units, pending,
                    total_fits, pending_fits, plans, _throughput())  # fmt: skip


def _stored_quietly(ds, spec, config, is_stored) -> bool:
    try:
        return is_stored(ds, spec, config.settings, False)
    except Exception:  # a model whose identity cannot be computed is simply not stored
        return False
