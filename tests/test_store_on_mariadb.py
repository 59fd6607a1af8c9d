"""A MariaDB/MySQL store (issue 8.6) works like the others: before, none could even be
created (``scheduler_files.path`` was too long a key in utf8mb4) and its times would have
been single-precision FLOAT (a 2026 timestamp in steps of 128 s). Here a daemon runs a job
on one, its history reads back to the microsecond, pause and resume work, file paths compare
exactly; and the fenced claims that make replicas safe hold on MariaDB as on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.claims import FencedClaims
from scheduler.history import RunRecord, list_runs
from scheduler.leadership import LeaseLeadership
from scheduler.store import Store
from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for


@pytest.fixture
def db_url(mysql_database: Callable[[], str]) -> str:
    return mysql_database()


def _at(seconds: float) -> str:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    return when.isoformat().replace("+00:00", "Z")


def test_a_daemon_on_mariadb_runs_a_job_and_its_history_keeps_exact_times(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    out = tmp_path / "started"
    at = _at(3)
    write_jobs(
        "a.yaml",
        "jobs:\n"
        "  stamp:\n"
        f"    schedule: {{at: '{at}'}}\n"
        f"    run: {{type: command, command: 'date +%s.%N > {out}; echo stamped'}}\n",
    )
    # Paths that differ in case only are two files (a case-insensitive key made them one).
    write_jobs(
        "A.yaml",
        "jobs:\n  other:\n    schedule: {cron: '0 0 1 1 *'}\n"
        "    run: {type: command, command: 'true'}\n",
    )
    daemon = start_daemon()
    runs = wait_for(
        lambda: [r for r in daemon.history() if r["outcome"] == "success"] or None,
        "the job to run",
        timeout=30,
    )
    (run,) = runs
    assert run["job_id"] == "stamp" and "stamped" in run["output_tail"]
    assert run["scheduled_time"] == datetime.fromisoformat(at).isoformat()
    printed = float(out.read_text())
    started = datetime.fromisoformat(run["started_at"]).timestamp()
    finished = datetime.fromisoformat(run["finished_at"]).timestamp()
    assert started <= printed <= finished < started + 5
    assert started != int(started)  # microseconds kept, not rounded to a FLOAT step

    paused = daemon.cli("pause", "other")
    assert paused.returncode == 0, paused.stderr
    listing = daemon.cli("jobs", "--output", "json")
    assert listing.returncode == 0, listing.stderr
    jobs = {job["id"]: job for job in json.loads(listing.stdout)}
    assert set(jobs) == {"stamp", "other"}
    assert jobs["other"]["paused"] is True
    resumed = daemon.cli("resume", "other")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(daemon.cli("jobs", "--output", "json").stdout)[0]["paused"] is False


def test_a_claim_is_refused_twice_for_one_slot_and_after_another_replica_took_over(
    server_database: Callable[[], str],
) -> None:
    url = server_database()
    store = Store(url)

    async def scenario() -> list[bool]:
        leadership = LeaseLeadership(url, lease=10.0)
        try:
            fence = await leadership.acquire(asyncio.Event())
            assert fence is not None and fence.epoch == 1
            claims = FencedClaims(store, leadership)
            now = time.time()

            def record(run_id: str, scheduled: float) -> RunRecord:
                return RunRecord(run_id, "job", scheduled, now)

            won = [
                await claims.claim(record("a" * 32, 1_800_000_000.25)),
                await claims.claim(record("b" * 32, 1_800_000_000.25)),  # the same slot
            ]
            # Another replica takes the lease over while this one still believes it leads.
            with store.engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE scheduler_lease SET holder = 'elsewhere:1:x', epoch = epoch + 1"
                )
            won.append(await claims.claim(record("c" * 32, 1_800_000_001.25)))
            return won
        finally:
            await leadership.release()

    try:
        assert asyncio.run(scenario()) == [True, False, False]
        (run,) = list_runs(store, "job")
        assert (run["run_id"], run["outcome"]) == ("a" * 32, "running")
        assert run["scheduled_time"] == "2027-01-15T08:00:00.250000+00:00"
    finally:
        store.close()
