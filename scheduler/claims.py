"""Fenced run starts: with replicas, every try of a run first claims ``(job, scheduled time,
attempt)`` in the database, carrying the leader's fence, before anything starts.

The claim is the run's history row itself, inserted synchronously (never through the
batched history writer) only if, in the same statement, the lease row still names this
holder with this epoch and has not expired on the database's clock; the row is locked
``FOR SHARE`` so a takeover waits for the claim to commit, or the claim sees the new holder.
A unique index on ``claim`` refuses a second start of the same try. A single-host daemon
(``HostLeadership``) keeps the runner's in-memory guard and batched writes instead.

Claims made while others are in flight are gathered and made together: on PostgreSQL the
whole batch is one transaction (the lease row checked ``FOR SHARE`` once, one insert of
every row); 1,000 runs due at once were 1,000 transactions, a second of dispatch lag.
Callers: ``daemon`` (hands ``FencedClaims.claim`` to the runner).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from scheduler.history import RunRecord
from scheduler.leadership import LEASE_NAME, Leadership, db_now
from scheduler.mysql_types import MYSQL
from scheduler.store import Store

log = logging.getLogger(__name__)

BATCH_LIMIT = 500  # claims per transaction
MYSQL_DUPLICATE_KEY = 1062  # ER_DUP_ENTRY


def claim_key(record: RunRecord) -> str:
    scheduled = "" if record.scheduled_time is None else f"{record.scheduled_time:.6f}"
    return f"{record.job_id}@{scheduled}#{record.attempt}"


@dataclass
class _Pending:
    record: RunRecord
    params: dict[str, object]
    future: asyncio.Future[bool]


class FencedClaims:
    def __init__(self, store: Store, leadership: Leadership) -> None:
        self.store = store
        self.leadership = leadership
        self.pending: list[_Pending] = []
        self.flusher: asyncio.Task[None] | None = None
        now = db_now(store.engine)
        self.mysql = store.engine.dialect.name in MYSQL
        # A batch in one statement on PostgreSQL; elsewhere one claim after another.
        self.batched = store.engine.dialect.name == "postgresql"
        self._lease = text(
            "SELECT epoch FROM scheduler_lease WHERE name = :name AND holder = :holder "
            f"AND epoch = :epoch AND expires_at > {now} FOR SHARE"
        )
        self._insert_many = text(
            "INSERT INTO scheduler_runs "
            "(run_id, job_id, scheduled_time, started_at, outcome, attempt, claim, epoch) "
            "SELECT v.run_id, v.job_id, v.scheduled_time, v.started_at, 'running', v.attempt, "
            "v.claim, :epoch FROM unnest(CAST(:run_ids AS VARCHAR[]), "
            "CAST(:job_ids AS VARCHAR[]), CAST(:scheduled AS DOUBLE PRECISION[]), "
            "CAST(:started AS DOUBLE PRECISION[]), CAST(:attempts AS INTEGER[]), "
            "CAST(:claims AS VARCHAR[])) "
            "AS v(run_id, job_id, scheduled_time, started_at, attempt, claim) "
            "ON CONFLICT (claim) DO NOTHING RETURNING run_id"
        )
        self._owners = text("SELECT claim, run_id FROM scheduler_runs WHERE claim = ANY(:claims)")
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
        pending = _Pending(record, params, asyncio.get_running_loop().create_future())
        self.pending.append(pending)
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        return await asyncio.shield(pending.future)  # a stopped run leaves the batch alone

    async def _flush(self) -> None:
        """Claim what is pending, a batch at a time, while more arrives."""
        while self.pending:
            batch = self.pending[:BATCH_LIMIT]
            del self.pending[:BATCH_LIMIT]
            params = [p.params for p in batch]
            won: set[object] = set()
            for retry in (False, True):  # once more on a cut connection, or slots are lost
                try:
                    won = await asyncio.to_thread(self._claim_batch, params)
                    break
                except DBAPIError as exc:
                    if retry or not exc.connection_invalidated:
                        for p in batch:
                            log.error(
                                "job %s not started: claim failed (%s)", p.record.job_id, exc.orig
                            )
                        break
                except Exception:  # never leave a run waiting on its claim
                    log.exception("%d run(s) not started: claims failed", len(batch))
                    break
            for p in batch:
                ok = p.params["run_id"] in won
                if not ok:
                    log.warning(
                        "job %s run at %s not started: claimed already, or epoch %s is stale",
                        p.record.job_id,
                        p.record.scheduled_time,
                        p.params["epoch"],
                    )
                if not p.future.done():
                    p.future.set_result(ok)

    def _claim_batch(self, batch: list[dict[str, object]]) -> set[object]:
        """The run ids whose claims this process won. Off the loop."""
        if not self.batched or len(batch) == 1:
            return {params["run_id"] for params in batch if self._claim(params)}
        first = batch[0]
        fence = {key: first[key] for key in ("name", "holder", "epoch")}
        if any(p[key] != value for p in batch for key, value in fence.items()):
            return {params["run_id"] for params in batch if self._claim(params)}
        columns = {
            "run_ids": "run_id",
            "job_ids": "job_id",
            "scheduled": "scheduled_time",
            "started": "started_at",
            "attempts": "attempt",
            "claims": "claim",
        }
        values = {array: [p[key] for p in batch] for array, key in columns.items()}
        with self.store.engine.begin() as conn:
            # Held until commit: a takeover waits for these claims, or they see it.
            if conn.execute(self._lease, fence).first() is None:
                return set()
            won = set(conn.execute(self._insert_many, {**values, **fence}).scalars())
            mine = {p["claim"]: p["run_id"] for p in batch if p["run_id"] not in won}
            if mine:  # a retry after a commit whose answer was lost finds its own rows
                owners = conn.execute(self._owners, {"claims": list(mine)})
                won |= {run_id for claim, run_id in owners if mine.get(claim) == run_id}
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
