"""Regression test for issue 16 items 1 and 2 against a real daemon, on SQLite and on the
real PostgreSQL: after a job printed a NUL byte, no run of any job was recorded again on
PostgreSQL and SIGTERM never completed; after a python job's error held a lone surrogate,
the history writer died silently. Now both runs are recorded (U+FFFD in place of what no
column can hold), so are the runs after them, and the daemon stops on SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import DaemonProcess, wait_for

JOBS = """\
jobs:
  nul:
    schedule: {cron: "0 0 1 1 *"}
    run: {type: command, command: "printf 'a\\\\0b'"}
  surrogate:
    schedule: {cron: "0 0 1 1 *"}
    run: {type: python, function: "latin1:listdir"}
  after:
    schedule: {cron: "0 0 1 1 *"}
    run: {type: command, command: ["echo", "still recorded"]}
"""

LATIN1 = """\
import os


def listdir() -> None:
    raise FileNotFoundError("no such file: " + os.fsdecode(b"caf\\xe9.txt"))
"""


@pytest.fixture
def db_url(store_url: str) -> str:
    """The daemon's store: a SQLite file, then the PostgreSQL database."""
    return store_url


def finished(daemon: DaemonProcess, job_id: str) -> dict[str, Any] | None:
    result = daemon.cli("history", job_id, "-o", "json")
    assert result.returncode == 0, result.stderr
    runs = [r for r in json.loads(result.stdout) if r["outcome"] != "running"]
    return runs[0] if runs else None


def test_runs_after_a_nul_byte_and_a_surrogate_are_recorded(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    (tmp_path / "latin1.py").write_text(LATIN1)  # the daemon's cwd: importable
    write_jobs("a.yaml", JOBS)
    daemon = start_daemon()
    for job_id in ("nul", "surrogate"):
        assert daemon.cli("trigger", job_id).returncode == 0
    nul = wait_for(lambda: finished(daemon, "nul"), "the nul run")
    surrogate = wait_for(lambda: finished(daemon, "surrogate"), "the surrogate run")
    assert daemon.cli("trigger", "after").returncode == 0
    after = wait_for(lambda: finished(daemon, "after"), "the run after them")

    assert (nul["outcome"], nul["output_tail"]) == ("success", "a\ufffdb")
    assert surrogate["outcome"] == "failure"
    assert "no such file: caf\ufffd.txt" in surrogate["error"]
    assert (after["outcome"], after["output_tail"]) == ("success", "still recorded\n")
    assert daemon.stop(signal.SIGTERM) == 0
