"""`scheduler run --log-format json`: one JSON event per line, runs with their job id, run
id, outcome and duration, reconciles with their counts; and `jobs` says when a job's
schedule has ended."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for


def test_json_logs_carry_runs_and_reconcile_counts(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  hello:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: ["sh", "-c", "exit 4"]}
  over:
    schedule: {cron: "0 9 * * *", end: "2020-01-01T00:00:00Z"}
    run: {type: command, command: ["true"]}
""",
    )
    daemon = start_daemon("--log-format", "json")
    assert daemon.cli("trigger", "hello").returncode == 0

    def events() -> list[dict[str, Any]]:
        return [json.loads(line) for line in daemon.log().splitlines() if line.strip()]

    run = wait_for(
        lambda: next((e for e in events() if e.get("event") == "run"), None), "a run event"
    )
    assert (run["job_id"], run["outcome"], run["exit_code"], run["attempt"]) == (
        "hello",
        "failure",
        4,
        1,
    )
    assert len(run["run_id"]) == 32 and run["duration"] >= 0
    assert run["level"] == "info" and run["time"].endswith("+00:00")
    reconcile = next(e for e in events() if e.get("event") == "reconcile")
    assert (
        reconcile["trigger"],
        reconcile["added"],
        reconcile["updated"],
        reconcile["removed"],
        reconcile["unchanged"],
    ) == ("start-up", 2, 0, 0, 0)
    over = daemon.jobs()["over"]
    assert (over["state"], over["next_run_time"]) == ("ended", None)
    assert daemon.jobs()["hello"]["state"] == "scheduled"
