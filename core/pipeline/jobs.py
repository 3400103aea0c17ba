"""Background jobs: long work runs in its own process and writes status files that pages poll.

A job is ``python -m core <args>`` started detached from the caller (a Streamlit rerun can be killed
at any widget interaction; the job survives page switches and browser reloads). Each job has a
folder ``<home>/jobs/<name>/`` with

- ``status.json``: ``{"name", "argv", "pid", "state": "running"|"done"|"failed", "started",
  "finished", "returncode"}``;
- ``log.txt``: the job's combined stdout and stderr (progress bars included).

At most one job of a given name runs at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT, subdir
from core.storage import ArtifactError, file_lock, read_json, write_json


@dataclass
class JobStatus:
    """What a job is doing."""

    name: str
    state: str  # "absent", "running", "done", "failed"
    argv: list[str]
    started: float | None = None
    finished: float | None = None
    returncode: int | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def log_tail(self, n_chars: int = 4000) -> str:
        """The last ``n_chars`` of the job's log (progress-bar carriage returns resolved)."""
        path = job_dir(self.name) / "log.txt"
        if not path.exists():
            return ""
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - n_chars * 4))
            text = fh.read().decode("utf-8", errors="replace")
        lines = [line.split("\r")[-1] for line in text.split("\n")]
        return "\n".join(lines)[-n_chars:]


def job_dir(name: str) -> Path:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid job name {name!r}")
    return subdir("jobs", name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process counts as finished
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def job_status(name: str) -> JobStatus:
    """Read a job's status; a job whose process died without writing its end is ``failed``."""
    path = job_dir(name) / "status.json"
    if not path.exists():
        return JobStatus(name=name, state="absent", argv=[])
    try:
        info = read_json(path)
    except ArtifactError:
        return JobStatus(name=name, state="failed", argv=[])
    state = info.get("state", "failed")
    pid = info.get("pid")
    if state == "running" and pid is not None and not _pid_alive(int(pid)):
        state = "failed"
    return JobStatus(
        name=name,
        state=state,
        argv=info.get("argv", []),
        started=info.get("started"),
        finished=info.get("finished"),
        returncode=info.get("returncode"),
    )


def start_job(name: str, args: list[str]) -> JobStatus:
    """Start ``python -m core <args>`` in the background unless a job ``name`` is running.

    Returns
    -------
    status : JobStatus
        The (new or already running) job's status.
    """
    folder = job_dir(name)
    # check-and-start is atomic: two sessions pressing the same button at once start one job,
    # and the second gets the running job's status
    with file_lock(folder / "start.lock", timeout=60, what=f"job {name}"):
        current = job_status(name)
        if current.running:
            return current
        started = time.time()
        write_json(
            folder / "status.json",
            {"name": name, "argv": args, "pid": None, "state": "running", "started": started},
        )
        argv = [sys.executable, "-m", "core.pipeline.jobs", name, *args]
        log = open(folder / "log.txt", "wb")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        with file_lock(folder / "status.lock", timeout=60, what=f"job {name} status"):
            info = read_json(folder / "status.json")
            if info.get("state") == "running" and info.get("pid") is None:  # child may be done
                info["pid"] = proc.pid
                write_json(folder / "status.json", info)
    return job_status(name)


def _run(name: str, args: list[str]) -> int:
    """Entry point inside the job process: run the CLI and record how it ended."""
    from core.pipeline.cli import main

    folder = job_dir(name)
    try:
        rc = main(args)
    except BaseException:  # record any crash, then re-raise for the log
        _finish(folder, 1)
        raise
    _finish(folder, rc)
    return rc


def _finish(folder: Path, rc: int) -> None:
    with file_lock(folder / "status.lock", timeout=60, what="job status"):
        try:
            info = read_json(folder / "status.json")
        except ArtifactError:
            info = {}
        info.update(
            {
                "state": "done" if rc == 0 else "failed",
                "finished": time.time(),
                "returncode": rc,
                "pid": os.getpid(),
            }
        )
        write_json(folder / "status.json", info)


if __name__ == "__main__":
    raise SystemExit(_run(sys.argv[1], sys.argv[2:]))
