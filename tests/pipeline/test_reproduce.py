"""`reproduce paper`: the demo analog end to end, the paper's numbers, and the dry run on NSD
fixtures without weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.models.registry import DEMO_FOLDER
from core.pipeline import paper

SCIENCE = Path(__file__).resolve().parents[3] / "shared" / "docs" / "science.md"
needs_demo_model = pytest.mark.skipif(
    not (DEMO_FOLDER / "config.json").exists(), reason="the demo model checkpoint is not installed"
)


@pytest.fixture(scope="module")
def reproduction(demo_small_root, test_home):
    """`reproduce paper --dataset demo` on the session's small demo world, with the recovery
    tests' token budget (32): their embeddings and last-layer fits are reused when they ran."""
    from core.pipeline.reproduce import reproduce_paper

    return test_home, reproduce_paper("demo", progress=False, max_new_tokens=32, n_boot=100)


def _use(monkeypatch, root):
    monkeypatch.setenv("BRAINPROMPT_HOME", str(root))


@needs_demo_model
def test_report_files_are_written(reproduction, monkeypatch):
    root, message = reproduction
    folder = root / "reports" / "demo" / "paper"
    assert str(folder / "report.md") in message
    for name in ("report.md", "report.json", "roi_groups.csv", "best_instructions.csv",
                 "layer_curves.csv", "partition_ic_iu2.csv"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
    for stem in ("fig_roi_groups", "fig_layer_curves", "fig_partition_ic_iu2"):
        assert (folder / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (folder / f"{stem}.svg").read_bytes()[:400]
    text = (folder / "report.md").read_text()
    assert "SIMULATED" in text and "What was run" in text and "subj01, subj02" in text


@needs_demo_model
def test_report_numbers_equal_the_results_table(reproduction, monkeypatch):
    from core.data.registry import open_dataset
    from core.results.selection import best_layers
    from core.results.tables import load_roi_table

    root, _ = reproduction
    _use(monkeypatch, root)
    table = load_roi_table("demo", open_dataset("demo"))
    groups = pd.read_csv(root / "reports" / "demo" / "paper" / "roi_groups.csv")
    assert set(groups["column"]) == set(paper.DEMO_MODELS)
    layers = best_layers(table)
    for row in groups.itertuples():
        rois = paper.ROI_GROUPS[row.roi_group]
        sub = table[(table["model"] == row.model) & (table["layer"] == layers[row.model])
                    & table["roi"].isin(rois)]  # fmt: skip
        per_subject = [
            np.mean([d["nalign_mean"].mean() for _, d in s.groupby("roi")])
            for _, s in sub.groupby("subject")
        ]
        assert row.measured == pytest.approx(np.mean(per_subject), abs=1e-9)
        assert row.difference == pytest.approx(row.measured - row.paper, abs=1e-9)
        assert row.layer == layers[row.model]


@needs_demo_model
def test_report_partition_and_best_instruction_tables(reproduction):
    root, _ = reproduction
    folder = root / "reports" / "demo" / "paper"
    parts = pd.read_csv(folder / "partition_ic_iu2.csv")
    for group, d in parts.groupby("roi_group"):
        assert d["measured_share"].sum() == pytest.approx(1.0)
        assert dict(zip(d["part"], d["paper"], strict=True)) == paper.PARTITION_IC_IU2[group]
    best = pd.read_csv(folder / "best_instructions.csv")
    assert {"V1", "FFA", "PPA"} <= set(best["roi"])
    assert best["best"].isin(paper.PAPER_SUBJECTS).sum() == 0  # instruction ids, not subjects
    assert (best["spread"] >= 0).all()


def _science_table() -> dict[str, dict[str, float]]:
    text = SCIENCE.read_text()
    section = text[text.index("## Headline results"):]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    out = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not re.match(r"^[\d.]+$", cells[1]):
            break
        out[cells[0]] = {h: float(v) for h, v in zip(header, cells[1:], strict=True)}
    return out


@pytest.mark.skipif(not SCIENCE.exists(), reason="../shared/docs/science.md is not beside the repo")
def test_paper_values_equal_science_md():
    assert _science_table() == paper.ROI_GROUP_TABLE
    text = SCIENCE.read_text()
    for group in paper.PARTITION_IC_IU2.values():
        assert " | ".join(f"{v:.3f}" for v in group.values()) in text


def test_dry_run_on_nsd_fixtures_lists_missing_weights(tmp_path, monkeypatch):
    from core.data.nsd_cache import save_dataset_options
    from core.data.registry import register
    from core.pipeline.reproduce import ReproduceError, reproduce_paper
    from tests.data.fixtures_nsd import write_nsd

    _use(monkeypatch, tmp_path / "home")
    nsd = write_nsd(tmp_path / "NSD", subjects=("subj01", "subj05"), sessions=(1, 2),
                    volume_formats=("nifti",), fsaverage_subjects=())  # fmt: skip
    register("nsd-mini", "nsd", nsd.root)
    save_dataset_options("nsd-mini", {"space": "func1pt8mm", "fmt": "nifti"})
    text = reproduce_paper("nsd-mini", dry_run=True)
    assert "subjects subj01, subj05" in text
    assert "missing weights" in text
    for model in ("instructblip-vicuna-7b", "idefics-9b-instruct", "vit-h", "clip-vit-l14"):
        assert re.search(rf"{re.escape(model)}\s+missing", text), model
    assert "mplug-owl" not in text  # only with its opt-in
    assert "hf download" in text and "GPU-hours" in text
    with pytest.raises(ReproduceError, match="missing weights"):
        reproduce_paper("nsd-mini")


def test_dry_run_units_count_models_with_missing_weights(tmp_path, monkeypatch):
    from core.data.nsd_cache import save_dataset_options
    from core.data.registry import register
    from core.pipeline.reproduce import reproduce_paper
    from tests.data.fixtures_nsd import write_nsd

    _use(monkeypatch, tmp_path / "home")
    nsd = write_nsd(tmp_path / "NSD", subjects=("subj01",), sessions=(1,),
                    volume_formats=("nifti",), fsaverage_subjects=())  # fmt: skip
    register("nsd-one", "nsd", nsd.root)
    save_dataset_options("nsd-one", {"space": "func1pt8mm", "fmt": "nifti"})
    line = next(x for x in reproduce_paper("nsd-one", dry_run=True).splitlines()
                if x.startswith("responses to generate"))  # fmt: skip
    n_responses, n_units = (int(v) for v in re.findall(r"\d+", line)[:2])
    assert n_responses > 0 and n_units > 0  # never "58380 in 0 units"


@pytest.mark.slow
def test_dry_run_on_a_fresh_home_builds_the_demo_and_plans(tmp_path, monkeypatch, capsys):
    import functools

    from core.data.demo import build
    from core.pipeline.cli import main

    _use(monkeypatch, tmp_path / "fresh")
    # the small world (the default one's build is what the demo build tests time): what is
    # under test is that the fresh home gets a world and a plan, not the world's size
    monkeypatch.setattr(build, "build_demo", functools.partial(build.build_demo, size="small"))
    assert main(["reproduce", "paper", "--dataset", "demo", "--dry-run", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "responses to generate" in out and "demo-vlm" in out
