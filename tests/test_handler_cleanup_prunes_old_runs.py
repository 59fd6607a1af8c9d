"""The ``cleanup`` handler prunes run history older than its ``retention`` (default 7 days),
of every job, keeps recent runs and runs still in progress, and says how many it removed."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.history import prune
from scheduler.store import Store
from tests.runner_helpers import DEADLINE, command_job, harness, job, now, wait_for_async

DAY = 86400.0


def insert_runs(store: Store, job_id: str, ages_in_days: list[float], outcome: str) -> list[str]:
    started = time.time()
    ids = [uuid.uuid4().hex for _ in ages_in_days]
    rows = [
        {
            "run_id": run_id,
            "job_id": job_id,
            "scheduled_time": started - age * DAY,
            "started_at": started - age * DAY,
            "finished_at": None if outcome == "running" else started - age * DAY + 1,
            "outcome": outcome,
            "exit_code": 0,
            "attempt": 1,
            "output_tail": "",
            "error": None,
        }
        for run_id, age in zip(ids, ages_in_days, strict=True)
    ]
    with store.write() as conn:
        conn.execute(store.runs.insert(), rows)
    return ids


def test_runs_older_than_the_retention_are_removed_recent_ones_kept(tmp_path: Path) -> None:
    async def go() -> tuple[list[str], list[str], set[str], dict[str, Any]]:
        cleanup = job(run={"type": "cleanup", "retention": "7d"})
        async with harness(tmp_path, {"housekeeping": cleanup}) as h:
            old = insert_runs(h.store, "report", [10, 10, 30], "success")
            old += insert_runs(h.store, "export", [8], "failure")
            recent = insert_runs(h.store, "report", [1, 6.9], "success")
            recent += insert_runs(h.store, "export", [0.1], "failure")
            assert h.runner.dispatch("housekeeping", now()) is None
            await h.idle()
            kept = {r["run_id"] for r in (*h.runs("report"), *h.runs("export"))}
            (own,) = h.runs("housekeeping")
            return old, recent, kept, own

    old, recent, kept, own = asyncio.run(go())
    assert kept == set(recent)
    assert not kept & set(old)
    assert own["outcome"] == "success"
    assert own["output_tail"] == "removed 4 run(s) older than 1w"  # 7d, canonically


def test_the_default_retention_is_seven_days(tmp_path: Path) -> None:
    async def go() -> tuple[set[str], str]:
        cleanup = job(run={"type": "cleanup"})
        assert cleanup["run"]["retention"] == "1w"
        async with harness(tmp_path, {"housekeeping": cleanup}) as h:
            insert_runs(h.store, "report", [7.5, 12], "success")
            kept = insert_runs(h.store, "report", [6.5], "success")
            assert h.runner.dispatch("housekeeping", now()) is None
            await h.idle()
            (own,) = h.runs("housekeeping")
            return {r["run_id"] for r in h.runs("report")} - set(kept), own["output_tail"]

    left, output = asyncio.run(go())
    assert left == set()
    assert output == "removed 2 run(s) older than 1w"  # 7d, canonically


def test_a_run_still_in_progress_is_never_pruned(tmp_path: Path) -> None:
    async def go() -> list[str]:
        cleanup = job(run={"type": "cleanup", "retention": "1d"})
        async with harness(tmp_path, {"housekeeping": cleanup}) as h:
            insert_runs(h.store, "long", [3], "running")
            assert h.runner.dispatch("housekeeping", now()) is None
            await h.idle()
            return [r["outcome"] for r in h.runs("long")]

    assert asyncio.run(go()) == ["running"]


def test_pruning_goes_in_chunks_oldest_first_and_lets_writers_in_between(
    tmp_path: Path,
) -> None:
    """Issue 12: 900,000 expired runs deleted in one transaction held the write lock for
    seconds. Between two chunks another connection writes at once (a 0.1 s lock wait would
    fail it), and the right runs are left whatever the chunk size."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    store, other = Store(url), Store(url)
    try:
        old = insert_runs(store, "report", [10 + n / 100 for n in range(25)], "success")
        stuck = insert_runs(store, "report", [12], "running")
        recent = insert_runs(store, "report", [1, 2], "success")
        seen: list[set[str]] = []

        def between(_held: float) -> None:
            with other.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout=100")
                left = {row.run_id for row in conn.execute(select(store.runs.c.run_id))}
                conn.commit()
            seen.append(left)
            recent.extend(insert_runs(other, "export", [0.5], "success"))  # a new run

        assert prune(store, time.time() - 7 * DAY, max_chunk=4, between=between) == 25
        with store.engine.connect() as conn:
            kept = {row.run_id for row in conn.execute(select(store.runs.c.run_id))}
        assert kept == set(stuck + recent)
        assert len(seen) >= 6  # 25 runs, 4 at a time: a transaction each
        # Oldest first: what a chunk left is always the newest of the expired runs.
        for left in seen:
            expired_left = [run for run in old if run in left]
            assert expired_left == old[: len(expired_left)]  # ``old`` is newest first
    finally:
        other.close()
        store.close()


def test_other_jobs_run_and_are_recorded_while_a_cleanup_is_half_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cleanup is held between two of its chunks until a job started meanwhile has run
    and its history is written: with the lock held throughout, that run's record would
    wait for the whole cleanup."""
    import scheduler.history

    halfway, release = threading.Event(), threading.Event()

    def between(_held: float) -> None:
        halfway.set()
        release.wait(DEADLINE)

    real_prune = scheduler.history.prune
    monkeypatch.setattr(
        scheduler.history,
        "prune",
        lambda store, older_than: real_prune(store, older_than, max_chunk=10, between=between),
    )

    async def go() -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        cleanup = job(run={"type": "cleanup", "retention": "7d"})
        quick = command_job(["true"])
        async with harness(tmp_path, {"housekeeping": cleanup, "quick": quick}) as h:
            insert_runs(h.store, "report", [8 + n / 100 for n in range(50)], "success")
            assert h.runner.dispatch("housekeeping", now()) is None
            await wait_for_async(lambda: _is_set(halfway), "the cleanup's first chunk")
            assert h.runner.dispatch("quick", now()) is None
            quick_runs = await h.finished("quick")
            left = len(h.runs("report"))
            release.set()
            await h.idle()
            (own,) = h.runs("housekeeping")
            return quick_runs, left, own

    quick_runs, left, own = asyncio.run(go())
    assert [r["outcome"] for r in quick_runs] == ["success"]
    assert 0 < left < 50  # recorded while the cleanup was half-way
    assert own["output_tail"] == "removed 50 run(s) older than 1w"


async def _is_set(event: threading.Event) -> bool:
    return event.is_set()
