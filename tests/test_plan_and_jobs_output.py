"""What `scheduler plan`, `reconcile` and `jobs` print, in text and JSON."""

from __future__ import annotations

import json

from tests.conftest import RunCli, WriteJobs, simple_job


def test_plan_text_shows_adds_updates_removes_and_a_summary(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    a = write_jobs("a.yaml", simple_job("keep") + simple_job("edit").removeprefix("jobs:\n"))
    write_jobs("b.yaml", simple_job("drop"))
    assert run_cli("reconcile").exit_code == 0
    write_jobs(
        "a.yaml",
        simple_job("keep")
        + simple_job("edit", cron="0 10 * * 1-5").removeprefix("jobs:\n")
        + simple_job("new", cron="@weekly").removeprefix("jobs:\n"),
    )
    (a.parent / "b.yaml").unlink()
    result = run_cli("plan")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"+ add new: At 00:00, only on Sunday  ({a}:14)",
        f"~ update edit  ({a}:8)",
        '    schedule.cron: "0 9 * * *" -> "0 10 * * 1-5"',
        f"- remove drop  (was {a.parent / 'b.yaml'}:2)",
        "Plan: 1 to add, 1 to update, 1 to remove, 1 unchanged.",
    ]
    assert run_cli("plan", "--detailed-exitcode").exit_code == 2
    as_json = json.loads(run_cli("plan", "-o", "json").stdout)
    assert as_json == {
        "add": ["new"],
        "update": [{"id": "edit", "fields": ["schedule.cron"]}],
        "remove": ["drop"],
        "unchanged": ["keep"],
    }
    applied = run_cli("reconcile", "-o", "json")
    assert json.loads(applied.stdout) == {**as_json, "applied": True}
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0
    assert run_cli("reconcile").stdout == "No changes: 3 job(s) up to date.\n"


def test_reconcile_dry_run_is_plan(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", simple_job("a"))
    dry = run_cli("reconcile", "--dry-run", "-o", "json")
    assert json.loads(dry.stdout)["add"] == ["a"]
    listing = run_cli("jobs", "-o", "json")  # nothing applied: not even a store created
    assert listing.exit_code == 1
    assert "no store at" in listing.output


def test_jobs_json_has_the_documented_fields(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    path = write_jobs(
        "a.yaml",
        """\
jobs:
  daily:
    schedule: {cron: "0 9 * * 1-5", timezone: Europe/Berlin}
    run: {type: command, command: ["true"]}
  held:
    schedule: {interval: 1h}
    run: {type: cleanup}
    paused: true
""",
    )
    assert run_cli("reconcile").exit_code == 0
    jobs = json.loads(run_cli("jobs", "-o", "json").stdout)
    assert [j["id"] for j in jobs] == ["daily", "held"]
    daily, held = jobs
    assert daily["schedule"] == "At 09:00, Monday through Friday (Europe/Berlin)"
    assert daily["handler"] == "command"
    assert daily["next_run_time"].endswith(("+01:00", "+02:00"))
    assert daily["next_run_time"][11:19] == "09:00:00"
    assert (daily["paused"], daily["source"]) == (False, f"{path}:2")
    assert (held["paused"], held["paused_by"], held["next_run_time"]) == (True, "file", None)
    assert {"id", "schedule", "handler", "next_run_time", "paused", "source"} <= set(daily)
    text = run_cli("jobs").stdout.splitlines()
    assert text[0].split() == [
        "ID",
        "SCHEDULE",
        "HANDLER",
        "NEXT",
        "RUN",
        "PAUSED",
        "LAST",
        "RUN",
        "SOURCE",
    ]
