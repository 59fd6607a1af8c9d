"""The ``cleanup`` handler prunes run history older than its ``retention`` (default 7 days),
of every job, keeps recent runs and runs still in progress, and says how many it removed."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from scheduler.store import Store
from tests.runner_helpers import harness, job, now

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
