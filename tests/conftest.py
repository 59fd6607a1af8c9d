"""Shared fixtures: a jobs directory on tmp_path, a job-file writer, and the CLI.

The suite runs in parallel (``scripts/test`` passes ``-n``: pytest-xdist worker processes,
each taking whole tests in no fixed order, all at once on one machine). A test stays
xdist-safe when nothing it writes or listens on is shared with a test running beside it:
files go under ``tmp_path`` (or ``tempfile.mkdtemp()`` where a Unix socket needs a short
path), servers listen on port 0 (or ``_free_port()``) and report the port they got, the
server stores come from ``store_url``/``pg_database``/``mysql_database`` (per worker/test),
Redis and RabbitMQ names carry a random token (``tests/celery_helpers.py``) and a test never
flushes a Redis database or deletes what it did not create. ``worker_name()`` is the xdist
worker's id, for anything else that must be told apart. Parallel load makes a machine slower
at random: wait for the condition a test needs (``wait_for``), never for a fixed time. Tests
that must share one costly process (a module fixture) can be kept on one worker with
``pytest.mark.xdist_group`` (``scripts/test`` runs ``--dist loadgroup``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scheduler.cli import cli
from tests.api_helpers import ApiDaemon, StartApi
from tests.daemon_helpers import DaemonProcess

WriteJobs = Callable[..., Path]
StartDaemon = Callable[..., DaemonProcess]
RunCli = Callable[..., Result]


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.d"
    path.mkdir()
    return path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'scheduler.db'}"


@pytest.fixture
def write_jobs(jobs_dir: Path) -> WriteJobs:
    """write_jobs("a.yaml", '''yaml text''') -> path; the text is dedented."""

    def write(name: str, text: str) -> Path:
        path = jobs_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def run_cli(jobs_dir: Path, db_url: str) -> RunCli:
    """run_cli("validate", ...) -> click Result, against this test's jobs dir and store."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            cli, ["--jobs-dir", str(jobs_dir), "--db", db_url, *args], catch_exceptions=False
        )

    return run


def simple_job(job_id: str = "hello", cron: str = "0 9 * * *", extra: str = "") -> str:
    """A valid job file with one job; ``extra`` lines are added to the job (4-space indent)."""
    body = textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") + "\n" if extra else ""
    return (
        "jobs:\n"
        f"  {job_id}:\n"
        "    schedule:\n"
        f'      cron: "{cron}"\n'
        "    run:\n"
        "      type: command\n"
        '      command: ["true"]\n'
        f"{body}"
    )


PG_URL_ENV = "SCHEDULER_TEST_PG_URL"


def worker_name() -> str:
    """This pytest-xdist worker's id (``gw0``, ``gw1``...), ``main`` when run without -n."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session", autouse=True)
def _private_runtime_dir() -> Iterator[None]:
    """Each worker gets its own ``$XDG_RUNTIME_DIR``: a daemon's lock and socket, and the
    command line looking for them, never meet another worker's (tests that start a daemon
    give it a directory of its own besides: ``runtime_dir``)."""
    path = tempfile.mkdtemp(prefix=f"sd-{worker_name()}-")
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = path
    yield
    if saved is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = saved
    shutil.rmtree(path, ignore_errors=True)


def _pg_base() -> str:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV} (set by .ci/run)")
    return url


def _ensure_pg_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist yet."""
    from sqlalchemy import create_engine, make_url, text

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        ).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def worker_pg_url() -> str:
    """$SCHEDULER_TEST_PG_URL's database under xdist gets the worker's id appended
    (``test_gw0``...; created if missing): the store tests drop every table in it."""
    from sqlalchemy import make_url

    base = _pg_base()
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return base
    parsed = make_url(base)
    url = parsed.set(database=f"{parsed.database}_{worker_name()}")
    rendered = url.render_as_string(hide_password=False)
    _ensure_pg_database(rendered)
    return rendered


def _reset_pg(url: str) -> None:
    """Drop every table (the store's, Alembic's version table, whatever a migration adds)."""
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        tables = MetaData()
        tables.reflect(conn)
        tables.drop_all(conn)
    engine.dispose()


