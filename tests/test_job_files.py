"""What a valid job file means: each schedule kind, defaults, durations, handler args."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.durations import format_duration, parse_duration
from scheduler.loader import load_paths
from tests.conftest import WriteJobs


def test_each_schedule_kind_loads(jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs(
        "kinds.yaml",
        """
        jobs:
          by-cron:
            schedule: {cron: "0 9 * * 1-5", timezone: Europe/Berlin}
            run: {type: command, command: "echo hi"}
          by-interval:
            schedule: {interval: 1h30m, jitter: 10s}
            run: {type: http, url: "http://127.0.0.1:1/x", method: post, json: {a: 1}}
          once:
            schedule: {at: "2027-01-04 09:00", timezone: America/New_York}
            run: {type: python, function: "scheduler.examples:search", kwargs: {query: q}}
          tidy:
            schedule: {cron: "@daily"}
            run: {type: cleanup}
    """,
    )
    jobs = load_paths([jobs_dir]).jobs
    assert jobs["by-cron"].spec.schedule.kind == "cron"
    assert jobs["by-interval"].spec.schedule.interval == timedelta(hours=1, minutes=30)
    assert jobs["by-interval"].spec.run.method == "POST"  # type: ignore[attr-defined]
    # A naive `at` is wall time in the schedule's zone, never the host's.
    assert jobs["once"].spec.schedule.at == datetime(
        2027, 1, 4, 9, tzinfo=ZoneInfo("America/New_York")
    )
    assert jobs["tidy"].spec.run.retention == timedelta(days=7)  # type: ignore[attr-defined]
    assert jobs["by-cron"].source.line == 2


def test_seed_defaults_apply(jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", "jobs:\n  a:\n    schedule: {interval: 1h}\n    run: {type: cleanup}\n")
    spec = load_paths([jobs_dir]).jobs["a"].spec
    assert (spec.coalesce, spec.max_instances, spec.misfire_grace) == (
        True,
        3,
        timedelta(seconds=30),
    )
    assert spec.concurrency == "allow" and spec.retries.attempts == 0


def test_file_defaults_merge_under_each_job(jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs(
        "a.yaml",
        """
        defaults:
          timezone: Europe/Berlin
          timeout: 5m
          labels: {team: research, tier: low}
        jobs:
          a:
            schedule: {cron: "0 9 * * *"}
            run: {type: cleanup}
            labels: {tier: high}
          b:
            schedule: {cron: "0 9 * * *", timezone: UTC}
            run: {type: cleanup}
            timeout: 1m
    """,
    )
    jobs = load_paths([jobs_dir]).jobs
    assert jobs["a"].spec.schedule.timezone == "Europe/Berlin"
    assert jobs["a"].spec.timeout == timedelta(minutes=5)
    assert jobs["a"].spec.labels == {"team": "research", "tier": "high"}
    assert jobs["b"].spec.schedule.timezone == "UTC"
    assert jobs["b"].spec.timeout == timedelta(minutes=1)


def test_misfire_grace_null_means_any_lateness(jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs(
        "a.yaml",
        "jobs:\n  a:\n    schedule: {interval: 1h}\n    run: {type: cleanup}\n"
        "    misfire_grace: null\n",
    )
    assert load_paths([jobs_dir]).jobs["a"].spec.misfire_grace is None


def test_fingerprint_ignores_formatting_but_not_meaning(
    jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", "jobs:\n  a:\n    schedule: {interval: 90s}\n    run: {type: cleanup}\n")
    first = load_paths([jobs_dir]).jobs["a"].fingerprint
    write_jobs(
        "a.yaml",
        "# moved around\njobs:\n  a:\n    run:\n      type: cleanup\n"
        "    schedule:\n      interval: 1m30s\n",
    )
    assert load_paths([jobs_dir]).jobs["a"].fingerprint == first
    write_jobs("a.yaml", "jobs:\n  a:\n    schedule: {interval: 91s}\n    run: {type: cleanup}\n")
    assert load_paths([jobs_dir]).jobs["a"].fingerprint != first


def test_yaml_anchors_and_merge_keys_work(jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs(
        "a.yaml",
        """
        jobs:
          a: &base
            schedule: {interval: 1h}
            run: {type: cleanup}
          b:
            <<: *base
            description: same as a
    """,
    )
    jobs = load_paths([jobs_dir]).jobs
    assert jobs["b"].spec.schedule == jobs["a"].spec.schedule
    assert jobs["b"].spec.description == "same as a"


def test_empty_file_declares_nothing(jobs_dir: Path, write_jobs: WriteJobs) -> None:
    write_jobs("empty.yaml", "# nothing yet\n")
    assert load_paths([jobs_dir]).jobs == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("1d", 86400),
        (45, 45),
        ("2w", 1209600),
        ("120", 120),
    ],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["5 minutes", "1m1h", "-5", "", "1.5h", True])
def test_bad_durations_are_rejected(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_durations_have_one_canonical_text() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(parse_duration("90")) == "1m30s"


def test_shipped_examples_are_valid() -> None:
    state = load_paths([Path(__file__).parent.parent / "jobs.d"])
    kinds = {job.spec.schedule.kind for job in state.jobs.values()}
    handlers = {job.spec.run.type for job in state.jobs.values()}
    assert kinds == {"cron", "interval", "at"}
    assert handlers == {"command", "http", "python", "cleanup"}
    assert state.jobs["daily-cleanup"].spec.schedule.cron == "0 2 * * *"
    assert state.jobs["weekly-export"].spec.schedule.cron == "0 8 * * MON"
    assert datetime(2027, 1, 4, 9, tzinfo=UTC) == state.jobs["search-42-analysis"].spec.schedule.at
