"""Many files are parsed by child processes, which also build the rows of the jobs they
read (next run time, APScheduler's state, what `scheduler jobs` shows) so that a cold
reconcile only writes them. What ends up in the store must be exactly what parsing and
building in one process gives: same listing, same next run times, same first runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scheduler.parsepool import PARALLEL_MIN_FILES
from scheduler.reconciler import reconcile
from scheduler.store import Store
from tests.daemon_helpers import jobs

# 00:30 UTC on the day Berlin springs forward (02:00 -> 03:00 local).
NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def job_file(n: int) -> str:
    return (
        "defaults:\n"
        "  timezone: Europe/Berlin\n"
        "jobs:\n"
        f"  berlin-{n}:\n"
        f"    description: nine o'clock, file {n}\n"
        '    schedule: {cron: "0 9 * * *"}\n'
        "    run: {type: command, command: [echo, berlin]}\n"
        "    expect: {succeeds_within: 26h}\n"
        f"  in-the-gap-{n}:\n"
        '    schedule: {cron: "30 2 * * *"}\n'
        "    run: {type: command, command: [echo, gap]}\n"
        "    concurrency: forbid\n"
        f"  every-{n}h-{n}:\n"
        f"    schedule: {{interval: {n + 1}h}}\n"
        "    run: {type: command, command: [echo, interval]}\n"
        "    misfire_grace: 5m\n"
        f"  paused-{n}:\n"
        '    schedule: {cron: "*/5 * * * *"}\n'
        "    run: {type: command, command: [echo, paused]}\n"
        "    paused: true\n"
        f"  once-{n}:\n"
        '    schedule: {at: "2026-04-01T12:00:00+02:00"}\n'
        "    run: {type: command, command: [echo, once]}\n"
    )


def test_jobs_built_by_parse_children_match_jobs_built_in_one_process(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs.d"
    jobs_dir.mkdir()
    files = PARALLEL_MIN_FILES + 4  # enough to be parsed by children
    for n in range(files):
        (jobs_dir / f"jobs-{n:02d}.yaml").write_text(job_file(n))
    listed = {}
    for name, workers in (("children", 2), ("one-process", 1)):
        url = f"sqlite:///{tmp_path / name}.db"
        store = Store(url)
        try:
            result = reconcile(store, jobs_dir, workers=workers, now=NOW)
        finally:
            store.close()
        assert result.applied and len(result.plan.add) == 5 * files
        listed[name] = jobs(jobs_dir, url)

    assert listed["children"] == listed["one-process"]
    seen = listed["children"]
    assert seen["berlin-3"]["next_run_time"] == "2026-03-29T09:00:00+02:00"
    assert seen["berlin-3"]["description"] == "nine o'clock, file 3"
    # Vixie cron: a time the clock skips runs when the clock jumps
    assert seen["in-the-gap-3"]["next_run_time"] == "2026-03-29T03:00:00+02:00"
    assert seen["every-3h-3"]["next_run_time"] == "2026-03-29T06:30:00+02:00"
    assert seen["paused-3"]["next_run_time"] is None and seen["paused-3"]["paused"]
    assert seen["once-3"]["next_run_time"] == "2026-04-01T12:00:00+02:00"
