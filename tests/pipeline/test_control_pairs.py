"""The grid partitions each instruction against its own text-only control when it fits that
control (what the image adds): B from ``text:<model>`` at the control's CV-chosen layer; chosen
with ``--control-pairs``."""

from __future__ import annotations

from core.pipeline.commands.grid import _control_pairs
from core.pipeline.grid import GridConfig
from core.pipeline.partitions import partition_specs

LAYERS = {"demo-vlm": 3, "text:demo-vlm": 1, "length:demo-vlm": 0}


def _config(**kw) -> GridConfig:
    return GridConfig(models=["demo-vlm", "text:demo-vlm", "length:demo-vlm"],
                      instructions=["IU1", "IC"], pairs=[("IC", "IU1")], **kw)  # fmt: skip


def test_every_instruction_is_partitioned_against_its_text_control_by_default():
    specs = partition_specs(_config(), ["subj01", "subj02"], LAYERS)
    control = [s for s in specs if s.model_b is not None]
    assert {(s.a, s.b, s.subject) for s in control} == {
        (i, i, s) for i in ("IU1", "IC") for s in ("subj01", "subj02")
    }
    assert {(s.model, s.model_b, s.layer, s.layer_b) for s in control} == {
        ("demo-vlm", "text:demo-vlm", 3, 1)
    }
    pairs = [s for s in specs if s.model_b is None]
    assert {(s.a, s.b) for s in pairs} == {("IC", "IU1")}  # the configured pairs stay


def test_no_control_pairs_without_the_text_control_or_when_switched_off():
    config = _config()
    config.models = ["demo-vlm", "length:demo-vlm"]
    assert all(s.model_b is None for s in partition_specs(config, ["subj01"], LAYERS))
    off = partition_specs(_config(control_pairs=[]), ["subj01"], LAYERS)
    assert all(s.model_b is None for s in off)


def test_control_pairs_can_be_chosen_per_instruction():
    specs = partition_specs(_config(control_pairs=["IC"]), ["subj01"], LAYERS)
    assert [s.a for s in specs if s.model_b is not None] == ["IC"]


def test_the_command_line_spells_all_none_or_ids():
    assert _control_pairs(["all"]) is None
    assert _control_pairs(["none"]) == []
    assert _control_pairs(["IU1", "IC"]) == ["IU1", "IC"]
