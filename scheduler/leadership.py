"""Who fires and runs jobs: exactly one daemon per store, the leader.

``Leadership`` is what the daemon asks: ``acquire()`` waits until this process leads and
returns its ``Fence`` (holder and epoch, which every run claim carries); ``lost`` is set when
it stops leading; ``release()`` lets a standby take over at once. Two implementations:

- ``LeaseLeadership`` (PostgreSQL, MySQL/MariaDB: replicas): one row in ``scheduler_lease``
  taken and renewed in one transaction on the database's clock (PostgreSQL: an UPSERT;
  MySQL: the row read ``FOR UPDATE``, then written). A taker bumps the epoch; the holder
  renews every lease/4 and considers itself deposed 0.8 x lease after the last renewal it
  sent, so it stops firing before anyone else may take over. A frozen or partitioned
  leader that wakes up still believing it leads is stopped by the claim (``claims``), which
  checks holder, epoch and expiry in the same statement.
- ``HostLeadership`` (SQLite: one daemon per store file): the ``flock`` of
  ``control.WriterLock`` refuses a second daemon on this host; a live lease row of a daemon
  on another host, or in another runtime dir here, refuses it too. It writes the lease row
  (forcibly, once no live daemon holds it), so command lines elsewhere and the status page
  can find the daemon.

Callers: ``daemon`` (wait to lead, serve until lost), ``service`` (who leads).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from scheduler.control import StoreBusy, WriterLock
from scheduler.errors import SchedulerError
from scheduler.mysql_types import MYSQL
from scheduler.store import server_engine

log = logging.getLogger(__name__)

LEASE_ENV = "SCHEDULER_LEASE"
DEFAULT_LEASE = 10.0
MIN_LEASE, MAX_LEASE = 2.0, 300.0
LEASE_NAME = "leader"
STOP_FIRING_AT = 0.8  # of the lease, after the last renewal sent


class BadLease(SchedulerError):
    """A lease length outside what the leader can safely keep."""


def check_lease(seconds: float) -> float:
    if not MIN_LEASE <= seconds <= MAX_LEASE:
        raise BadLease(
            f"a lease of {seconds:g}s is outside 2s..5m: pick e.g. --lease 10s "
            "(shorter fails over faster but costs more queries)"
        )
    return seconds


def replicable(url: str) -> bool:
    """Whether daemons on several hosts may share this store, one leading: a database
    server that arbitrates the lease with row locks (PostgreSQL, MySQL/MariaDB), not a
    SQLite file."""
    return make_url(url).get_backend_name() in ("postgresql", *MYSQL)


def new_holder() -> str:
    """This process, as the lease row and run claims name it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def db_now(engine: Engine) -> str:
    """SQL for the database's clock in Unix seconds: the one clock every replica shares."""
    if engine.dialect.name == "postgresql":
        return "extract(epoch from clock_timestamp())"
    if engine.dialect.name == "sqlite":
        return "((julianday('now') - 2440587.5) * 86400.0)"
    return "UNIX_TIMESTAMP(NOW(6))"  # the session is in UTC (store.server_engine)


@dataclass(frozen=True)
class Fence:
    holder: str
    epoch: int


@dataclass(frozen=True)
class LeaseRow:
    holder: str
    epoch: int
    address: str | None
    age: float  # seconds since its last renewal, on the database's clock
    remaining: float  # seconds until it expires, on the database's clock


class Leadership(Protocol):
    holder: str
    lease: float
    lost: asyncio.Event

    async def acquire(self, stop: asyncio.Event) -> Fence | None:
        """Wait until this process leads (None: ``stop`` was set first)."""
        ...

    async def release(self) -> None: ...

    def leading(self) -> bool:
        """Leads now, by this host's reckoning (the claim asks the database)."""
        ...

    def status(self) -> dict[str, Any]: ...


def read_lease(engine: Engine) -> LeaseRow | None:
    now = db_now(engine)
    query = text(
        f"SELECT holder, epoch, address, {now} - renewed_at AS age, "
        f"expires_at - {now} AS remaining FROM scheduler_lease WHERE name = :name"
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"name": LEASE_NAME}).first()
    if row is None:
        return None
    return LeaseRow(row.holder, int(row.epoch), row.address, float(row.age), float(row.remaining))


Take = Callable[[dict[str, Any]], int | None]


def _taker(engine: Engine) -> Take:
    """The lease's one write: renew it (same holder, same epoch), or take it over from an
    expired holder (or, with ``force``, any holder), bumping the epoch; None when someone
    else holds a live lease. Returns the epoch this process now holds."""
    if engine.dialect.name in MYSQL:
        return _mysql_taker(engine)
    now = db_now(engine)
    # The WHERE makes a live lease of someone else untouchable.
    upsert = text(
        "INSERT INTO scheduler_lease AS l "
        "(name, holder, epoch, acquired_at, renewed_at, expires_at, address) "
        f"VALUES (:name, :holder, 1, {now}, {now}, {now} + :ttl, :address) "
        "ON CONFLICT (name) DO UPDATE SET "
        "epoch = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END, "
        "acquired_at = CASE WHEN l.holder = excluded.holder "
        "THEN l.acquired_at ELSE excluded.acquired_at END, "
        "holder = excluded.holder, renewed_at = excluded.renewed_at, "
        "expires_at = excluded.expires_at, address = excluded.address "
        f"WHERE l.holder = excluded.holder OR l.expires_at <= {now} OR :force "
        "RETURNING epoch"
    )

    def take(params: dict[str, Any]) -> int | None:
        with engine.begin() as conn:
            epoch = conn.execute(upsert, params).scalar()
        return None if epoch is None else int(epoch)

    return take


