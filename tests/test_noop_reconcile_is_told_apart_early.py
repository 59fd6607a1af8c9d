"""A reconcile that would change nothing is answered before the job-file models are
imported (``scheduler.unchanged``), and anything short of "nothing changed" still goes
through the full reconcile: a job removed from the store behind its back, a file removed,
a file whose bytes changed while its jobs did not."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from scheduler import handlers, unchanged
from scheduler.reconciler import cache_version
from tests.conftest import RunCli, WriteJobs, simple_job


def test_the_early_check_knows_the_handler_types_the_registry_has() -> None:
    names = tuple(sorted(h.name for h in handlers.builtin_handlers()))
    assert names == unchanged.BUILTIN_TYPES
    assert unchanged.ENTRY_POINT_GROUP == handlers.ENTRY_POINT_GROUP
    assert unchanged.builtin_cache_key() == cache_version()  # no plugin installed here


REPORT_IMPORTS = """
import json, sys
from scheduler.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps([m for m in ("pydantic", "scheduler.spec", "scheduler.handlers")
                  if m in sys.modules]))
"""


def test_a_noop_reconcile_says_so_without_the_job_file_models(
    write_jobs: WriteJobs, jobs_dir: Path, db_url: str, runtime_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    write_jobs("b.yaml", simple_job("b", cron="@hourly"))
    args = ["--jobs-dir", str(jobs_dir), "--db", db_url, "reconcile"]
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)}

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", REPORT_IMPORTS, *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        return done.stdout.splitlines()

    first = run()
    assert first[-2] == "Applied: 2 added, 0 updated, 0 removed, 0 unchanged."
    assert json.loads(first[-1]) == ["pydantic", "scheduler.spec", "scheduler.handlers"]
    again = run()
    assert again == ["No changes: 2 job(s) up to date.", "[]"]


def test_a_job_removed_from_the_store_behind_its_back_is_added_again(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    write_jobs("b.yaml", simple_job("b"))
    assert run_cli("reconcile").exit_code == 0
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("DELETE FROM scheduler_jobs WHERE id = 'b'")
        conn.execute("DELETE FROM apscheduler_jobs WHERE id = 'b'")
    result = run_cli("reconcile", "-o", "json")
    assert json.loads(result.stdout)["add"] == ["b"]
    assert [j["id"] for j in json.loads(run_cli("jobs", "-o", "json").stdout)] == ["a", "b"]


def test_a_removed_file_removes_its_jobs(
    run_cli: RunCli, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    write_jobs("b.yaml", simple_job("b"))
    assert run_cli("reconcile").exit_code == 0
    (jobs_dir / "b.yaml").unlink()
    assert run_cli("reconcile").stdout.endswith(
        "Applied: 0 added, 0 updated, 1 removed, 1 unchanged.\n"
    )
    assert run_cli("reconcile").stdout == "No changes: 1 job(s) up to date.\n"


def test_a_file_whose_bytes_changed_but_not_its_jobs_refreshes_the_parse_cache(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    assert run_cli("reconcile").exit_code == 0
    write_jobs("a.yaml", simple_job("a") + "# a comment\n")
    assert run_cli("reconcile").stdout == "Applied: 0 added, 0 updated, 0 removed, 1 unchanged.\n"
    assert run_cli("reconcile").stdout == "No changes: 1 job(s) up to date.\n"
