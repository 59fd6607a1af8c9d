"""`preview --from` without an offset is wall time in the schedule's zone, as in job files.

Regression (issue 14): `--from 2027-01-01T08:00:00` was read as UTC whatever `--tz` said.
"""

from __future__ import annotations

import pytest

from tests.conftest import RunCli, WriteJobs


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 08:00 in Tokyo: 09:00 the same morning comes next (read as UTC it was 17:00 Tokyo)
        ("2027-01-01T08:00:00", "2027-01-01T09:00:00+09:00"),
        ("2027-01-01 08:00", "2027-01-01T09:00:00+09:00"),
        # an offset still says which instant is meant
        ("2027-01-01T08:00:00+00:00", "2027-01-02T09:00:00+09:00"),
        ("2027-01-01T08:00:00Z", "2027-01-02T09:00:00+09:00"),
    ],
)
def test_from_without_offset_is_wall_time_in_tz(run_cli: RunCli, start: str, expected: str) -> None:
    result = run_cli("preview", "0 9 * * *", "--tz", "Asia/Tokyo", "--from", start, "-n", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [expected]


def test_from_without_offset_is_wall_time_in_the_jobs_zone(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    write_jobs(
        "a.yaml",
        """\
        jobs:
          tokyo:
            schedule: {cron: "0 9 * * *", timezone: Asia/Tokyo}
            run: {type: command, command: ["true"]}
        """,
    )
    result = run_cli("preview", "--job", "tokyo", "--from", "2027-01-01T08:59:59", "-n", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2027-01-01T09:00:00+09:00",
        "2027-01-02T09:00:00+09:00",
    ]


def test_preview_shows_every_run_in_a_dst_gap(run_cli: RunCli) -> None:
    result = run_cli(
        "preview", "0 2,3 * * *", "--tz", "America/New_York", "--from", "2026-03-08", "-n", "3"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:00:01-04:00",
        "2026-03-09T02:00:00-04:00",
    ]


def test_preview_warns_about_a_step_larger_than_its_range(run_cli: RunCli) -> None:
    result = run_cli("preview", "9 2-23/24 * * *", "--from", "2027-01-01T00:00:00Z", "-n", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["2027-01-01T02:09:00+00:00", "2027-01-02T02:09:00+00:00"]
    assert result.stderr == (
        "warning: hour field '2-23/24': step 24 is larger than the range 2-23, so only 2 matches\n"
    )


def test_a_bad_from_says_what_to_write(run_cli: RunCli) -> None:
    result = run_cli("preview", "0 9 * * *", "--from", "tomorrow")
    assert result.exit_code == 2
    assert "'tomorrow' is not ISO 8601, e.g. 2026-12-01T09:00:00+01:00" in result.stderr
