"""Run history is written when a try starts, not only when it ends: a long run is visible
as ``running`` (no ``finished_at``) while it runs, so a crash leaves a row the next start
marks ``interrupted``. ``HistoryWriter.flush`` returns only once what was recorded is
written, even while a batch is in flight."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from scheduler.history import HistoryWriter, RunRecord, list_runs, mark_interrupted
from scheduler.store import Store
from tests.runner_helpers import command_job, harness, now, seconds, wait_for_async


def test_a_long_run_is_listed_as_running_while_it_runs(tmp_path: Path) -> None:
    due = now()

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with harness(tmp_path, {"crawl": command_job(["sleep", "30"])}) as h:
            assert h.runner.dispatch("crawl", due) is None

            async def listed() -> dict[str, Any] | None:  # no flush: the writer's own loop
                rows = list_runs(h.store, "crawl", limit=5)
                return rows[0] if rows else None

            during = await wait_for_async(listed, "the running row")
            await h.runner.shutdown(grace=0)
            (after,) = h.runs("crawl")
            return during, after

    during, after = asyncio.run(go())
    assert during["outcome"] == "running"
    assert during["finished_at"] is None
    assert during["exit_code"] is None
    assert during["attempt"] == 1
    assert seconds(during["scheduled_time"]) == due.timestamp()
    assert seconds(during["started_at"]) >= due.timestamp()
    assert after["run_id"] == during["run_id"]  # the same row, finished
    assert after["outcome"] == "interrupted"


def test_a_row_left_running_by_a_crash_is_marked_interrupted(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        started = time.time() - 60
        with store.write() as conn:
            conn.execute(
                store.runs.insert(),
                [
                    {"run_id": uuid.uuid4().hex, "job_id": "crawl", "scheduled_time": started,
                     "started_at": started, "outcome": "running", "attempt": 1},
                    {"run_id": uuid.uuid4().hex, "job_id": "crawl", "scheduled_time": started,
                     "started_at": started - 1, "finished_at": started, "outcome": "success",
                     "attempt": 1},
                ],
            )  # fmt: skip
        assert mark_interrupted(store) == 1
        crashed, earlier = list_runs(store, "crawl")
    finally:
        store.close()
    assert crashed["outcome"] == "interrupted"
    assert crashed["finished_at"] is not None
    assert crashed["error"] == "the scheduler stopped while this run was in progress"
    assert earlier["outcome"] == "success"


def test_flush_waits_for_the_batch_already_in_flight(tmp_path: Path) -> None:
    """Regression: ``flush`` returned at once when the writer's loop had already taken the
    pending rows, before they were written."""
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    blocker = sqlite3.connect(db, isolation_level=None)

    async def go() -> list[dict[str, Any]]:
        writer = HistoryWriter(store)
        writer.start()
        try:
            blocker.execute("BEGIN IMMEDIATE")  # the writer's batch waits for this lock
            writer.started(RunRecord(uuid.uuid4().hex, "crawl", None, time.time()))
            await asyncio.sleep(0.2)  # the loop has taken the batch; it is in flight
            flush = asyncio.create_task(writer.flush())
            await asyncio.sleep(0.2)
            assert not flush.done(), "flush returned before the batch was written"
            blocker.execute("COMMIT")
            await asyncio.wait_for(flush, 5)
            return list_runs(store, "crawl")
        finally:
            if blocker.in_transaction:
                blocker.execute("COMMIT")
            await writer.close()

    try:
        rows = asyncio.run(go())
    finally:
        blocker.close()
        store.close()
    assert [r["outcome"] for r in rows] == ["running"]
