"""A model's role in the comparison, from its name: one rule for the grid, the fits, the
results tables and the app."""

from __future__ import annotations

#: Roles of the controls computed from an MLLM's answers (``text:<m>``, ``length:<m>``).
CONTROL_ROLES = {"text:": "text-only control", "length:": "length control"}


def control_of(model: str, prefix: str = "text:") -> str:
    """The control feature space made from ``model``'s answers: ``text:<model>`` (the default)
    or ``length:<model>`` (``prefix`` is a key of :data:`CONTROL_ROLES`)."""
    if prefix not in CONTROL_ROLES:
        raise ValueError(f"unknown control prefix {prefix!r}; expected one of {list(CONTROL_ROLES)}")
    return f"{prefix}{model}"


def model_role(model: str) -> str:
    """``"mllm"``, ``"random init"``, ``"vision"``, ``"clip"``, ``"text-only control"`` or
    ``"length control"`` for the results table."""
    for prefix, role in CONTROL_ROLES.items():
        if model.startswith(prefix):
            return role
    if model.startswith("random:"):
        return "random init"
    if model.startswith("vision:"):
        return "vision"
    from core.models.registry import resolve

    role = resolve(model).role
    return {"vlm": "mllm"}.get(role, role)


def is_generative(model: str) -> bool:
    """True for models with one feature space per instruction: MLLMs, their random twins and
    the controls made from their answers (not ``vision:`` towers, ViT or CLIP)."""
    try:
        roles = ("mllm", "random init", *CONTROL_ROLES.values())
        return model_role(model) in roles and ":vision:" not in model
    except Exception:  # unknown or missing model: treat by its name
        return not model.startswith("vision:")


def model_label(model: str) -> str:
    """``"<model>  ·  <role>"`` for menus (``not installed`` when the model cannot be
    resolved)."""
    from core.models.registry import ModelError

    try:
        role = model_role(model)
    except ModelError:
        return f"{model}  ·  not installed"
    except Exception:
        return model
    return f"{model}  ·  {role}"
