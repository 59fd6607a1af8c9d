"""Run starts claimed together (1,000 runs due in the same second) are made in one
transaction on PostgreSQL (one after another on MariaDB), with every guarantee of a claim
made alone: each try starts at most once under the unique claim, a try claimed before
stays refused, and a fence whose epoch is stale wins nothing (issue 10)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from scheduler.claims import FencedClaims
from scheduler.history import RunRecord, list_runs
from scheduler.leadership import Fence, LeaseLeadership
from scheduler.runner import new_run_id
from scheduler.store import Store


class Stale:
    """A leadership whose fence is one epoch behind the lease row."""

    def __init__(self, fence: Fence) -> None:
        self.fence = replace(fence, epoch=fence.epoch - 1)

    def leading(self) -> bool:
        return True


def record(job_id: str, scheduled: float = 1_800_000_000.0) -> RunRecord:
    return RunRecord(new_run_id(), job_id, scheduled, scheduled + 0.01)


def test_claims_made_together_win_once_each(server_database: Callable[[], str]) -> None:
    url = server_database()
    store = Store(url)

    async def go() -> tuple[list[bool], list[bool]]:
        leadership = LeaseLeadership(url, lease=10)
        fence = await leadership.acquire(asyncio.Event())
        assert fence is not None
        try:
            claims = FencedClaims(store, leadership)
            before = record("before")
            assert await claims.claim(before)  # alone
            together = [record(f"job{n}") for n in range(5)]
            twin = replace(together[0], run_id=new_run_id())  # the same try, twice
            again = replace(before, run_id=new_run_id())  # a try claimed already
            won = await asyncio.gather(*(claims.claim(r) for r in [*together, twin, again]))
            stale = FencedClaims(store, Stale(fence))  # type: ignore[arg-type]
            refused = await asyncio.gather(*(stale.claim(record(f"late{n}")) for n in range(3)))
            return won, refused
        finally:
            await leadership.release()
            leadership.engine.dispose()

    try:
        won, refused = asyncio.run(go())
        rows = list_runs(store, limit=100)
    finally:
        store.close()
    assert won == [True] * 5 + [False, False]
    assert refused == [False] * 3
    assert sorted(r["job_id"] for r in rows) == ["before", *(f"job{n}" for n in range(5))]
    assert {r["outcome"] for r in rows} == {"running"}
