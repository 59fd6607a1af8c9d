"""The store's tables, as one module-level ``metadata``: what the code reads and writes, and
Alembic's target. The schema is created and upgraded only by the migrations shipped in
``scheduler/migrations`` (``ensure_schema``), under a database lock, so any number of daemons
and command lines opening an empty database at once do not race. Callers: ``store.Store``.
"""

from __future__ import annotations

import logging

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Unicode,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects import mysql

from scheduler.errors import SchedulerError
from scheduler.mysql_types import MYSQL, MYSQL_PATH_CHARS, MYSQL_TABLE, long_text, seconds

# Every revision this release knows, oldest first; the last is the one it writes.
# (tests/test_store_schema_is_migrated.py checks it against scheduler/migrations/versions.)
REVISIONS = ("0001", "0002", "0003", "0004")
HEAD = REVISIONS[-1]
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key for creating/upgrading the schema: any constant, ours alone.
PG_SCHEMA_LOCK = 0x5C4E_D01E
MYSQL_SCHEMA_LOCK = "declarative_scheduler_schema"

metadata = MetaData()

# A mirror of APScheduler's own table (it builds its Table object itself; this one is for
# the migrations and for reading).
aps_jobs = Table(
    "apscheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column(
        "next_run_time",
        Float(25).with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL),
        index=True,
    ),
    Column("job_state", LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL), nullable=False),
    **MYSQL_TABLE,
)

jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("spec", long_text(), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("source", Unicode(1024), nullable=False),
    Column("operator_paused", Boolean, nullable=False, default=False),
    Column("updated_at", seconds(), nullable=False),
    # Derived from the spec when it is written, so listing 10,000 jobs decodes none.
    Column("summary", long_text(), nullable=False, default="{}"),
    # 0004: NULL for a job declared in a file; an instance's template and parameters (JSON).
    Column("template", Unicode(191), nullable=True),
    Column("params", long_text(), nullable=True),
    Index("ix_scheduler_jobs_template", "template"),
    **MYSQL_TABLE,
)

