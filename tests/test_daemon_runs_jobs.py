"""The daemon runs jobs and records them: operator verbs against a live daemon, catch-up
after downtime, crashed runs, shutdown, and a store locked by another process. Real
daemon process, real SQLite file, real subprocesses."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.reconciler import reconcile
from scheduler.store import Store
from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for


def test_trigger_pause_resume_and_history_against_a_running_daemon(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  report:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: "echo report for $SCHEDULER_JOB_ID; exit 3"}
""",
    )
    daemon = start_daemon()
    triggered = daemon.cli("trigger", "report")
    assert triggered.returncode == 0, triggered.stderr
    assert "started by the daemon" in triggered.stdout
    runs = wait_for(
        lambda: [r for r in daemon.history("report") if r["finished_at"]] or None, "a run"
    )
    assert len(runs) == 1
    run = runs[0]
    assert (run["outcome"], run["exit_code"], run["attempt"]) == ("failure", 3, 1)
    assert run["output_tail"] == "report for report\n"
    assert set(run) == {
        "run_id",
        "job_id",
        "scheduled_time",
        "started_at",
        "finished_at",
        "outcome",
        "exit_code",
        "attempt",
        "output_tail",
        "error",
        "task_id",
        "worker",
    }
    assert (run["task_id"], run["worker"]) == (None, None)  # only runs handed to Celery

    assert daemon.cli("pause", "report").stdout.strip() == "report paused"
    job = daemon.jobs()["report"]
    assert (job["paused_by"], job["next_run_time"]) == ("operator", None)
    assert (job["last_outcome"], job["last_run_time"] is not None) == ("failure", True)
    assert json.loads(daemon.cli("reconcile", "-o", "json").stdout)["unchanged"] == ["report"]
    assert daemon.jobs()["report"]["paused_by"] == "operator"
    assert daemon.cli("resume", "report").stdout.strip() == "report resumed"
    assert daemon.jobs()["report"]["next_run_time"] is not None

    unknown = daemon.cli("trigger", "nope")
    assert unknown.returncode == 1 and "no job 'nope'" in unknown.stderr
    removal = daemon.cli("remove", "report")
    assert removal.returncode == 1
    assert f"declared in {daemon.jobs_dir / 'a.yaml'}:2: delete it from that file" in removal.stderr