def _mysql_taker(engine: Engine) -> Take:
    """MySQL/MariaDB have no UPSERT ... RETURNING: the row is read ``FOR UPDATE`` (InnoDB's
    exclusive row lock: a claim's shared lock on it waits, as on PostgreSQL) and written in
    the same transaction. The row is first created expired, in a transaction of its own:
    two first takers each holding a gap lock would deadlock on their inserts."""
    now = db_now(engine)
    read = text(
        f"SELECT holder, epoch, expires_at <= {now} AS expired FROM scheduler_lease "
        "WHERE name = :name FOR UPDATE"
    )
    seed = text(
        "INSERT IGNORE INTO scheduler_lease "
        "(name, holder, epoch, acquired_at, renewed_at, expires_at) "
        "VALUES (:name, '', 0, 0, 0, 0)"
    )
    renew = text(
        f"UPDATE scheduler_lease SET renewed_at = {now}, expires_at = {now} + :ttl, "
        "address = :address WHERE name = :name"
    )
    takeover = text(
        f"UPDATE scheduler_lease SET holder = :holder, epoch = epoch + 1, acquired_at = {now}, "
        f"renewed_at = {now}, expires_at = {now} + :ttl, address = :address WHERE name = :name"
    )

    def take(params: dict[str, Any]) -> int | None:
        for _ in range(2):
            with engine.begin() as conn:
                row = conn.execute(read, params).first()
                if row is not None:
                    if row.holder == params["holder"]:
                        conn.execute(renew, params)
                        return int(row.epoch)
                    if not (row.expired or params["force"]):
                        return None
                    conn.execute(takeover, params)
                    return int(row.epoch) + 1
            with engine.begin() as conn:
                conn.execute(seed, params)
        return None

    return take


def _release_sql(engine: Engine) -> Any:
    return text(
        f"UPDATE scheduler_lease SET expires_at = {db_now(engine)} "
        "WHERE name = :name AND holder = :holder"
    )


class LeaseLeadership:
    """A lease row arbitrated by the database (see the module docstring)."""

    force = False

    def __init__(
        self, url: str, *, lease: float = DEFAULT_LEASE, address: str | None = None
    ) -> None:
        self.lease = check_lease(lease)
        self.holder = new_holder()
        self.address = address
        self.lost = asyncio.Event()
        # Its own connection and thread: a renewal never queues behind runs or history.
        # No pre-ping: the lease query itself finds a dead connection, and fails this
        # attempt only (an error invalidates the connection; the next attempt reconnects).
        options: dict[str, Any] = {"pool_size": 1, "max_overflow": 1}
        if url.startswith("sqlite"):
            self.engine = create_engine(url, **options)
        else:  # psycopg and the MySQL drivers all take connect_timeout (seconds)
            timeout = {"connect_timeout": max(1, int(self.lease / 4))}
            if make_url(url).get_backend_name() in MYSQL:
                # A silent partition must not hold the lease thread for good: the MySQL
                # drivers wait for a reply forever unless told.
                timeout |= {"read_timeout": int(self.lease), "write_timeout": int(self.lease)}
            self.engine = server_engine(url, connect_args=timeout, **options)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="lease")
        self._take = _taker(self.engine)
        self.fence: Fence | None = None
        self.deadline = 0.0  # monotonic: stop firing after this
        self.renewed = 0.0  # monotonic: last renewal that the database confirmed
        self.current: LeaseRow | None = None  # the row as a standby last read it
        self.error: str | None = None  # why the last renewal or poll failed
        self._renewer: asyncio.Task[None] | None = None

    # -- queries (in the lease thread) ------------------------------------------------
    def _try_take(self) -> int | None:
        params = {
            "name": LEASE_NAME,
            "holder": self.holder,
            "ttl": self.lease,
            "address": self.address,
            "force": self.force,
        }
        return self._take(params)

    async def _call(self, fn: Any, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(self._thread, fn), timeout)

    # -- the protocol -----------------------------------------------------------------
    async def acquire(self, stop: asyncio.Event) -> Fence | None:
        self.lost.clear()
        poll = min(self.lease / 5, 1.0)
        while not stop.is_set():
            sent = time.monotonic()
            try:
                self.current = await self._call(lambda: read_lease(self.engine), poll * 4)
                epoch = None
                if self.current is None or self.current.remaining <= 0 or self.force:
                    epoch = await self._call(self._try_take, poll * 4)
                self.error = None
            except (SQLAlchemyError, TimeoutError, OSError) as exc:
                self.error = _why(exc)
                epoch = None
            if epoch is not None:
                self._lead(Fence(self.holder, epoch), sent)
                return self.fence
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)
        return None

    def _lead(self, fence: Fence, sent: float) -> None:
        self.fence = fence
        self.renewed = sent
        self.deadline = sent + STOP_FIRING_AT * self.lease
        self.current = None
        self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        assert self.fence is not None
        while True:
            await asyncio.sleep(self.lease / 4)
            if time.monotonic() >= self.deadline:  # frozen (SIGSTOP) past the deadline
                return self._lose("the lease was not renewed in time")
            sent = time.monotonic()
            try:
                epoch = await self._call(self._try_take, max(0.01, self.deadline - sent))
            except (SQLAlchemyError, OSError) as exc:
                self.error = _why(exc)
                log.warning("lease not renewed (%s): retrying", self.error)
                continue
            except TimeoutError:
                return self._lose("the database did not answer the lease renewal in time")
            if epoch != self.fence.epoch:
                return self._lose("another replica holds the lease")
            self.error = None
            self.renewed = sent
            self.deadline = sent + STOP_FIRING_AT * self.lease

    def _lose(self, why: str) -> None:
        log.error("no longer the leader (epoch %s): %s", self.fence and self.fence.epoch, why)
        self.error = why
        self.fence = None
        self.deadline = 0.0
        self.lost.set()

    def leading(self) -> bool:
        return self.fence is not None and time.monotonic() < self.deadline

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if self.fence is not None:
            self.fence = None

            def give_up() -> None:
                with self.engine.begin() as conn:
                    conn.execute(
                        _release_sql(self.engine), {"name": LEASE_NAME, "holder": self.holder}
                    )

            try:
                await self._call(give_up, self.lease / 2)
            except (SQLAlchemyError, TimeoutError, OSError) as exc:
                log.warning("lease not released (%s): it expires on its own", _why(exc))
        self._thread.shutdown(wait=False)
        self.engine.dispose()

    def status(self) -> dict[str, Any]:
        if self.leading():
            assert self.fence is not None
            return {
                "role": "leader",
                "epoch": self.fence.epoch,
                "lease_age": round(time.monotonic() - self.renewed, 3),
                "leader": self.holder,
                "leader_address": self.address,
            }
        row = self.current
        return {
            "role": "standby",
            "epoch": row.epoch if row else None,
            "lease_age": round(row.age, 3) if row else None,
            "leader": row.holder if row and row.remaining > 0 else None,
            "leader_address": row.address if row and row.remaining > 0 else None,
        }


