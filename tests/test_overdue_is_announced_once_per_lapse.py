"""Freshness without waiting: a job is overdue when its last success (from run history, or
the moment its promise was declared) is older than its window; the watch announces each
lapse once, again only after a new success and a new lapse. Time is passed in, the store is
a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.apply import set_operator_pause
from scheduler.cron import parse_cron
from scheduler.freshness import Freshness, cron_period, evaluate
from scheduler.history import list_runs
from scheduler.overdue import OverdueWatch, freshness
from scheduler.reconciler import reconcile
from scheduler.store import Store
from tests.conftest import WriteJobs

H = 3600.0


@pytest.mark.parametrize(
    ("cron", "period"),
    [
        ("0 2 * * *", timedelta(days=1)),
        ("*/5 * * * *", timedelta(minutes=5)),
        ("30 8,17 * * *", timedelta(hours=15)),  # 17:30 to 08:30 the next day
        ("0 9 * * 1-5", timedelta(days=3)),  # Friday to Monday
        ("0 0 13 * 5", timedelta(days=7)),  # the 13th OR a Friday (Vixie)
        ("0 0 1 * *", timedelta(days=31)),
        ("0 0 31 * *", timedelta(days=61)),  # 31 March to 31 May
        ("0 0 29 2 *", timedelta(days=2921)),  # 2096 to 2104: 2100 is no leap year
    ],
)
def test_the_longest_gap_of_a_cron_schedule(cron: str, period: timedelta) -> None:
    assert cron_period(parse_cron(cron)) == period


def test_overdue_counts_from_the_last_success_or_the_declaration() -> None:
    assert evaluate(now=100 * H, last_success=80 * H, declared_at=0, window=26 * H) == Freshness(
        since=80 * H, last_success=80 * H, window=26 * H, overdue=False
    )
    assert evaluate(now=107 * H, last_success=80 * H, declared_at=0, window=26 * H).overdue
    # never succeeded: the window runs from when the promise was written
    assert not evaluate(now=10 * H, last_success=None, declared_at=0, window=26 * H).overdue
    assert evaluate(now=27 * H, last_success=None, declared_at=0, window=26 * H).overdue


JOBS = """
jobs:
  nightly:
    schedule: {cron: "0 2 * * *"}
    run: {type: command, command: ["true"]}
    expect: {succeeds_within: 26h}
  untracked:
    schedule: {cron: "0 2 * * *"}
    run: {type: command, command: ["true"]}
"""


def _success(store: Store, job_id: str, at: float, run_id: str) -> None:
    with store.write() as conn:
        conn.execute(
            store.runs.insert(),
            {
                "run_id": run_id,
                "job_id": job_id,
                "scheduled_time": at - 5,
                "started_at": at - 5,
                "finished_at": at,
                "outcome": "success",
                "exit_code": 0,
                "attempt": 1,
                "output_tail": "",
                "error": None,
            },
        )


def test_the_watch_announces_each_lapse_once(
    tmp_path: Path, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", JOBS)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        reconcile(store, jobs_dir)
        clock = [0.0]
        announced: list[tuple[str, float | None]] = []

        def new_watch() -> OverdueWatch:  # a daemon (re)starting on this store
            return OverdueWatch(
                store,
                lambda job, state, now: announced.append((job, state.last_success)),
                clock=lambda: clock[0],
            )

        def check() -> list[str]:
            fresh = watch.update(watch.read())
            watch.record()
            return fresh

        watch = new_watch()
        start = freshness(store, 1e12)["nightly"].since  # declared_at of the job's row
        assert set(freshness(store, start)) == {"nightly"}  # only jobs with expect

        clock[0] = start + 25 * H
        assert check() == []
        clock[0] = start + 27 * H  # never succeeded, 27h after the job was declared
        assert check() == ["nightly"]
        assert check() == []  # the same lapse: not again
        assert watch.samples() == [("nightly", None, True)]
        watch = new_watch()  # a restart: history says this lapse was announced
        assert check() == []
        assert watch.samples() == [("nightly", None, True)]
        set_operator_pause(store, "nightly", True, datetime.now(UTC))  # paused and forgotten
        assert check() == [] and watch.samples() == [("nightly", None, True)]  # still overdue

        _success(store, "nightly", start + 28 * H, "r1")
        clock[0] = start + 29 * H
        assert check() == []
        assert watch.samples() == [("nightly", start + 28 * H, False)]
        clock[0] = start + 28 * H + 26 * H + 1  # the next lapse
        assert check() == ["nightly"]
        assert announced == [("nightly", None), ("nightly", start + 28 * H)]
        history = list_runs(store, "nightly")
        assert [(r["outcome"], r["attempt"]) for r in history] == [
            ("overdue", 0),
            ("success", 1),
            ("overdue", 0),
        ]
        assert history[0]["error"] == (
            "overdue: no success within 93600s (last success: "
            f"{datetime.fromtimestamp(start + 28 * H, UTC).isoformat(timespec='seconds')})"
        )
    finally:
        store.close()
