"""The instruction search (``python -m core discover``) on the small demo with a tiny budget."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.candidates import (
    candidate_set,
    file_candidates,
    normalized_text,
    template_candidates,
    template_texts,
)
from core.pipeline.discover import (
    DiscoverConfig,
    Objective,
    first_round_for,
    leaderboard_frame,
    schedule,
    search_cost,
    text_map_similarity,
)
from core.results.fit import FitSettings

pytestmark = pytest.mark.slow  # end to end (still run by the README's test command)

#: Cheap full fits: few alphas and resamples, short answers.
SETTINGS = FitSettings(alphas="fast", n_boot=200, max_new_tokens=8, p_values="none")


def _config(**kw) -> DiscoverConfig:
    base = dict(dataset="demo", model="demo-vlm", objective=Objective(roi="FFA"),
                candidates="paper+generated", n_generated=6, eta=2, finalists=2,
                first_round=60, settings=SETTINGS, batch_size=16)  # fmt: skip
    base.update(kw)
    return DiscoverConfig(**base)


@pytest.fixture(scope="module")
def search(demo_small):
    from core.pipeline.discover import run_discover

    return run_discover(_config(), progress=False, log=lambda _: None)


# ------------------------------------------------------------------ candidates (pure)


def test_generator_produces_distinct_texts():
    rows = template_texts()
    texts = [r[0] for r in rows]
    assert len(texts) > 100 and len({normalized_text(t) for t in texts}) == len(texts)
    some = template_candidates(20)
    assert len(some) == 20 and len({c.text for c in some}) == 20
    assert len({c.task for c in some}) >= 6  # round-robin over attributes
    # free text, or the paper instruction of the same text (one shard per text)
    assert all(c.source == "generated" for c in some)
    assert {c.id for c in some if not c.id.startswith("free-")} <= {"IU3"}
    # excluded texts are not generated again
    again = template_candidates(20, exclude=[some[0].text.upper()])
    assert some[0].text not in {c.text for c in again}


def test_pool_candidates_use_paper_ids_for_paper_texts():
    cands = candidate_set("pool")
    assert len(cands) >= 66 and len({c.task for c in cands}) >= 13
    ids = {c.id for c in cands}
    assert {"IU1", "IC", "VQ2"} <= ids  # the paper's texts under their ids (shards shared)


def test_candidate_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("# my prompts\nobject localization\tWhere is the biggest thing?\n\nVQ2\n"
                    "What colour is the sky?\nwhat colour is the sky\n")  # fmt: skip
    cands = file_candidates(path)
    assert [c.text for c in cands] == ["Where is the biggest thing?",
                                       "Are there any people in this image? If yes, describe them.",
                                       "What colour is the sky?"]  # fmt: skip
    assert [c.task for c in cands] == ["object localization", "visual question answering",
                                       "free text"]  # fmt: skip
    assert cands[1].id == "VQ2" and all(c.source == "file" for c in cands)
    with pytest.raises(FileNotFoundError):
        file_candidates(tmp_path / "absent.txt")


def test_schedule_and_budget():
    rounds = schedule(99, 1000, 4, 3, 100)
    assert rounds == [(99, 100), (33, 300), (11, 900)]
    assert search_cost(rounds, 4, 1200, 0) == 9900 + 33 * 200 + 11 * 600 + 4 * 300
    n0 = first_round_for(20000, 99, 1000, 1200, 4, 3, 0)
    cost = search_cost(schedule(99, 1000, 4, 3, n0), 4, 1200, 0)
    assert cost <= 20000 < search_cost(schedule(99, 1000, 4, 3, n0 + 1), 4, 1200, 0)
    with pytest.raises(ValueError, match="too small"):
        first_round_for(1000, 99, 1000, 1200, 4, 3, 0)
    assert schedule(3, 1000, 4, 3, 100) == []  # no more candidates than finalists


def test_text_map_similarity_finds_planted_relation():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 8))
    maps = [emb @ rng.normal(size=(8, 300)) + 0.1 * rng.normal(size=(12, 300)) for _ in range(2)]
    res = text_map_similarity(emb, maps, n_perm=199)
    assert res["n_pairs"] == 66 and res["pearson"] > 0.5 and res["p_mantel"] < 0.05
    null = text_map_similarity(rng.normal(size=(12, 8)), maps, n_perm=199)
    assert abs(null["pearson"]) < res["pearson"]


# ------------------------------------------------------------------ the search


def test_leaderboard_is_in_cv_order_with_test_scores(search):
    board = search["leaderboard"]
    assert search["n_candidates"] == len(board) == 16
    assert "best of 16" in search["selection"]
    fitted = [e for e in board if e["full_fit"]]
    # the finalists and the paper's 10 are fully fitted and compete on their full-fit CV score
    assert sum(e["finalist"] for e in board) == 2 and all(e["full_fit"] for e in board if e["finalist"])
    assert {e["id"] for e in fitted} >= {"IU1", "IC", "VR"} and 10 <= len(fitted) <= 12
    assert board[: len(fitted)] == fitted
    cvs = [e["cv"] for e in fitted]
    assert cvs == sorted(cvs, reverse=True)
    for e in fitted:  # test scores reported, with their bootstrap interval
        assert np.isfinite(e["test"]) and e["test_ci"][0] < e["test_ci"][1]
        assert e["test_ci"][0] - 0.05 <= e["test"] <= e["test_ci"][1] + 0.05
        assert set(e["per_subject"]) == {"subj01", "subj02"}
    rest = board[len(fitted):]
    assert rest and all(e["test"] is None for e in rest)  # never extracted on test images
    for r in {e["round_reached"] for e in rest}:
        same = [e["cv"] for e in rest if e["round_reached"] == r]
        assert same == sorted(same, reverse=True)
    assert [e["round_reached"] for e in rest] == sorted((e["round_reached"] for e in rest),
                                                        reverse=True)  # fmt: skip
    assert search["winner"] == board[0]["id"]
    table = leaderboard_frame(search)
    assert list(table["rank"]) == list(range(1, 17))


def test_paper_best_is_chosen_by_the_same_rule(search):
    pb = search["paper_best"]
    cv_all = pb["cv_all"]
    assert len(cv_all) == 10 and pb["id"] == max(cv_all, key=cv_all.get)
    win = search["leaderboard"][0]
    assert search["gain"]["difference"] == pytest.approx(win["test"] - pb["test"])
    assert search["gain"]["claimed"] == (search["gain"]["ci"][0] > 0)
    new = search["best_new"]  # the best fully fitted candidate that is not a paper instruction
    paper = {"IU1", "IU2", "IU3", "VQ1", "VQ2", "VQ3", "IC", "SR", "CR", "VR"}
    others = [e for e in search["leaderboard"] if e["full_fit"] and e["id"] not in paper]
    if others:
        assert new["id"] == others[0]["id"] and new["diff_ci"][0] is not None
    else:
        assert new is None


def test_cost_is_stated_and_measured(search):
    plan, spent = search["plan"], search["spent"]
    assert plan["rounds"] == [[16, 60], [8, 120], [4, plan["n_train"]]]  # capped at the train set
    assert 0 < spent["responses"] <= plan["responses"] < plan["exhaustive_responses"]
    assert set(spent["by_phase"]) == {"round 0", "round 1", "round 2", "finalists", "paper"}


def test_rerun_reads_the_stored_result_and_extracts_nothing(search, monkeypatch):
    import core.features.extract as extract_mod
    from core.pipeline.discover import discover_dir, run_discover

    def refuse(*args, **kwargs):
        raise AssertionError("a rerun must not extract")

    monkeypatch.setattr(extract_mod, "extract_model", refuse)
    again = run_discover(_config(), progress=False, log=lambda _: None)
    assert again["reused"] and again["leaderboard"] == search["leaderboard"]
    # a search killed after its rounds resumes from the stored rounds, with nothing to extract
    (discover_dir("demo") / f"{search['key']}.json").unlink()
    resumed = run_discover(_config(), progress=False, log=lambda _: None)
    assert not resumed["reused"] and resumed["spent"]["responses"] == 0
    assert [e["id"] for e in resumed["leaderboard"]] == [e["id"] for e in search["leaderboard"]]


def test_contrast_objective(search):
    from core.data.registry import open_dataset
    from core.pipeline.discover import run_discover
    from core.results.fit import FitSpec, run_fit

    res = run_discover(_config(objective=Objective(roi="FFA", contrast="PPA"), candidates="paper",
                               text_similarity=False), progress=False, log=lambda _: None)  # fmt: skip
    assert res["objective"]["label"] == "FFA − PPA" and res["key"] != search["key"]
    win = res["leaderboard"][0]
    ds = open_dataset("demo")
    for s, v in win["per_subject"].items():
        rows = {r["roi"]: r for r in run_fit(ds, FitSpec("demo", s, "demo-vlm", win["id"],
                                                         res["layer"]), SETTINGS)}  # fmt: skip
        assert v["test"] == pytest.approx(rows["FFA"]["nalign_mean"] - rows["PPA"]["nalign_mean"],
                                          abs=1e-5)  # fmt: skip


def test_candidate_file_search_and_text_similarity(search, tmp_path):
    from core.pipeline.discover import run_discover

    path = tmp_path / "c.txt"
    path.write_text("IU1\nWhere is the largest object in the image?\n")
    res = run_discover(_config(candidates=str(path), text_similarity=False), progress=False,
                       log=lambda _: None)  # fmt: skip
    assert res["n_screened"] == 2 and res["n_candidates"] == 2 + 9  # + the paper's other 9
    assert res["plan"]["rounds"] == []  # no more candidates than finalists: no screening
    assert all(e["full_fit"] and e["test"] is not None for e in res["leaderboard"])
    free = next(e for e in res["leaderboard"] if e["source"] == "file" and e["id"] != "IU1")
    assert free["id"].startswith("free-") and free["task"] == "free text"
    sim = search["text_similarity"]
    assert sim["n_candidates"] == 16 and sim["n_pairs"] == 16 * 15 // 2
    assert -1 <= sim["pearson"] <= 1 and 0 < sim["p_mantel"] <= 1
