"""Fenced run starts: with replicas, every try of a run first claims ``(job, scheduled time,
attempt)`` in the database, carrying the leader's fence, before anything starts.

The claim is the run's history row itself, inserted synchronously (never through the
batched history writer) only if, in the same statement, the lease row still names this
holder with this epoch and has not expired on the database's clock; the row is locked
``FOR SHARE`` so a takeover waits for the claim to commit, or the claim sees the new holder.
A unique index on ``claim`` refuses a second start of the same try. A single-host daemon
(``HostLeadership``) keeps the runner's in-memory guard and batched writes instead.
Callers: ``daemon`` (hands ``FencedClaims.claim`` to the runner).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from scheduler.history import RunRecord
from scheduler.leadership import LEASE_NAME, Leadership, db_now
from scheduler.schema import MYSQL
from scheduler.store import Store

log = logging.getLogger(__name__)

MYSQL_DUPLICATE_KEY = 1062  # ER_DUP_ENTRY


def claim_key(record: RunRecord) -> str:
    scheduled = "" if record.scheduled_time is None else f"{record.scheduled_time:.6f}"
    return f"{record.job_id}@{scheduled}#{record.attempt}"


class FencedClaims:
    def __init__(self, store: Store, leadership: Leadership) -> None:
        self.store = store
        self.leadership = leadership
        now = db_now(store.engine)
        self.mysql = store.engine.dialect.name in MYSQL
        # MySQL/MariaDB: no ON CONFLICT ... RETURNING; a duplicate claim is an error there
        # (caught below), and LOCK IN SHARE MODE is their FOR SHARE.
        self._insert = text(
            "INSERT INTO scheduler_runs "
            "(run_id, job_id, scheduled_time, started_at, outcome, attempt, claim, epoch) "
            "SELECT :run_id, :job_id, :scheduled_time, :started_at, 'running', :attempt, "
            ":claim, epoch FROM scheduler_lease "
            f"WHERE name = :name AND holder = :holder AND epoch = :epoch AND expires_at > {now} "
            + (
                "LOCK IN SHARE MODE"
                if self.mysql
                else "FOR SHARE ON CONFLICT (claim) DO NOTHING RETURNING run_id"
            )
        )
        self._owner = text("SELECT run_id FROM scheduler_runs WHERE claim = :claim")

    async def claim(self, record: RunRecord) -> bool:
        """True: this process may start the try (its ``running`` row is written)."""
        fence = getattr(self.leadership, "fence", None)
        if fence is None or not self.leadership.leading():
            log.warning("job %s not started: this replica no longer leads", record.job_id)
            return False
        params = {
            "run_id": record.run_id,
            "job_id": record.job_id,
            "scheduled_time": record.scheduled_time,
            "started_at": record.started_at,
            "attempt": record.attempt,
            "claim": claim_key(record),
            "name": LEASE_NAME,
            "holder": fence.holder,
            "epoch": fence.epoch,
        }
        for retry in (False, True):  # once more on a cut connection, or a slot is lost
            try:
                won = await asyncio.to_thread(self._claim, params)
                break
            except DBAPIError as exc:
                if retry or not exc.connection_invalidated:
                    log.error("job %s not started: claim failed (%s)", record.job_id, exc.orig)
                    return False
        if not won:
            log.warning(
                "job %s run at %s not started: claimed already, or epoch %d is stale",
                record.job_id,
                record.scheduled_time,
                fence.epoch,
            )
        return won

    def _claim(self, params: dict[str, object]) -> bool:
        with self.store.engine.begin() as conn:
            if self._inserted(conn, params):
                return True
            # A retry after a commit whose answer was lost finds its own row.
            owner = conn.execute(self._owner, {"claim": params["claim"]}).scalar()
        return owner == params["run_id"]

    def _inserted(self, conn: Connection, params: dict[str, object]) -> bool:
        if not self.mysql:
            return conn.execute(self._insert, params).first() is not None
        try:
            return conn.execute(self._insert, params).rowcount == 1
        except IntegrityError as exc:  # the claim is taken: only this statement is undone
            if exc.orig is None or exc.orig.args[0] != MYSQL_DUPLICATE_KEY:
                raise
            return False
