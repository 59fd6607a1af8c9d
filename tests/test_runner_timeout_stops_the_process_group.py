"""A run that outlives its ``timeout`` is recorded ``timeout`` and its whole process group is
stopped: SIGTERM, then SIGKILL after the grace; no grandchild survives, no zombie is left.
A command that exits while a background grandchild runs on is finished too, at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner_helpers import command_job, duration, gone, process_state, read_pid, run_once

REPO = Path(__file__).resolve().parent.parent

# Runs in a child Python that adopts orphans, as a daemon that is PID 1 in a container does.
AS_SUBREAPER = """
import ctypes, json, sys
from pathlib import Path
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    print(json.dumps(None)); sys.exit()
from tests.runner_helpers import command_job, duration, process_state, read_pid, run_once
tmp = Path(sys.argv[1])
spec = command_job("sleep 30 & echo $! > grandchild.pid; echo started it", cwd=str(tmp))
(row,) = run_once(tmp, spec)
pid = read_pid(tmp / "grandchild.pid")
print(json.dumps({"outcome": row["outcome"], "took": duration(row), "state": process_state(pid)}))
"""


def assert_gone(*pids: int) -> None:
    for pid in pids:
        assert gone(pid), f"pid {pid} is still there (state {process_state(pid)})"


def test_a_timed_out_command_and_its_grandchild_are_stopped(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > grandchild.pid; echo $$ > child.pid; echo working; sleep 30"
    spec = command_job(["sh", "-c", script], cwd=str(tmp_path), timeout="1s")

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "timeout"
    assert row["error"] == "timed out after 1s"
    assert row["finished_at"] is not None
    assert 1.0 <= duration(row) < 8.0
    assert_gone(read_pid(tmp_path / "child.pid"), read_pid(tmp_path / "grandchild.pid"))


def test_a_command_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 30 & echo $! > grandchild.pid; echo $$ > child.pid; wait"
    spec = command_job(["sh", "-c", script], cwd=str(tmp_path), timeout="1s")

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "timeout"
    assert 1.5 <= duration(row) < 8.0  # the timeout, then kill_grace=0.5 before SIGKILL
    assert_gone(read_pid(tmp_path / "child.pid"), read_pid(tmp_path / "grandchild.pid"))


def test_a_command_that_exits_leaving_a_grandchild_finishes_and_stops_it(
    tmp_path: Path,
) -> None:
    """Regression: the run waited for the output pipe to close, which the background
    grandchild held open, so it lasted as long as the grandchild (or hit its timeout)."""
    spec = command_job(
        "sleep 30 & echo $! > grandchild.pid; echo started it", cwd=str(tmp_path), timeout="20s"
    )

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "success"
    assert row["exit_code"] == 0
    assert row["output_tail"] == "started it\n"
    assert duration(row) < 5.0
    assert_gone(read_pid(tmp_path / "grandchild.pid"))


def test_a_daemon_that_adopts_orphans_reaps_them(tmp_path: Path) -> None:
    """Regression: as PID 1 (a container without an init) the daemon inherits the killed
    grandchild; nobody reaped it, so it stayed a zombie and the run waited grace + 5 s for
    its group to empty."""
    done = subprocess.run(
        [sys.executable, "-c", AS_SUBREAPER, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    if report is None:
        pytest.skip("PR_SET_CHILD_SUBREAPER is not available here")
    assert report["outcome"] == "success"
    assert report["state"] is None, f"the grandchild is left as {report['state']}"
    assert report["took"] < 1.0
