"""`expect: {succeeds_within: ...}` is refused at validate time where it cannot be kept: on
a one-shot `at` job, under a minute, or no longer than the longest gap of its schedule
(where a weekday cron leaves three days over a weekend). Errors point at the job."""

from __future__ import annotations

import pytest

from tests.conftest import RunCli, WriteJobs


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (
            '    schedule: {cron: "0 9 * * 1-5"}\n    expect: {succeeds_within: 26h}\n',
            "a.yaml:3:5: expect.succeeds_within (1d2h) must be longer than the longest gap "
            "between runs of this schedule (3d)",
        ),
        (
            "    schedule: {interval: 6h}\n    expect: {succeeds_within: 6h}\n",
            "a.yaml:3:5: expect.succeeds_within (6h) must be longer than the longest gap "
            "between runs of this schedule (6h)",
        ),
        (
            '    schedule: {at: "2030-01-01T00:00:00Z"}\n    expect: {succeeds_within: 2d}\n',
            "a.yaml:3:5: expect does not apply to a one-shot 'at' job",
        ),
        (
            "    schedule: {interval: 10s}\n    expect: {succeeds_within: 30s}\n",
            "a.yaml:4:31: succeeds_within must be at least 1m",
        ),
        (
            "    schedule: {interval: 1h}\n    on_overdue: [{type: command, command: [x]}]\n",
            "a.yaml:4:5: on_overdue needs expect.succeeds_within",
        ),
        (
            "    schedule: {interval: 1h}\n    expect: {within: 2h}\n",
            "a.yaml:4:14: unknown key 'within'",
        ),
    ],
)
def test_an_expect_that_cannot_be_kept_is_refused(
    write_jobs: WriteJobs, run_cli: RunCli, job: str, expected: str
) -> None:
    write_jobs("a.yaml", "jobs:\n  nightly:\n" + job + "    run: {type: command, command: [x]}\n")
    result = run_cli("validate")
    assert result.exit_code == 1
    assert expected in result.output


def test_expect_from_defaults_is_checked_for_each_job(
    write_jobs: WriteJobs, run_cli: RunCli
) -> None:
    write_jobs(
        "a.yaml",
        """
        defaults:
          expect: {succeeds_within: 26h}
        jobs:
          nightly:
            schedule: {cron: "0 2 * * *"}
            run: {type: command, command: [x]}
          weekly:
            schedule: {cron: "@weekly"}
            run: {type: command, command: [x]}
        """,
    )
    result = run_cli("validate")
    assert result.exit_code == 1
    # nightly (1d between runs) keeps a 26h promise; weekly cannot, and is named by line
    assert result.output.count("a.yaml:") == 1
    assert "a.yaml:8:5: expect.succeeds_within (1d2h)" in result.output
    assert "(1w)" in result.output


def test_a_keepable_expect_validates(write_jobs: WriteJobs, run_cli: RunCli) -> None:
    write_jobs(
        "a.yaml",
        """
        jobs:
          weekdays:
            schedule: {cron: "0 9 * * 1-5"}
            run: {type: command, command: [x]}
            expect: {succeeds_within: 3d1h}
            on_overdue: [{type: http, url: "https://alerts.example/hook"}]
        """,
    )
    result = run_cli("validate")
    assert result.exit_code == 0, result.output
