"""The store's schema is created and upgraded by Alembic migrations, under a database lock:
a store written by the release before Alembic (0.1.0, commit 42a9344, kept in
tests/fixtures) upgrades in place; a store newer than the code is refused; many processes
opening one empty database at once all succeed (issue 8.5: all but one died with
``UniqueViolation ... pg_type_typname_nsp_index``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from scheduler import schema
from scheduler.store import Store
from tests.daemon_helpers import daemon_env, scheduler_argv

FIXTURES = Path(__file__).parent / "fixtures"
LEGACY = "store-0.1.0-42a9344"


def _cli(
    jobs_dir: Path, url: str, runtime_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    # From the jobs dir's parent: the fixture's sources are relative (jobs.d/legacy.yaml).
    return subprocess.run(
        scheduler_argv(Path(jobs_dir.name), url, *args),
        cwd=jobs_dir.parent,
        env=daemon_env(runtime_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _legacy_jobs_dir(tmp_path: Path) -> Path:
    # The fixture's jobs were reconciled from jobs.d/legacy.yaml, relative to the store.
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    shutil.copy(FIXTURES / f"{LEGACY}-jobs.yaml", jobs / "legacy.yaml")
    return jobs


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return schema.current_revision(conn)
    finally:
        engine.dispose()


def test_the_revisions_the_code_knows_are_the_shipped_migrations() -> None:
    config = Config()
    config.set_main_option("script_location", "scheduler:migrations")
    script = ScriptDirectory.from_config(config)
    shipped = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert tuple(shipped) == schema.REVISIONS
    assert script.get_current_head() == schema.HEAD


def test_an_empty_store_gets_every_table_at_the_newest_revision(store_url: str) -> None:
    Store(store_url).close()
    assert _revision(store_url) == schema.HEAD
    engine = create_engine(store_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(schema.metadata.tables) <= tables


def _assert_upgraded(jobs_dir: Path, url: str, runtime_dir: Path, expected: str) -> None:
    for verb in ("jobs", "history"):
        done = _cli(jobs_dir, url, runtime_dir, verb, "--output", "json")
        assert done.returncode == 0, done.stderr
        want = json.loads((FIXTURES / f"{expected}-{verb}.json").read_text())
        if verb == "jobs":  # 0004: every job of that release was declared in a file
            want = [{**job, "origin": "file"} for job in want]
        assert json.loads(done.stdout) == want, verb
    assert _revision(url) == schema.HEAD
    # Still a working store: the paused job resumes, and the files reconcile to no change.
    done = _cli(jobs_dir, url, runtime_dir, "resume", "paused-one")
    assert done.returncode == 0, done.stderr
    done = _cli(jobs_dir, url, runtime_dir, "reconcile")
    assert done.returncode == 0, done.stderr
    # No job changes; the parse cache is rewritten because it is keyed by the run types,
    # and 0.1.0 had no `celery`.
    assert done.stdout == "Applied: 0 added, 0 updated, 0 removed, 3 unchanged.\n"
    # 0004: templates and their instances live beside the old jobs.
    (jobs_dir / "templates.yaml").write_text(
        "templates:\n  greet:\n    params: {who: {type: string, required: true}}\n"
        '    run: {type: command, command: [echo, "${params.who}"]}\n'
    )
    assert _cli(jobs_dir, url, runtime_dir, "reconcile").returncode == 0
    done = _cli(jobs_dir, url, runtime_dir, "create", "greet", "-p", "who=x", "--in", "1h")
    assert done.returncode == 0, done.stderr
    done = _cli(jobs_dir, url, runtime_dir, "jobs", "-o", "json")
    listed = {job["id"]: job["origin"] for job in json.loads(done.stdout)}
    assert sorted(listed.values()) == ["file", "file", "file", "template"], listed


def test_a_sqlite_store_of_the_release_before_upgrades_in_place(
    tmp_path: Path, runtime_dir: Path
) -> None:
    jobs_dir = _legacy_jobs_dir(tmp_path)
    db = tmp_path / "legacy.db"
    shutil.copy(FIXTURES / f"{LEGACY}.db", db)
    _assert_upgraded(jobs_dir, f"sqlite:///{db}", runtime_dir, LEGACY)


def test_a_postgresql_store_of_the_release_before_upgrades_in_place(
    tmp_path: Path, runtime_dir: Path, pg_database: Callable[[], str]
) -> None:
    url = pg_database()
    dump = (FIXTURES / f"{LEGACY}-postgresql.sql").read_text()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(dump)
    engine.dispose()
    assert _revision(url) is None
    jobs_dir = _legacy_jobs_dir(tmp_path)
    _assert_upgraded(jobs_dir, url, runtime_dir, f"{LEGACY}-postgresql")


def test_a_store_newer_than_the_code_is_refused_with_what_to_do(
    store_url: str, jobs_dir: Path, runtime_dir: Path
) -> None:
    Store(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    done = _cli(jobs_dir, store_url, runtime_dir, "jobs")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "schema revision 9999, newer than this scheduler knows" in done.stderr
    assert "upgrade declarative-scheduler" in done.stderr


def test_many_processes_opening_one_empty_server_store_at_once_all_succeed(
    jobs_dir: Path, runtime_dir: Path, server_database: Callable[[], str]
) -> None:
    """Regression (issue 8.5): the tables were created by every process at once. MariaDB
    too: its DDL commits on its own, so only its schema lock (GET_LOCK) orders them."""
    url = server_database()
    script = "import sys; from scheduler.store import Store; Store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url],
            env={**os.environ, **daemon_env(runtime_dir)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=50)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, "\n".join(errors)
    assert _revision(url) == schema.HEAD
