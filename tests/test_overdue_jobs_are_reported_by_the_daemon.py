"""A real daemon over a store whose history says a nightly job last succeeded three days
ago: the job is overdue at once (computed from history, so it holds across restarts), and
every surface says so: a WARNING line, `on_overdue` run once, the per-job gauges,
`GET /jobs?overdue=true` and `scheduler jobs`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scheduler.store import Store
from tests.api_helpers import StartApi
from tests.conftest import RunCli, WriteJobs
from tests.daemon_helpers import wait_for


def test_a_job_without_a_recent_success_is_overdue_everywhere(
    write_jobs: WriteJobs, run_cli: RunCli, start_api: StartApi, db_url: str, tmp_path: Path
) -> None:
    alerts = tmp_path / "alerts.log"
    write_jobs(
        "a.yaml",
        f"""
        jobs:
          nightly-export:
            schedule: {{cron: "0 2 * * *"}}
            run: {{type: command, command: ["true"]}}
            expect: {{succeeds_within: 26h}}
            on_overdue:
              - type: command
                command: ["sh", "-c", 'echo "$SCHEDULER_EVENT $SCHEDULER_OUTCOME" >> {alerts}']
          fresh:
            schedule: {{cron: "0 2 * * *"}}
            run: {{type: command, command: ["true"]}}
            expect: {{succeeds_within: 26h}}
          untracked:
            schedule: {{cron: "0 2 * * *"}}
            run: {{type: command, command: ["true"]}}
        """,
    )
    assert run_cli("reconcile").exit_code == 0
    three_days_ago, fresh_at = time.time() - 3 * 86400, time.time() - 3600
    store = Store(db_url)
    with store.write() as conn:
        conn.execute(
            store.runs.insert(),
            [
                {
                    "run_id": f"r{i}",
                    "job_id": job,
                    "scheduled_time": at,
                    "started_at": at,
                    "finished_at": at + 1,
                    "outcome": "success",
                    "exit_code": 0,
                    "attempt": 1,
                    "output_tail": "",
                    "error": None,
                }
                for i, (job, at) in enumerate(
                    [("nightly-export", three_days_ago), ("fresh", fresh_at)]
                )
            ],
        )
    store.close()

    daemon = start_api()
    daemon.wait_log(r"WARNING .*job nightly-export is overdue: no success within 93600s")
    assert wait_for(lambda: alerts.exists() and alerts.read_text(), "the on_overdue notifier") == (
        "on_overdue overdue\n"
    )
    with daemon.client() as client:
        overdue = client.get("/jobs", params={"overdue": "true"}).json()
        assert [job["id"] for job in overdue["jobs"]] == ["nightly-export"]
        assert overdue["jobs"][0]["expect"] == "1d2h"
        not_overdue = client.get("/jobs", params={"overdue": "false"}).json()["jobs"]
        assert {job["id"] for job in not_overdue} >= {"fresh", "untracked"}
        metrics = client.get("/metrics").text
    gauges = {
        (sample.name, sample.labels["job"]): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name.startswith("scheduler_job_")
        for sample in family.samples
    }
    assert gauges == {  # only jobs that declare expect
        ("scheduler_job_overdue", "nightly-export"): 1.0,
        ("scheduler_job_overdue", "fresh"): 0.0,
        ("scheduler_job_last_success_timestamp_seconds", "nightly-export"): three_days_ago + 1,
        ("scheduler_job_last_success_timestamp_seconds", "fresh"): pytest.approx(fresh_at + 1),
    }
    assert daemon.stop() == 0
    assert daemon.log().count("is overdue") == 1  # once per lapse, not once per check

    # A restart reads the same lapse from history: overdue still, but not announced again.
    again = start_api()
    with again.client() as client:
        overdue = client.get("/jobs", params={"overdue": "true"}).json()["jobs"]
        assert [job["id"] for job in overdue] == ["nightly-export"]
    assert again.stop() == 0
    assert "is overdue" not in again.log()
    assert alerts.read_text() == "on_overdue overdue\n"
    history = run_cli("history", "nightly-export", "-o", "json")
    assert [run["outcome"] for run in json.loads(history.output)] == ["overdue", "success"]

    listing = run_cli("jobs")
    line = next(row for row in listing.output.splitlines() if row.startswith("nightly-export"))
    assert "OVERDUE (expect success within 1d2h; last " in line
    fresh = next(row for row in listing.output.splitlines() if row.startswith("fresh"))
    assert "OVERDUE" not in fresh
