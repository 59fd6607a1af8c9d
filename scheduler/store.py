"""The database: APScheduler's job table plus our own tables, in one SQLAlchemy engine.

APScheduler pickles only a reference to ``scheduler.runner:run_job`` and the job id, so no
stored row depends on user code. Each job's validated spec, fingerprint and source live in
``scheduler_jobs``, written in the same transaction as the pickled job (``apply``).
``scheduler_files`` caches each file's content hash and parsed jobs, so a reconcile re-parses
only files that changed. Callers: apply, reconciler, daemon, the read-only CLI verbs.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    literal,
    make_url,
    select,
)
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from scheduler import schema
from scheduler.mysql_types import MYSQL
from scheduler.plan import Stored
from scheduler.store_errors import explain
from scheduler.storefile import require_existing

JOBS_TABLE = "apscheduler_jobs"
SQLITE_BUSY_TIMEOUT_MS = 5000


class BatchingJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's SQLAlchemy store, but the write-back of one scheduler pass (a new next
    run time per due job, or the removal of a spent one-shot) is one transaction instead of
    one per job: with 1,000 jobs due at once that was 300 ms before the last one started.

    The pass is the span between ``get_due_jobs`` and ``get_next_run_time``, which
    APScheduler calls in that order under its jobstore lock. If the write fails, the next
    pass sees the old rows again; the runner ignores due times it already started."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_pass = False
        self._updates: dict[str, Any] = {}
        self._removals: set[str] = set()

    def get_due_jobs(self, now: datetime) -> list[Any]:
        self._flush()
        jobs: list[Any] = super().get_due_jobs(now)
        self._in_pass = True
        return jobs

    def update_job(self, job: Any) -> None:
        if not self._in_pass:
            return super().update_job(job)  # type: ignore[no-any-return]
        self._updates[job.id] = job

    def remove_job(self, job_id: str) -> None:
        if not self._in_pass:
            return super().remove_job(job_id)  # type: ignore[no-any-return]
        self._updates.pop(job_id, None)
        self._removals.add(job_id)

    def get_next_run_time(self) -> datetime | None:
        self._flush()
        result: datetime | None = super().get_next_run_time()
        return result

    def _flush(self) -> None:
        self._in_pass = False
        updates, removals = list(self._updates.values()), sorted(self._removals)
        self._updates, self._removals = {}, set()
        if not updates and not removals:
            return
        table = self.jobs_t
        with self.engine.begin() as conn:
            if updates:
                conn.execute(
                    table.update().where(table.c.id == bindparam("b_id")),
                    [
                        {
                            "b_id": job.id,
                            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
                            "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
                        }
                        for job in updates
                    ],
                )
            for start in range(0, len(removals), 500):
                conn.execute(table.delete().where(table.c.id.in_(removals[start : start + 500])))


@dataclass(frozen=True)
class CachedFile:
    digest: str
    version: str
    jobs: list[dict[str, Any]]  # {"id", "canonical", "fingerprint", "line", "col"}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" event below issues BEGIN itself,
    # so a write transaction can take the write lock up front (BEGIN IMMEDIATE).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _mysql_session(dbapi_conn: Any, _record: Any) -> None:
    # UTC: the database's clock (``UNIX_TIMESTAMP(NOW(6))``, the lease's) is then never
    # ambiguous in a DST fall-back hour. Strict: a value too long for its column is an
    # error, never silently cut (servers may run without STRICT_TRANS_TABLES).
    cursor = dbapi_conn.cursor()
    cursor.execute(
        "SET time_zone = '+00:00', sql_mode = IF(@@sql_mode = '', 'STRICT_ALL_TABLES', "
        "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'))"
    )
    cursor.close()


def server_engine(url: str, **options: Any) -> Engine:
    """An engine on a database server, set up the same way for every caller (the store,
    the lease)."""
    server, connect_args = server_url(url)
    engine = create_engine(
        server, connect_args={**connect_args, **options.pop("connect_args", {})}, **options
    )
    if engine.dialect.name in MYSQL:
        event.listen(engine, "connect", _mysql_session)
    return engine


def server_url(url: str) -> tuple[URL, dict[str, Any]]:
    """A server database's URL and connect arguments. ``?prepare_threshold=none`` on a
    psycopg URL turns off server-side prepared statements, which PgBouncer in transaction
    mode cannot keep (the URL alone can't say None)."""
    parsed = make_url(url)
    value = parsed.query.get("prepare_threshold")
    if parsed.get_driver_name() != "psycopg" or not isinstance(value, str):
        return parsed, {}
    parsed = parsed.difference_update_query(["prepare_threshold"])
    threshold = None if value.lower() in ("none", "") else int(value)
    return parsed, {"prepare_threshold": threshold}


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return server_engine(url, pool_pre_ping=True)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    except (ArgumentError, NoSuchModuleError, ImportError, OSError, ValueError) as exc:
        raise explain(url, exc) from None
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class Store:
    """One database: APScheduler's job table and the scheduler's own tables.

    ``create=False``: a SQLite file that does not exist is an error (``StoreMissing``), not
    a new empty store; only ``run`` and ``reconcile`` create one."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        if not create:
            require_existing(url)
        self.url = url
        self.engine = make_engine(url)
        self.metadata = schema.metadata
        try:
            schema.ensure_schema(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        # APScheduler builds its own Table object: give it a MetaData of its own, the
        # schema's mirror of that table belongs to the migrations.
        self.jobstore = BatchingJobStore(
            engine=self.engine, metadata=MetaData(), tablename=JOBS_TABLE
        )
        self.aps_jobs: Table = self.jobstore.jobs_t
        self.jobs = schema.jobs
        self.files = schema.files
        self.runs = schema.runs
        self.templates = schema.templates

    def probe_write(self) -> None:
        """Fail now, with the database's own reason, if the store cannot be written (a
        read-only file or directory, a read-only replica): a daemon or a run whose history
        cannot be recorded would otherwise wait for the database forever. The no-op update
        of the schema's version row really writes (SQLite rewrites the page), and is rolled
        back."""
        version = schema.VERSION_TABLE
        with self.engine.connect() as conn, conn.begin() as transaction:
            conn.exec_driver_sql(f"UPDATE {version} SET version_num = version_num")
            transaction.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; on SQLite it takes the write lock at BEGIN."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    def stored_jobs(
        self,
        conn: Connection | None = None,
        job_id: str | None = None,
        *,
        files_only: bool = False,
        specs: bool = True,
    ) -> dict[str, Stored]:
        """Our jobs (or only ``job_id``), their specs still JSON text. ``files_only``: only
        jobs declared in files, not instances of templates (what a reconcile plans over).
        Without ``specs``, each spec is left empty for ``with_specs`` to fill where needed:
        reading 10,000 specs was a tenth of a reconcile that changes one file."""
        query = select(
            self.jobs.c.id,
            self.jobs.c.spec if specs else literal(""),
            self.jobs.c.fingerprint,
            self.jobs.c.source,
            self.jobs.c.operator_paused,
        )
        if job_id is not None:
            query = query.where(self.jobs.c.id == job_id)
        if files_only:
            query = query.where(self.jobs.c.template.is_(None))
        with self._reading(conn) as c:
            return {
                row[0]: Stored(row[0], row[1], row[2], row[3], bool(row[4]))
                for row in c.execute(query)
            }

    def with_specs(
        self, conn: Connection, stored: dict[str, Stored], ids: Iterable[str]
    ) -> dict[str, Stored]:
        """``stored`` with the specs of ``ids`` read (``stored_jobs(specs=False)``)."""
        wanted = sorted(set(ids) & stored.keys())
        table = self.jobs
        for start in range(0, len(wanted), 500):  # stay under bound-parameter limits
            chunk = wanted[start : start + 500]
            query = select(table.c.id, table.c.spec).where(table.c.id.in_(chunk))
            for job_id, spec in conn.execute(query):
                stored[job_id] = replace(stored[job_id], spec=spec)
        return stored

    def summaries(self) -> list[tuple[bool, dict[str, Any]]]:
        """(paused by an operator, summary) of every job: what the daemon counts and checks
        without decoding specs."""
        query = select(self.jobs.c.operator_paused, self.jobs.c.summary)
        with self.engine.connect() as conn:
            return [(bool(r.operator_paused), json.loads(r.summary)) for r in conn.execute(query)]

    def file_cache(self, conn: Connection | None = None) -> dict[str, CachedFile]:
        with self._reading(conn) as c:
            return {
                row.path: CachedFile(row.digest, row.version, json.loads(row.jobs))
                for row in c.execute(select(self.files))
            }

    @contextmanager
    def _reading(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as c:
                yield c

    def close(self) -> None:
        self.engine.dispose()
