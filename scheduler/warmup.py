"""Runs due soon are made cheap to start before their time. The leader looks a minute
ahead for jobs due, parses their specs (the runner would otherwise parse each at its first
run, on the event loop, in the middle of a burst of 1,000) and lets their handler types
prepare (a Celery client imports Celery and connects to its broker: a fifth of a second
that the first sends of a burst used to wait for). Best effort: it changes nothing about
what runs or when. Caller: the daemon, while it leads.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TypeVar

from sqlalchemy import select

from scheduler.heap import freeze_long_lived
from scheduler.runner import Runner
from scheduler.store import Store
from scheduler.threads import in_own_thread

log = logging.getLogger(__name__)

HORIZON = 60.0  # seconds ahead: jobs due by then are prepared
EVERY = 10.0  # seconds between two looks
FREEZE_AFTER = 100  # specs newly parsed (or a handler's first imports) before a freeze

T = TypeVar("T")


class Warmup:
    def __init__(self, store: Store, runner: Runner) -> None:
        self.store = store
        self.runner = runner
        self.failed: set[str] = set()

    def due_soon(self, until: float) -> list[str]:
        """Ids of the stored jobs due by ``until`` (paused jobs have no next run time)."""
        table = self.store.aps_jobs
        query = select(table.c.id).where(table.c.next_run_time <= until)
        with self.store.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def prepare(self, now: float) -> int:
        """Parse the specs of the jobs due by ``now + HORIZON`` and prepare their handler
        types; returns how many jobs it looked at. Off the loop."""
        ids = self.due_soon(now + HORIZON)
        modules, parsed = len(sys.modules), 0
        for job_id in ids:
            try:
                parsed += self.runner.is_parsed(job_id) is False
                spec = self.runner.spec(job_id)  # parsed now, kept for the run
                if spec is None:
                    continue
                handler = self.runner.registry.get(spec.run.type)
                if handler is not None and handler.prepare is not None:
                    handler.prepare(spec.run)
            except Exception:  # a plugin's prepare: never a reason to stop looking
                if job_id not in self.failed:  # once, not every look ahead
                    log.exception("job %s could not be prepared ahead of its run", job_id)
                self.failed.add(job_id)
        if parsed >= FREEZE_AFTER or len(sys.modules) > modules:
            freeze_long_lived()  # what it made lives until the runs: out of the burst's GC
        return len(ids)

    async def run(self) -> None:
        """Look every ``EVERY`` seconds until cancelled."""
        while True:
            try:
                await in_own_thread(lambda: self.prepare(time.time()), "warmup")
            except Exception as exc:  # the store is away: the runs will say what matters
                log.debug("runs due soon not prepared: %s", exc)
            await asyncio.sleep(EVERY)
