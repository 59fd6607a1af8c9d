"""A store that cannot be used is one line, not an SQLAlchemy traceback: it names the
database (password masked), the cause and what to do, exit 1, from every verb and from the
daemon at start-up. Regression for issue 13.6 and 16.16: a read-only store, a wrong URL
and an unreachable server each printed a raw traceback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scheduler.cli import cli
from tests.conftest import RunCli, WriteJobs, simple_job
from tests.daemon_helpers import daemon_env, scheduler_argv

VERBS = (("jobs",), ("history",), ("plan",), ("reconcile",), ("pause", "a"), ("trigger", "a"))

BAD_URLS = {
    "malformed": (
        "nonsense",
        "error: cannot use the store nonsense: not a database URL: give one with --db or "
        "SCHEDULER_DB, e.g. sqlite:///",
    ),
    "unknown kind": (
        "foo://host/db",
        "error: cannot use the store foo://host/db: unknown database kind 'foo': give a URL",
    ),
    "unreachable server": (
        "postgresql+psycopg://scheduler:hunter2@127.0.0.1:1/jobs",
        "error: cannot use the store postgresql+psycopg://scheduler:***@127.0.0.1:1/jobs: "
        'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection '
        "refused: check that the database server runs and accepts connections",
    ),
}


def daemon_start(
    jobs_dir: Path, url: str, runtime_dir: Path, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        scheduler_argv(jobs_dir, url, "run"),
        env=daemon_env(runtime_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def invoke(jobs_dir: Path, url: str, *args: str) -> Result:
    """A verb in this process, against ``url``."""
    return CliRunner().invoke(cli, ["--jobs-dir", str(jobs_dir), "--db", url, *args])


def assert_one_line(output: str, expected: str) -> None:
    assert "Traceback" not in output and "hunter2" not in output, output
    assert output.startswith(expected), output
    assert output.count("\n") == 1, output


@pytest.mark.parametrize("case", BAD_URLS, ids=list(BAD_URLS))
def test_a_bad_url_is_one_line_from_every_verb_and_the_daemon(
    case: str, jobs_dir: Path, runtime_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    url, expected = BAD_URLS[case]
    for verb in VERBS:
        result = invoke(jobs_dir, url, *verb)
        assert result.exit_code == 1, (verb, result.output)
        assert_one_line(result.output, expected)
    started = daemon_start(jobs_dir, url, runtime_dir)
    assert started.returncode == 1
    assert_one_line(started.stderr, expected)


MakeReadOnly = Callable[[Path], None]


@pytest.fixture
def make_read_only() -> Iterator[MakeReadOnly]:
    """Read-only even for root: ``chattr +i`` as root (undone at the end), else chmod."""
    changed: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(path)], check=True)
            changed.append(path)
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)

    yield make
    for path in reversed(changed):
        subprocess.run(["chattr", "-i", str(path)], check=True)


READ_ONLY = (
    "attempt to write a readonly database: make the database writable for this user (for "
    "SQLite: the file and its directory), or point --db or SCHEDULER_DB at a writable store"
)


def test_a_read_only_store_file(
    run_cli: RunCli,
    write_jobs: WriteJobs,
    jobs_dir: Path,
    db_url: str,
    tmp_path: Path,
    runtime_dir: Path,
    make_read_only: MakeReadOnly,
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    assert run_cli("reconcile").exit_code == 0
    make_read_only(tmp_path / "scheduler.db")
    expected = f"error: cannot use the store {db_url}: {READ_ONLY}"

    started = daemon_start(jobs_dir, db_url, runtime_dir)
    assert started.returncode == 1
    assert_one_line(started.stderr, expected)
    result = run_cli("pause", "a")
    assert result.exit_code == 1
    assert_one_line(result.output, expected)
    # trigger used to wait forever for a history write that could never happen; now only
    # a daemon runs jobs, and none can run on this store
    result = run_cli("trigger", "a")
    assert result.exit_code == 1
    assert_one_line(result.output, "error: no scheduler daemon runs for this store")
    assert run_cli("jobs").exit_code == 0  # reading still works
    assert run_cli("history").output == "no runs recorded yet\n"


def test_a_read_only_store_directory(
    write_jobs: WriteJobs,
    jobs_dir: Path,
    tmp_path: Path,
    runtime_dir: Path,
    make_read_only: MakeReadOnly,
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'new.db'}"
    make_read_only(data)
    expected = f"error: cannot use the store {url}: unable to open database file: make the"
    for verb in VERBS:
        result = invoke(jobs_dir, url, *verb)
        if verb == ("plan",):  # plans against an empty store, creating nothing
            assert result.exit_code == 0, result.output
        elif verb == ("reconcile",):  # the one verb here that creates a store
            assert result.exit_code == 1, verb
            assert_one_line(result.output, expected)
        else:
            assert result.exit_code == 1, verb
            assert_one_line(result.output, f"error: no store at {data / 'new.db'}: ")
    assert not (data / "new.db").exists()
    started = daemon_start(jobs_dir, url, runtime_dir)
    assert started.returncode == 1
    assert_one_line(started.stderr, expected)
    nested = f"sqlite:///{data / 'sub' / 'new.db'}"
    result = daemon_start(jobs_dir, nested, runtime_dir)
    assert result.returncode == 1
    assert_one_line(result.stderr, f"error: cannot use the store {nested}: ")
    assert f"({data / 'sub'}): create the directory and make it writable" in result.stderr