def test_missed_runs_after_downtime_follow_the_misfire_policy(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  coalesced:
    schedule: {cron: "*/10 * * * *"}
    run: {type: command, command: ["true"]}
    misfire_grace: 1d
  every-missed-run:
    schedule: {cron: "*/10 * * * *"}
    run: {type: command, command: ["true"]}
    misfire_grace: 1d
    coalesce: false
  too-late:
    schedule: {cron: "*/10 * * * *"}
    run: {type: command, command: ["true"]}
    misfire_grace: 5s
""",
    )
    # Keep clear of a 10-minute boundary on both sides: no run may fall due while the test
    # watches, and the latest missed time of 'too-late' must be past its 5 s grace.
    since_boundary = time.time() % 600
    if since_boundary < 10 or since_boundary > 580:
        time.sleep((10 - since_boundary) % 600 + 1)
    # The store as a daemon left it an hour ago: every job's next run is long past.
    store = Store(db_url)
    went_down = datetime.now(UTC) - timedelta(hours=1)
    reconcile(store, jobs_dir, now=went_down)
    store.close()
    daemon = start_daemon()
    expected_missed = int(time.time()) // 600 - int(went_down.timestamp()) // 600

    def finished() -> list[dict[str, Any]] | None:
        # Rows are written when a run starts: wait until the sequential catch-up is done.
        rows = daemon.history()
        done = len(rows) >= expected_missed + 2 and all(r["finished_at"] for r in rows)
        return rows if done else None

    runs = wait_for(finished, "catch-up runs")
    by_job: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_job.setdefault(run["job_id"], []).append(run)
    assert len(by_job["coalesced"]) == 1  # six missed runs collapse into one
    assert by_job["coalesced"][0]["outcome"] == "success"
    latest_due = datetime.fromisoformat(by_job["coalesced"][0]["scheduled_time"])
    assert datetime.now(UTC) - latest_due < timedelta(minutes=10)
    every = sorted(by_job["every-missed-run"], key=lambda r: r["scheduled_time"])
    assert len(every) == expected_missed  # each missed run, one after another
    assert {r["outcome"] for r in every} == {"success"}
    due = [datetime.fromisoformat(r["scheduled_time"]) for r in every]
    assert all(b - a == timedelta(minutes=10) for a, b in itertools.pairwise(due))
    assert [r["outcome"] for r in by_job["too-late"]] == ["missed"]
    assert "past its misfire grace of 5s" in by_job["too-late"][0]["error"]


def test_a_run_cut_short_by_a_crash_is_marked_interrupted(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    write_jobs(
        "a.yaml",
        f"""\
jobs:
  long:
    schedule: {{cron: "0 9 * * *"}}
    run: {{type: command, command: "echo $$ > {pidfile}; exec sleep 60"}}
""",
    )
    daemon = start_daemon()
    assert daemon.cli("trigger", "long").returncode == 0
    wait_for(
        lambda: [r for r in daemon.history("long") if r["outcome"] == "running"] or None, "running"
    )
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait()
    child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "pid"))
    os.killpg(child, signal.SIGKILL)  # kill -9 leaves the child: the test cleans up
    restarted = start_daemon()
    restarted.wait_log(r"1 run\(s\) were left running by a crash")
    (run,) = restarted.history("long")
    assert run["outcome"] == "interrupted" and run["finished_at"] is not None


def test_sigterm_stops_running_jobs_after_the_grace_and_records_them(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    write_jobs(
        "a.yaml",
        f"""\
jobs:
  long:
    schedule: {{cron: "0 9 * * *"}}
    run: {{type: command, command: "sleep 60 & echo $! > {pidfile}; wait"}}
""",
    )
    daemon = start_daemon("--shutdown-grace", "1")
    assert daemon.cli("trigger", "long").returncode == 0
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "pid"))
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild, 0)
    (run,) = daemon.history("long")
    assert run["outcome"] == "interrupted"
    assert "shut down" in run["error"]


def test_a_locked_store_delays_due_jobs_but_does_not_stop_the_scheduler(
    start_daemon: StartDaemon, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  tick:
    schedule: {interval: 1s}
    run: {type: command, command: ["true"]}
    misfire_grace: 1m
""",
    )
    daemon = start_daemon()
    wait_for(lambda: len(daemon.history("tick")) >= 2, "first ticks")
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:  # another connection holds the write lock past our busy timeout
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(30)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(10)
    time.sleep(7)  # jobs fall due while the store is locked, longer than the busy timeout
    release.set()
    holder.join()
    released = time.time()
    ran_after = wait_for(
        lambda: (
            [
                r
                for r in daemon.history("tick")
                if datetime.fromisoformat(r["started_at"]).timestamp() > released + 0.5
            ]
            or None
        ),
        "a run after the lock was released",
        timeout=15,
    )
    assert ran_after
    assert daemon.proc.poll() is None
    assert "store unavailable" in daemon.log() or "not written yet" in daemon.log()
    times = [r["scheduled_time"] for r in daemon.history("tick") if r["outcome"] != "missed"]
    assert len(times) == len(set(times)), "a due time ran twice"


def test_reconcile_of_another_jobs_dir_is_refused_while_a_daemon_owns_the_store(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    write_jobs("a.yaml", "jobs:\n  a:\n    schedule: {interval: 1h}\n    run: {type: cleanup}\n")
    daemon = start_daemon()
    other = tmp_path / "other.d"
    other.mkdir()
    refused = daemon.cli("--jobs-dir", str(other), "reconcile")
    assert refused.returncode == 1
    assert f"reconciles {daemon.jobs_dir.resolve()}, not {other}" in refused.stderr
    assert set(daemon.jobs()) == {"a"}  # the daemon's jobs were not touched
