"""Jobs are checked while their file is read (so a large file never holds all its raw
jobs at once); `defaults:` written after `jobs:` must still apply to every job, and a
problem must still be reported once, at its line."""

from __future__ import annotations

from pathlib import Path

from scheduler.loader import load_paths
from tests.conftest import RunCli, WriteJobs

JOBS = """\
jobs:
  a:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: ["true"]}
  b:
    schedule: {interval: 1h}
    run: {type: command, command: ["true"]}
    timeout: 5m
"""
DEFAULTS = "defaults:\n  timezone: Europe/Berlin\n  timeout: 10m\n"


def test_defaults_after_jobs_apply_to_every_job(write_jobs: WriteJobs, jobs_dir: Path) -> None:
    write_jobs("late.yaml", JOBS + DEFAULTS)
    write_jobs("early.yaml", (DEFAULTS + JOBS).replace("  a:", "  c:").replace("  b:", "  d:"))
    jobs = load_paths([jobs_dir]).jobs
    got = {
        job_id: (job.canonical["schedule"]["timezone"], job.canonical["timeout"])
        for job_id, job in jobs.items()
    }
    assert got == {
        "a": ("Europe/Berlin", "10m"),
        "b": ("Europe/Berlin", "5m"),
        "c": ("Europe/Berlin", "10m"),
        "d": ("Europe/Berlin", "5m"),
    }


def test_a_problem_with_late_defaults_is_reported_once(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    path = write_jobs("late.yaml", JOBS.replace("timeout: 5m", "timeout: soon") + DEFAULTS)
    result = run_cli("validate")
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if line.startswith(str(path))] == [
        f"{path}:8:14: timeout: expected a duration like 90s, 5m, 1h30m or 1d "
        "(units w d h m s, largest first), got 'soon'"
    ]
