"""Bad input changes nothing: an invalid file, an empty or missing jobs directory, or a
job id the store holds for someone else. Through the public command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from scheduler.store import Store
from tests.conftest import RunCli, WriteJobs, simple_job


def stored_ids(db_url: str) -> list[str]:
    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            return sorted(conn.execute(select(store.aps_jobs.c.id)).scalars())
    finally:
        store.close()


def test_one_invalid_file_means_nothing_is_applied(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    assert run_cli("reconcile").exit_code == 0
    write_jobs(
        "a.yaml", simple_job("a", cron="0 10 * * *") + simple_job("b").removeprefix("jobs:\n")
    )
    bad = write_jobs("bad.yaml", simple_job("c", cron="0 9 * * FRI#3"))
    before = run_cli("jobs", "-o", "json").stdout
    result = run_cli("reconcile")
    assert result.exit_code == 1
    validate = run_cli("validate")
    assert f"{bad}:4:13: cron: " in validate.stdout
    assert validate.stdout.strip() in result.output  # the same lines as validate
    assert run_cli("jobs", "-o", "json").stdout == before
    assert stored_ids(db_url) == ["a"]


def test_empty_or_missing_jobs_dir_is_refused_while_the_store_holds_jobs(
    run_cli: RunCli, write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    path = write_jobs("a.yaml", simple_job("a"))
    assert run_cli("reconcile").exit_code == 0
    path.unlink()
    empty = run_cli("reconcile")
    assert empty.exit_code == 1
    assert "declares no job, but the store holds 1 job(s)" in empty.stderr
    assert "--allow-empty" in empty.stderr
    jobs_dir.rmdir()
    missing = run_cli("reconcile")
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr
    assert stored_ids(db_url) == ["a"]
    jobs_dir.mkdir()
    allowed = run_cli("reconcile", "--allow-empty", "-o", "json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["remove"] == ["a"]
    assert stored_ids(db_url) == []


def test_an_empty_dir_with_an_empty_store_is_fine(run_cli: RunCli) -> None:
    result = run_cli("reconcile")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No changes: 0 job(s) up to date."


def test_jobs_this_tool_did_not_create_are_never_touched(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    store = Store(db_url)
    other = BackgroundScheduler(jobstores={"default": store.jobstore}, timezone=UTC)
    other.start(paused=True)
    other.add_job(
        print, IntervalTrigger(hours=1), id="someone-elses", next_run_time=datetime.now(UTC)
    )
    other.shutdown()
    write_jobs("a.yaml", simple_job("a"))
    assert run_cli("reconcile").exit_code == 0
    assert stored_ids(db_url) == ["a", "someone-elses"]
    write_jobs("a.yaml", simple_job("someone-elses"))
    clash = run_cli("reconcile")
    assert clash.exit_code == 1
    assert "already holds a job 'someone-elses' that this tool did not create" in clash.stderr
    assert stored_ids(db_url) == ["a", "someone-elses"]  # the whole apply rolled back
