"""Due times handed over by APScheduler (``Runner.submit``): one later than the misfire grace
is recorded ``missed`` and not run; one within the grace runs; several (a job that does not
coalesce) run in turn; the same due time handed over twice runs once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.runner_helpers import command_job, harness, now, seconds


def submit(tmp_path: Path, run_times: list[Any], grace: float | None) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"digest": command_job(["echo", "ran"])}) as h:
            h.runner.submit("digest", run_times, grace)
            await h.idle()
            return h.runs("digest")

    return asyncio.run(go())


def test_a_run_later_than_its_grace_is_missed_not_run(tmp_path: Path) -> None:
    due = now() - timedelta(seconds=60)

    (row,) = submit(tmp_path, [due], grace=30)

    assert row["outcome"] == "missed"
    assert seconds(row["scheduled_time"]) == due.timestamp()
    assert row["output_tail"] is None
    assert row["finished_at"] is not None
    assert "past its misfire grace of 30s" in row["error"]
    assert row["error"].startswith("started 60.")  # says how late it was


def test_a_late_run_within_its_grace_runs(tmp_path: Path) -> None:
    due = now() - timedelta(seconds=5)

    (row,) = submit(tmp_path, [due], grace=30)

    assert row["outcome"] == "success"
    assert row["output_tail"] == "ran\n"
    assert seconds(row["scheduled_time"]) == due.timestamp()


def test_no_grace_means_any_lateness_runs(tmp_path: Path) -> None:
    (row,) = submit(tmp_path, [now() - timedelta(days=2)], grace=None)

    assert row["outcome"] == "success"


def test_several_due_times_run_in_turn_and_missed_ones_are_recorded(tmp_path: Path) -> None:
    start = now()
    times = [start - timedelta(seconds=90), start - timedelta(seconds=2), start]

    rows = submit(tmp_path, times, grace=30)

    by_time = {seconds(r["scheduled_time"]): r["outcome"] for r in rows}
    outcomes = ["missed", "success", "success"]
    assert by_time == {t.timestamp(): o for t, o in zip(times, outcomes, strict=True)}


def test_the_same_due_time_handed_over_twice_runs_once(tmp_path: Path) -> None:
    due = now()

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"digest": command_job(["true"])}) as h:
            h.runner.submit("digest", [due], 30)
            h.runner.submit("digest", [due], 30)  # APScheduler retrying a failed store write
            await h.idle()
            return h.runs("digest")

    assert [r["outcome"] for r in asyncio.run(go())] == ["success"]
