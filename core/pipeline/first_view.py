"""The first view of a fresh home, computed before the rest of the grid.

On a home with a dataset and no results, the app opens Explore on one choice: the dataset's first
subject, the default model and the first paper instruction (:func:`first_view`). Its encoders are
what the first screen needs, so a first start computes them before the grid
(:func:`run_first_view`): the responses of that model to that instruction, then the encoder at
the model's last layer (the layer a view uses while no cross-validated score exists), then at
every other layer, each kept and merged into the results table as it lands. The cross-validated
best layer among them is then known, and the grid that follows (``python -m core run``) reuses
these fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.models.instructions import PAPER_INSTRUCTIONS
from core.models.registry import DEFAULT_MODEL
from core.results.fit import FitSettings


@dataclass(frozen=True)
class FirstView:
    """The choice Explore opens on: ``dataset``, ``subject``, ``model``, ``instruction`` (id)."""

    dataset: str
    subject: str
    model: str
    instruction: str

    def label(self) -> str:
        return f"{self.subject} · {self.model} · {self.instruction}"


def first_view(ds) -> FirstView:
    """The view Explore opens on for dataset ``ds``: its first subject, the default model and
    the first paper instruction (the first entries of Explore's menus)."""
    return FirstView(ds.name, ds.subject_names[0], DEFAULT_MODEL, PAPER_INSTRUCTIONS[0].id)


def layer_order(n_states: int) -> list[int]:
    """The order a first start fits a model's layers in: the last layer first (the default
    before any cross-validated score exists), then the others from the top down."""
    return list(range(n_states - 1, -1, -1))


def run_first_view(
    view: FirstView,
    settings: FitSettings,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> int:
    """Extract the view's responses and fit its encoder at every layer of the model, the last
    layer first; each encoder is kept and its rows merged into the results table as it lands
    (see :func:`core.pipeline.on_demand.compute_encoder`).

    Returns
    -------
    layer : int
        The cross-validated best layer among the fitted ones (the layer Explore then opens at).
    """
    from core.features.store import model_layers
    from core.pipeline.on_demand import compute_encoder, reported_layer

    say(f"extracting the responses of {view.model} to {view.instruction} and fitting "
        f"{view.label()} at its last layer")  # fmt: skip
    top = _fit_layer(view, None, settings, progress, compute_encoder)
    layers = layer_order(len(model_layers(view.model, view.dataset)))
    for layer in layers:
        if layer == top:
            continue
        say(f"fitting {view.label()} at layer {layer}")
        _fit_layer(view, layer, settings, False, compute_encoder)
    return reported_layer(view.dataset, view.model, None, top)


def _fit_layer(view: FirstView, layer: int | None, settings: FitSettings, progress: bool,
               compute_encoder) -> int:  # fmt: skip
    """Fit one layer (``None``: the last) of the view; returns its index."""
    rows = compute_encoder(view.dataset, view.subject, view.model, view.instruction,
                           -1 if layer is None else layer, settings, progress=progress)  # fmt: skip
    return int(rows[0]["layer"]) if rows else -1
