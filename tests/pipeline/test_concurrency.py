"""Nothing lost under concurrency: locked table merges, waiting shard writers, atomic job start,
and two grid runs on different subjects at once."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from core.config import REPO_ROOT
from core.storage import LockTimeout, file_lock

N_PROCS, N_ROWS = 4, 25


def _merge_rows(stem: str, worker: int, n_rows: int) -> None:
    from core.results.tables import merge_table

    for i in range(n_rows):
        row = pd.DataFrame({"worker": [worker], "i": [i], "v": [float(worker * 1000 + i)]})
        merge_table(Path(stem), row, ["worker", "i"])


def test_concurrent_merges_keep_every_row(tmp_path):
    stem = tmp_path / "table"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_merge_rows, args=(str(stem), w, N_ROWS)) for w in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    table = pd.read_parquet(stem.with_suffix(".parquet"))
    assert len(table) == N_PROCS * N_ROWS
    assert len(table.drop_duplicates(["worker", "i"])) == N_PROCS * N_ROWS


def test_merge_drops_rows_of_other_settings_inside_the_lock(tmp_path):
    from core.results.tables import merge_table

    stem = tmp_path / "t"
    merge_table(stem, pd.DataFrame({"s": ["a"], "settings_key": ["old"]}), ["s"])
    merge_table(stem, pd.DataFrame({"s": ["b"], "settings_key": ["new"]}), ["s"],
                group="settings_key")  # fmt: skip
    out = merge_table(stem, pd.DataFrame({"s": ["c"], "settings_key": ["new"]}), ["s"],
                      group="settings_key")  # fmt: skip
    assert out["s"].tolist() == ["b", "c"]


def test_file_lock_waits_for_the_holder_then_enters(tmp_path):
    lock = tmp_path / "x.lock"
    entered = []

    def hold():
        with file_lock(lock):
            time.sleep(0.4)

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    with file_lock(lock, timeout=10):
        entered.append(time.monotonic() - t0)
    t.join()
    assert entered and entered[0] >= 0.2


def test_file_lock_times_out_with_a_clear_message(tmp_path):
    lock = tmp_path / "x.lock"
    with file_lock(lock):
        with pytest.raises(LockTimeout, match="another process has held the lock"):
            with file_lock(lock, timeout=0.2, what="results table"):
                pass


def test_shard_append_waits_for_the_lock_then_commits(tmp_path):
    import numpy as np

    from core.features.store import ShardWriter

    header = {"fields_key": "k", "layers": [0]}
    with ShardWriter(tmp_path / "shard", header) as writer:
        holder = threading.Thread(target=_hold, args=(tmp_path / "shard" / ".lock", 0.3))
        holder.start()
        time.sleep(0.05)
        assert writer.append([7], np.zeros((1, 1, 2)), [1], ["x"]) == 1
        holder.join()
        holder = threading.Thread(target=_hold, args=(tmp_path / "shard" / ".lock", 0.5))
        holder.start()
        time.sleep(0.05)
        slow = ShardWriter(tmp_path / "shard", header, timeout=0.1)
        with pytest.raises(LockTimeout, match="embedding shard"):
            slow.__enter__()
        holder.join()


def _hold(lock: Path, seconds: float) -> None:
    with file_lock(lock):
        time.sleep(seconds)


def test_two_requests_for_one_job_start_it_once(monkeypatch):
    from core.pipeline import jobs

    started = []

    class FakeProc:
        def __init__(self, argv, **kw):
            time.sleep(0.2)  # a slow start widens the race window
            started.append(argv)
            self.pid = os.getpid()  # alive for as long as the test runs

    monkeypatch.setattr(jobs.subprocess, "Popen", FakeProc)
    name = f"race-{os.getpid()}"
    barrier = threading.Barrier(2)
    results = []

    def press():
        barrier.wait()
        results.append(jobs.start_job(name, ["demo", "ensure"]))

    threads = [threading.Thread(target=press) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started) == 1
    assert all(r.running for r in results)


def test_two_grid_runs_on_different_subjects_keep_both(grid_table, grid_config):
    """Two CLI runs at once (new settings, one subject each) both finish with both rows kept."""
    model = grid_config.models[0]
    base = [sys.executable, "-m", "core", "run", "--dataset", "demo", "--models", model,
            "--instructions", "IC", "--layers", "1", "--no-extract", "--jobs", "1", "--quiet",
            "--max-new-tokens", str(grid_config.settings.max_new_tokens), "--alphas", "fast",
            "--p-values", "analytic"]  # fmt: skip
    from core.results.tables import load_roi_table, results_dir

    saved = {p: p.read_bytes() for p in results_dir("demo").iterdir() if p.is_file()}
    try:
        procs = [
            subprocess.Popen([*base, "--subjects", s], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=os.environ.copy())  # fmt: skip
            for s in ("subj01", "subj02")
        ]
        outs = [p.communicate(timeout=300)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        table = load_roi_table("demo")
        assert set(table["subject"]) == {"subj01", "subj02"}
        assert table["settings_key"].nunique() == 1  # the older settings' rows went
        assert len(table) == table.groupby("subject")["roi"].nunique().sum()
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