def _databases_of_this_test(
    request: pytest.FixtureRequest, base: str, admin: Any, quote: str, create: str, drop: str
) -> Iterator[Callable[[], str]]:
    """The body of ``pg_database``/``mysql_database``: databases named <base database>_
    <worker>_<hash of the test id>_<test>_<n> (unique across xdist workers and sessions
    sharing the server), made on demand and dropped at the end. ``create``/``drop`` are the
    statements' text around the quoted name."""
    from sqlalchemy import make_url, text

    test = "".join(c if c.isalnum() else "_" for c in request.node.name.lower())
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
    stem = f"{make_url(base).database or 'test'}_{worker_name()}_{digest}_{test}"
    made: list[str] = []

    def drop_one(conn: Any, name: str) -> None:
        conn.execute(text(drop.format(name=f"{quote}{name}{quote}")))

    def make() -> str:
        name = f"{stem[:58]}_{len(made)}"  # 63/64 characters at most
        with admin.begin() as conn:
            drop_one(conn, name)
            conn.execute(text(create.format(name=f"{quote}{name}{quote}")))
        made.append(name)
        return make_url(base).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.begin() as conn:
        for name in made:
            drop_one(conn, name)
    admin.dispose()


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """pg_database() -> the URL of a new, empty PostgreSQL database of this test's own,
    dropped at the end (``_databases_of_this_test``)."""
    from sqlalchemy import create_engine, make_url

    base = _pg_base()
    admin = create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
    yield from _databases_of_this_test(
        request,
        base,
        admin,
        '"',
        "CREATE DATABASE {name}",
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)",
    )


MYSQL_URL_ENV = "SCHEDULER_TEST_MYSQL_URL"


@pytest.fixture
def mysql_database(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """mysql_database() -> the URL of a new, empty MariaDB/MySQL database of this test's own,
    dropped at the end (``_databases_of_this_test``)."""
    from sqlalchemy import create_engine, make_url

    base = os.environ.get(MYSQL_URL_ENV)
    if not base:
        pytest.skip(f"MariaDB tests need {MYSQL_URL_ENV} (scripts/test sets it)")
    admin = create_engine(make_url(base).set(database=""))
    yield from _databases_of_this_test(
        request,
        base,
        admin,
        "`",
        "CREATE DATABASE {name} CHARACTER SET utf8mb4",
        "DROP DATABASE IF EXISTS {name}",
    )


@pytest.fixture(params=["postgresql", "mysql"])
def server_database(request: pytest.FixtureRequest) -> Callable[[], str]:
    """server_database() -> a new, empty database of this test's own, on PostgreSQL and on
    MariaDB: the servers replicas can share."""
    fixture = "pg_database" if request.param == "postgresql" else "mysql_database"
    create: Callable[[], str] = request.getfixturevalue(fixture)
    return create


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test against a real SQLite file, the PostgreSQL server of this machine
    (its URL from $SCHEDULER_TEST_PG_URL, .ci/run sets it; one database per xdist worker)
    and its MariaDB server (a database of the test's own, see ``mysql_database``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if request.param == "mysql":
        yield request.getfixturevalue("mysql_database")()
        return
    url: str = request.getfixturevalue("worker_pg_url")
    _reset_pg(url)
    yield url
    _reset_pg(url)


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A short per-test ``$XDG_RUNTIME_DIR``: the lock and the Unix socket (< 100 chars)."""
    path = Path(tempfile.mkdtemp(prefix="sd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_daemon(
    jobs_dir: Path, db_url: str, runtime_dir: Path, tmp_path: Path
) -> Iterator[StartDaemon]:
    """start_daemon(*run_options, env=..., ready=True) -> a running daemon on this test's
    jobs dir and store; every daemon started is stopped (SIGTERM, then SIGKILL) at the end."""
    started: list[DaemonProcess] = []

    def start(
        *extra: str,
        env: dict[str, str] | None = None,
        ready: bool = True,
        kind: type[DaemonProcess] = DaemonProcess,
    ) -> DaemonProcess:
        log = tmp_path / f"daemon-{len(started)}.log"
        daemon = kind(jobs_dir, db_url, runtime_dir, log, extra, env)
        started.append(daemon)
        if ready:
            daemon.wait_ready()
        return daemon

    yield start
    hung = []
    for daemon in started:
        try:
            daemon.stop(signal.SIGTERM)
        except AssertionError as exc:
            hung.append(str(exc))
        finally:
            daemon.kill()
    assert not hung, "\n".join(hung)


@pytest.fixture
def start_api(start_daemon: StartDaemon) -> StartApi:
    """start_api(*run_options, env={...}) -> a daemon serving its API on 127.0.0.1:0."""

    def start(*extra: str, env: dict[str, str] | None = None) -> ApiDaemon:
        daemon = start_daemon("--http", "127.0.0.1:0", *extra, env=env, kind=ApiDaemon)
        assert isinstance(daemon, ApiDaemon)
        return daemon

    return start
