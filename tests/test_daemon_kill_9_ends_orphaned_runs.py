"""After a ``kill -9`` of the daemon, the next daemon ends the process trees of the runs
the dead one left running before anything fires, and records them ``interrupted`` saying
so: a ``concurrency: forbid`` job never runs twice at once (issues 16.8 and 15.9)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from scheduler.leftovers import end_leftovers
from scheduler.processes import RunFiles, owner, stat
from scheduler.store import Store
from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import gone, process_state

# The job notes its own start, and any instance of itself still running when it starts.
JOB = """\
jobs:
  single:
    schedule: {{cron: "0 9 * * *"}}
    concurrency: forbid
    run:
      type: command
      cwd: {cwd}
      command: >-
        if [ -f pid ] && kill -0 "$(cat pid)" 2>/dev/null;
        then echo "overlap $(cat pid)" >> runs.log; fi;
        echo $$ > pid; echo "start $$" >> runs.log;
        setsid sleep 305 & echo $! > escaped.pid; exec sleep 300
"""


def starts(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_restarted_daemon_ends_the_killed_daemons_run_before_starting_another(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    """Regression: the killed daemon's ``sleep`` ran on, marked ``interrupted``, and the
    restarted daemon started a second instance beside it."""
    work = tmp_path / "work"
    work.mkdir()
    write_jobs("a.yaml", JOB.format(cwd=work))
    log = work / "runs.log"
    first = start_daemon("--shutdown-grace", "1")
    assert first.cli("trigger", "single").returncode == 0
    wait_for(lambda: len(starts(log)) == 1 and (work / "escaped.pid").exists(), "first start")
    old = int((work / "pid").read_text())
    escaped = int(wait_for(lambda: (work / "escaped.pid").read_text().strip(), "escaped pid"))

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    assert process_state(old) not in (None, "Z")  # kill -9 leaves the job running

    second = start_daemon("--shutdown-grace", "1")
    assert gone(old) and gone(escaped), f"left running: {process_state(old)}"
    assert second.cli("trigger", "single").returncode == 0
    wait_for(lambda: len(starts(log)) == 2, "the second start")
    new = int((work / "pid").read_text())
    assert starts(log) == [f"start {old}", f"start {new}"]  # no "overlap" line

    interrupted, running = wait_for(
        lambda: (runs := second.history("single")[::-1]) and len(runs) == 2 and runs, "two runs"
    )
    assert interrupted["outcome"] == "interrupted"
    assert str(old) in interrupted["error"]
    assert "ended when the scheduler restarted" in interrupted["error"]
    assert running["outcome"] == "running"
    second.wait_log(r"1 run\(s\) were left running by a crash")


def test_a_reused_pid_is_not_taken_for_the_runs_process(tmp_path: Path) -> None:
    """The record names the pid and its start time: another process that got the same pid
    after the run's ended is left alone, and the run is still recorded."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        proc = stat(bystander.pid)
        assert proc is not None
        files = RunFiles(tmp_path / "s.db.runs")
        files.add(
            {
                "run_id": "0" * 32,
                "job_id": "gone-job",
                "attempt": 1,
                "scheduled_time": None,
                "started_at": 1.0,
                "pid": bystander.pid,
                "start": proc.start - 1,  # an earlier process with the same pid
            }
        )
        store = Store(f"sqlite:///{tmp_path / 's.db'}")
        try:
            assert len(asyncio.run(end_leftovers(store, files, grace=1.0))) == 1
            rows = store.engine.connect().execute(store.runs.select()).mappings().all()
        finally:
            store.close()
        assert bystander.poll() is None
        assert files.read() == []
        (row,) = rows
        assert (row["job_id"], row["outcome"]) == ("gone-job", "interrupted")
        assert "its process was gone" in row["error"]
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_the_runs_of_a_daemon_still_alive_are_left_alone(tmp_path: Path) -> None:
    """Only a dead daemon's runs are ended: a record naming a live one (another daemon on
    this machine) is not touched."""
    running = subprocess.Popen(["sleep", "60"])
    try:
        proc = stat(running.pid)
        assert proc is not None
        files = RunFiles(tmp_path / "s.db.runs")
        record = {"run_id": "1" * 32, "job_id": "theirs", "pid": running.pid, "start": proc.start}
        files.add({**record, "mark": "m", "daemon": owner()})  # this test's process: alive
        store = Store(f"sqlite:///{tmp_path / 's.db'}")
        try:
            assert asyncio.run(end_leftovers(store, files, grace=1.0)) == []
        finally:
            store.close()
        assert running.poll() is None
        assert [r["run_id"] for r in files.read()] == [record["run_id"]]
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
