"""Reconcile against a real store (SQLite file and PostgreSQL): idempotent, targeted,
and it never resets a job's next run time unless its schedule changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from scheduler.apply import set_operator_pause
from scheduler.reconciler import reconcile
from scheduler.service import list_jobs
from scheduler.store import Store
from tests.conftest import WriteJobs, simple_job

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Any:
    s = Store(store_url)
    yield s
    s.close()


def rows(store: Store) -> dict[str, tuple[Any, ...]]:
    """Every stored byte of every job: APScheduler's row and ours."""
    with store.engine.connect() as conn:
        aps = {r.id: (r.next_run_time, r.job_state) for r in conn.execute(select(store.aps_jobs))}
        ours = {r.id: tuple(r) for r in conn.execute(select(store.jobs))}
    return {k: (aps.get(k), ours.get(k)) for k in aps.keys() | ours.keys()}


def next_runs(store: Store) -> dict[str, str | None]:
    return {j["id"]: j["next_run_time"] for j in list_jobs(store)}


class WriteCounter:
    """Counts INSERT/UPDATE/DELETE statements sent to the database."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.count += 1


INTERVAL_JOB = "jobs:\n  every-day:\n    schedule: {interval: 24h}\n    run: {type: cleanup}\n"


def test_second_reconcile_writes_nothing(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a") + INTERVAL_JOB.removeprefix("jobs:\n"))
    first = reconcile(store, jobs_dir, now=T0)
    assert [j.id for j in first.plan.add] == ["a", "every-day"] and first.applied
    before = rows(store)
    writes = WriteCounter(store)
    second = reconcile(store, jobs_dir, now=T0 + timedelta(hours=5))
    assert not second.applied and second.plan.unchanged == ["a", "every-day"]
    assert second.parsed_files == 0  # the file's hash matched: not even parsed
    assert writes.count == 0
    assert rows(store) == before


def test_interval_timer_survives_daily_restarts(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    """Regression: re-adding with replace_existing=True restarted a 24h interval at every
    boot, so a process restarted daily never ran it."""
    write_jobs("a.yaml", INTERVAL_JOB)
    reconcile(store, jobs_dir, now=T0)
    due = next_runs(store)["every-day"]
    assert due == "2026-11-28T06:00:00+00:00"
    for day in range(1, 4):  # restarts at 23h, 47h, 71h: files unchanged
        reconcile(store, jobs_dir, now=T0 + timedelta(hours=24 * day - 1))
        assert next_runs(store)["every-day"] == due


def test_description_and_args_changes_keep_next_run_time(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", INTERVAL_JOB)
    reconcile(store, jobs_dir, now=T0)
    before = rows(store)["every-day"]
    write_jobs("a.yaml", INTERVAL_JOB + "    description: now documented\n    timeout: 5m\n")
    result = reconcile(store, jobs_dir, now=T0 + timedelta(hours=3))
    assert [(u.job.id, u.fields) for u in result.plan.update] == [
        ("every-day", ["description", "timeout"])
    ]
    after = rows(store)["every-day"]
    assert after[0] == before[0]  # APScheduler's row untouched: same next run, same state
    assert after[1] != before[1]  # our spec row updated


def test_option_change_keeps_next_run_but_updates_the_job(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", INTERVAL_JOB)
    reconcile(store, jobs_dir, now=T0)
    due = next_runs(store)["every-day"]
    write_jobs("a.yaml", INTERVAL_JOB + "    misfire_grace: 10m\n")
    reconcile(store, jobs_dir, now=T0 + timedelta(hours=3))
    assert next_runs(store)["every-day"] == due
    aps_job = store.jobstore.lookup_job("every-day")
    assert aps_job.misfire_grace_time == 600


def test_schedule_change_recomputes_next_run(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a", cron="0 9 * * *"))
    reconcile(store, jobs_dir, now=T0)
    assert next_runs(store)["a"] == "2026-11-27T09:00:00+00:00"
    write_jobs("a.yaml", simple_job("a", cron="30 7 * * *"))
    result = reconcile(store, jobs_dir, now=T0)
    assert result.plan.update[0].fields == ["schedule.cron"]
    assert next_runs(store)["a"] == "2026-11-27T07:30:00+00:00"


def test_only_the_changed_files_jobs_are_touched(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a1") + simple_job("a2").removeprefix("jobs:\n"))
    write_jobs("b.yaml", simple_job("b1"))
    reconcile(store, jobs_dir, now=T0)
    before = rows(store)
    write_jobs("b.yaml", simple_job("b1", cron="0 10 * * *"))
    result = reconcile(store, jobs_dir, now=T0)
    assert result.parsed_files == 1
    after = rows(store)
    assert {k for k in after if after[k] != before[k]} == {"b1"}


def test_removed_jobs_are_deleted(store: Store, jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", simple_job("a"))
    b = write_jobs("b.yaml", simple_job("b"))
    reconcile(store, jobs_dir, now=T0)
    b.unlink()
    result = reconcile(store, jobs_dir, now=T0)
    assert [s.id for s in result.plan.remove] == ["b"]
    assert set(rows(store)) == {"a"}
    assert store.jobstore.lookup_job("b") is None


def test_operator_pause_survives_reconciles_and_edits(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    reconcile(store, jobs_dir, now=T0)
    assert set_operator_pause(store, "a", True, T0)
    paused = list_jobs(store)[0]
    assert (paused["paused"], paused["paused_by"], paused["next_run_time"]) == (
        True,
        "operator",
        None,
    )
    write_jobs("a.yaml", simple_job("a", cron="0 10 * * *"))  # even a schedule change
    reconcile(store, jobs_dir, now=T0)
    reopened = Store(store.url)  # and a restart
    try:
        reconcile(reopened, jobs_dir, now=T0)
        job = list_jobs(reopened)[0]
        assert (job["paused_by"], job["next_run_time"]) == ("operator", None)
        assert reopened.jobstore.lookup_job("a").next_run_time is None
        assert set_operator_pause(reopened, "a", False, T0)
        assert list_jobs(reopened)[0]["next_run_time"] == "2026-11-27T10:00:00+00:00"
    finally:
        reopened.close()


def test_declared_pause_follows_the_file(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a", extra="paused: true"))
    reconcile(store, jobs_dir, now=T0)
    assert list_jobs(store)[0]["paused_by"] == "file"
    assert list_jobs(store)[0]["next_run_time"] is None
    write_jobs("a.yaml", simple_job("a"))
    result = reconcile(store, jobs_dir, now=T0)
    assert result.plan.update[0].fields == ["paused"]
    assert list_jobs(store)[0]["next_run_time"] == "2026-11-27T09:00:00+00:00"


def test_jobs_moved_between_files_keep_their_next_run(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    a = write_jobs("a.yaml", INTERVAL_JOB)
    reconcile(store, jobs_dir, now=T0)
    due = next_runs(store)["every-day"]
    a.rename(jobs_dir / "renamed.yaml")
    result = reconcile(store, jobs_dir, now=T0 + timedelta(hours=1))
    assert result.plan.unchanged == ["every-day"]
    job = list_jobs(store)[0]
    assert job["next_run_time"] == due
    assert job["source"] == f"{jobs_dir / 'renamed.yaml'}:2"


def test_a_store_edited_behind_our_back_is_repaired_from_the_files(
    store: Store, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    """The parse cache only knows fingerprints: a job it vouches for but the store lost
    must still be re-added with its full spec."""
    write_jobs("a.yaml", simple_job("a") + simple_job("b").removeprefix("jobs:\n"))
    reconcile(store, jobs_dir, now=T0)
    with store.engine.begin() as conn:
        conn.execute(store.jobs.delete().where(store.jobs.c.id == "b"))
        conn.execute(store.aps_jobs.delete().where(store.aps_jobs.c.id == "b"))
    result = reconcile(store, jobs_dir, now=T0)
    assert [j.id for j in result.plan.add] == ["b"]
    assert result.parsed_files == 1
    assert next_runs(store) == {"a": "2026-11-27T09:00:00+00:00", "b": "2026-11-27T09:00:00+00:00"}
    assert list_jobs(store)[1]["schedule"] == "At 09:00"
