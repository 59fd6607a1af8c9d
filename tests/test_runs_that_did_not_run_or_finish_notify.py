"""Failures that made no sound (issue 15.3): a run that was missed, skipped or interrupted,
or lost with a daemon killed by `kill -9`, now tells the job's `on_failure` and
`on_permanent_failure` notifiers (no retry follows any of them); a lost run is told exactly
once, by the next start, never again by a later one.

Regression: before, only finished tries notified; these outcomes were recorded in the
history and nobody heard of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import command_job, harness, now, read_pid_async, wait_for_async

LINE = 'echo "$SCHEDULER_EVENT $SCHEDULER_JOB_ID $SCHEDULER_OUTCOME $SCHEDULER_RUN_ID"'


def writes_to(path: Path) -> dict[str, Any]:
    """A command notifier appending one line about the run it is told of to ``path``."""
    return {"type": "command", "command": f"{LINE} >> {path}"}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def notified(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    return {
        "on_failure": [writes_to(tmp_path / "failure.txt")],
        "on_permanent_failure": [writes_to(tmp_path / "permanent.txt")],
        "on_success": [writes_to(tmp_path / "success.txt")],
        **fields,
    }


def test_a_missed_run_notifies_both_failure_lists(tmp_path: Path) -> None:
    spec = command_job(["true"], **notified(tmp_path, misfire_grace="30s"))

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"report": spec}) as h:
            h.runner.submit("report", [now() - timedelta(minutes=5)], grace=30)
            await h.idle()
            return h.runs("report")

    (row,) = asyncio.run(go())
    assert row["outcome"] == "missed"
    assert lines(tmp_path / "failure.txt") == [f"on_failure report missed {row['run_id']}"]
    assert lines(tmp_path / "permanent.txt") == [
        f"on_permanent_failure report missed {row['run_id']}"
    ]
    assert lines(tmp_path / "success.txt") == []


def test_a_skipped_run_notifies(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    spec = command_job(
        f"echo $$ > {pidfile}; exec sleep 30", concurrency="forbid", **notified(tmp_path)
    )

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"sync": spec}, shutdown_grace=0) as h:
            assert h.runner.dispatch("sync", now()) is None
            await read_pid_async(pidfile)  # the first run is running
            assert h.runner.dispatch("sync", now()) is not None
            await wait_for_async(
                _async(lambda: lines(tmp_path / "failure.txt") or None), "a notification"
            )
            return await h.finished("sync")

    rows = asyncio.run(go())
    skipped = next(r for r in rows if r["outcome"] == "skipped")
    assert f"on_failure sync skipped {skipped['run_id']}" in lines(tmp_path / "failure.txt")
    assert f"on_permanent_failure sync skipped {skipped['run_id']}" in lines(
        tmp_path / "permanent.txt"
    )


def test_a_run_replaced_by_a_newer_one_notifies_interrupted(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    spec = command_job(
        f"echo $$ > {pidfile}; exec sleep 30", concurrency="replace", **notified(tmp_path)
    )

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"sync": spec}, shutdown_grace=0) as h:
            assert h.runner.dispatch("sync", now()) is None
            await read_pid_async(pidfile)
            assert h.runner.dispatch("sync", now()) is None  # replaces the first
            await wait_for_async(
                _async(lambda: lines(tmp_path / "failure.txt") or None), "a notification"
            )
            return await h.finished("sync")

    interrupted = next(r for r in asyncio.run(go()) if r["outcome"] == "interrupted")
    assert lines(tmp_path / "failure.txt")[0] == (
        f"on_failure sync interrupted {interrupted['run_id']}"
    )


def test_a_run_stopped_by_shutdown_is_notified_before_shutdown_returns(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    spec = command_job(f"echo $$ > {pidfile}; exec sleep 30", **notified(tmp_path))

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"sync": spec}, shutdown_grace=0) as h:
            assert h.runner.dispatch("sync", now()) is None
            await read_pid_async(pidfile)
        return []

    asyncio.run(go())  # the harness shut the runner down, with the run still going
    (line,) = lines(tmp_path / "failure.txt")
    assert line.startswith("on_failure sync interrupted ")


def _async(probe: Any) -> Any:
    async def wrapped() -> Any:
        return probe()

    return wrapped


def test_a_run_lost_with_a_killed_daemon_notifies_once_on_restart(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    pidfile, failure = tmp_path / "child.pid", tmp_path / "failure.txt"
    write_jobs(
        "a.yaml",
        f"""\
jobs:
  long:
    schedule: {{cron: "0 9 * * *"}}
    run: {{type: command, command: "echo $$ > {pidfile}; exec sleep 60"}}
    on_failure:
      - {{type: command, command: '{LINE} >> {failure}'}}
""",
    )
    daemon = start_daemon()
    assert daemon.cli("trigger", "long").returncode == 0
    wait_for(lambda: any(r["outcome"] == "running" for r in daemon.history("long")), "running")
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait()
    child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "pid"))
    os.killpg(child, signal.SIGKILL)  # kill -9 leaves the child: the test cleans up

    restarted = start_daemon()
    (run,) = restarted.history("long")
    assert run["outcome"] == "interrupted"
    wait_for(lambda: lines(failure) or None, "the notification of the lost run")
    assert restarted.stop() == 0
    # A second restart finds the run finished: it must not notify again. Stopping waits
    # for every notifier the daemon started, so the file is complete once it has stopped.
    again = start_daemon()
    assert again.stop() == 0
    assert lines(failure) == [f"on_failure long interrupted {run['run_id']}"]