class HostLeadership(LeaseLeadership):
    """One daemon per store on one host (SQLite): the ``flock`` decides; the lease row only
    tells command lines and the status page that this daemon runs. Never lost."""

    force = True

    def __init__(self, url: str, lock: WriterLock, *, address: str | None = None) -> None:
        super().__init__(url, lease=DEFAULT_LEASE, address=address)
        self.lock = lock
        self.held = False

    def hold(self) -> None:
        """Take the host lock, or refuse: another daemon runs for this store here."""
        if not self.lock.acquire():
            raise StoreBusy(
                f"a scheduler daemon (pid {self.lock.holder()}) already runs for this store: "
                "stop it first, or use `scheduler reconcile` to talk to it"
            )
        self.held = True

    async def acquire(self, stop: asyncio.Event) -> Fence | None:
        if self.fence is not None:
            return self.fence
        if not self.held:
            self.hold()
        # A store this daemon cannot write (read-only, locked for good) fails here, before
        # anything starts, with the database's reason.
        other = await self._call(lambda: read_lease(self.engine), 30.0)
        if other is not None and other.remaining > 0 and _alive(other.holder):
            await self.release()
            where = f" at {other.address}" if other.address else ""
            raise StoreBusy(
                f"a scheduler daemon ({other.holder}{where}) already runs for this store: "
                "stop it first; several daemons on one store (replicas) need PostgreSQL or "
                "MariaDB/MySQL"
            )
        epoch = await self._call(self._try_take, 30.0)
        self._lead(Fence(self.holder, int(epoch or 0)), time.monotonic())
        return self.fence

    async def _renew(self) -> None:
        while True:  # best effort: the flock is what counts here
            await asyncio.sleep(self.lease / 4)
            sent = time.monotonic()
            try:
                await self._call(self._try_take, self.lease)
                self.renewed, self.error = sent, None
            except (SQLAlchemyError, TimeoutError, OSError) as exc:
                self.error = _why(exc)

    def leading(self) -> bool:
        return self.fence is not None

    async def release(self) -> None:
        await super().release()
        if self.held:
            self.lock.release()
            self.held = False


def _alive(holder: str) -> bool:
    """Whether the daemon a lease names may still run: on another host, it may; on this
    one, only if its process exists (a daemon killed with kill -9 leaves a live lease)."""
    host, _, rest = holder.partition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(rest.split(":")[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "the database did not answer in time"
    orig = getattr(exc, "orig", None)
    first = (str(orig or exc).strip().splitlines() or [""])[0]
    return f"{type(orig or exc).__name__}: {first}"
