"""`validate` accepts schedules that are valid but probably not what was meant, and warns on
stderr with the job's PATH:LINE:COL (exit 0, stdout unchanged, so scripts still see "ok")."""

from __future__ import annotations

import json

from tests.conftest import RunCli, WriteJobs


def test_validate_warns_and_still_passes(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    path = write_jobs(
        "a.yaml",
        """\
        jobs:
          hourly-ish:
            schedule: {cron: "9 2-23/24 * * *"}
            run: {type: command, command: ["true"]}
          every-ten:
            schedule: {interval: 10s, jitter: 10s}
            run: {type: command, command: ["true"]}
          every-minute:
            schedule: {cron: "* * * * *", jitter: 2m}
            run: {type: command, command: ["true"]}
          fine:
            schedule: {interval: 10s, jitter: 8s}
            run: {type: command, command: ["true"]}
        """,
    )
    result = run_cli("validate")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: 4 job(s) in 1 file(s)\n"
    assert result.stderr.splitlines() == [
        f"{path}:2:3: warning: job 'hourly-ish': cron: hour field '2-23/24': step 24 is larger "
        "than the range 2-23, so only 2 matches",
        f"{path}:5:3: warning: job 'every-ten': jitter: 10s is not shorter than the 10s between "
        "runs, so some runs will be skipped",
        f"{path}:8:3: warning: job 'every-minute': jitter: 2m is not shorter than the 1m between "
        "runs, so some runs will be skipped",
    ]
    as_json = run_cli("validate", "--output", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