# 0004: each template the files declare, as last reconciled (``templates.DeclaredTemplate``):
# what creating an instance needs, readable by any process that holds the store.
templates = Table(
    "scheduler_templates",
    metadata,
    Column("name", Unicode(191), primary_key=True),
    Column("spec", long_text(), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("source", Unicode(1024), nullable=False),
    Column("updated_at", seconds(), nullable=False),
    **MYSQL_TABLE,
)

files = Table(
    "scheduler_files",
    metadata,
    Column(
        "path",
        Unicode(1024).with_variant(mysql.VARCHAR(MYSQL_PATH_CHARS), *MYSQL),
        primary_key=True,
    ),
    Column("digest", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("jobs", long_text(), nullable=False),
    **MYSQL_TABLE,
)

runs = Table(
    "scheduler_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("job_id", Unicode(191), nullable=False),
    Column("scheduled_time", seconds(), nullable=True),
    Column("started_at", seconds(), nullable=False),
    Column("finished_at", seconds(), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("exit_code", Integer, nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("output_tail", long_text(), nullable=True),
    Column("error", long_text(), nullable=True),
    Column("task_id", String(255), nullable=True),  # the run's id in Celery (0002)
    Column("worker", Unicode(255), nullable=True),  # the host that ran it there (0002)
    # 0003: a fenced run start. ``claim`` is "job@scheduled#attempt", unique, so a second
    # start of the same try fails in the database; ``epoch`` is the leader's lease epoch.
    # Both are NULL on rows written before 0003 and on skipped/missed records.
    Column("claim", Unicode(255), nullable=True),
    Column("epoch", BigInteger, nullable=True),
    Index("ix_scheduler_runs_job_started", "job_id", "started_at"),
    Index("ix_scheduler_runs_started", "started_at"),
    Index("ux_scheduler_runs_claim", "claim", unique=True),
    **MYSQL_TABLE,
)

# 0003: who leads. One row per lease name; times are the database's clock (seconds).
lease = Table(
    "scheduler_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", Unicode(255), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("acquired_at", seconds(), nullable=False),
    Column("renewed_at", seconds(), nullable=False),
    Column("expires_at", seconds(), nullable=False),
    Column("address", Unicode(255), nullable=True),
    **MYSQL_TABLE,
)

# 0003: a counter bumped by every write that a running daemon must notice (pause, resume,
# reconcile from elsewhere): the daemon compares it each pass instead of trusting only its
# own writes.
state = Table(
    "scheduler_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
    **MYSQL_TABLE,
)

# 0003: operator requests recorded in the store for the leader to carry out (a `trigger`
# from a command line that reaches no daemon): the leader runs them, never the CLI.
requests = Table(
    "scheduler_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("op", String(16), nullable=False),
    Column("job_id", Unicode(191), nullable=False),
    Column("args", long_text(), nullable=True),  # JSON: the rest of the request
    Column("requested_at", seconds(), nullable=False),
    Column("taken_at", seconds(), nullable=True),
    Column("result", long_text(), nullable=True),
    **MYSQL_TABLE,
)


class StoreTooNew(SchedulerError):
    """The store was written by a newer release (a schema revision this one does not know)."""

    def __init__(self, url: str, revision: str) -> None:
        super().__init__(
            f"the store {url} is at schema revision {revision}, newer than this scheduler "
            f"knows (up to {HEAD}): upgrade declarative-scheduler to the release that wrote it"
        )


def current_revision(conn: Connection) -> str | None:
    """The store's schema revision; None for an empty store or one from before Alembic."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(select(text("version_num")).select_from(text(VERSION_TABLE))).all()
    return str(rows[0][0]) if rows else None


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema to ``HEAD``; refuse a store newer than this code.

    A store at ``HEAD`` costs one read. Otherwise the upgrade runs under a database-wide
    lock (PostgreSQL: a transaction advisory lock, so it also holds behind PgBouncer in
    transaction mode; SQLite: its write lock, taken at BEGIN), re-reading the revision
    once the lock is held: a daemon that waited finds the work done."""
    url = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision == HEAD:
        return
    if revision is not None and revision not in REVISIONS:
        raise StoreTooNew(url, revision)
    backend = engine.dialect.name
    with engine.connect() as conn:
        if backend in MYSQL:  # DDL commits on its own there: a session lock instead
            got = conn.execute(text("SELECT GET_LOCK(:n, 60)"), {"n": MYSQL_SCHEMA_LOCK})
            if got.scalar() != 1:
                raise SchedulerError(
                    f"the store {url} is being created or upgraded by another process that "
                    "has held its schema lock for 60 s: let it finish, then start again"
                )
            conn.commit()  # end the autobegun transaction; the lock belongs to the session
        conn = conn.execution_options(sqlite_immediate=True)
        try:
            with conn.begin():
                if backend == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_SCHEMA_LOCK})
                revision = current_revision(conn)
                if revision is not None and revision not in REVISIONS:
                    raise StoreTooNew(url, revision)
                if revision is None and backend != "mysql" and _empty(conn):
                    create_fresh(conn)
                elif revision != HEAD:
                    _upgrade(conn)
        finally:
            if backend in MYSQL:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": MYSQL_SCHEMA_LOCK})


def _empty(conn: Connection) -> bool:
    return not inspect(conn).get_table_names()


def create_fresh(conn: Connection) -> None:
    """An empty database gets the tables as the migrations would leave them, stamped at
    ``HEAD``, without importing Alembic (a fifth of a first reconcile of 10,000 jobs).
    tests/test_a_fresh_store_matches_the_migrated_one.py pins that the two agree."""
    metadata.create_all(conn)
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD))


def _upgrade(conn: Connection) -> None:
    # Alembic only when there is work: importing it costs a command line ~0.3 s.
    from alembic import command
    from alembic.config import Config

    # Alembic announces each plugin it sets up at INFO: keep its "Running upgrade" lines only.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    config = Config()
    config.set_main_option("script_location", "scheduler:migrations")
    config.attributes["connection"] = conn
    command.upgrade(config, HEAD)
