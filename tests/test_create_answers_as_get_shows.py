"""A create answers with the new job exactly as ``GET /jobs/{id}`` shows it (issue 9): the
reply is built from what the create wrote, not read back, so this pins the two together for
every kind of job a template can make (interval, cron in a time zone with jitter, a one-shot,
paused, with ``expect``) and for an id whose earlier job left runs in the history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler import instances
from scheduler.history import RunRecord
from scheduler.lookup import job_detail
from scheduler.reconciler import reconcile
from scheduler.store import Store
from tests.conftest import WriteJobs

TEMPLATES = """\
templates:
  search:
    description: A recurring search
    params:
      query: {type: string, required: true}
      sources: {type: list, items: string, default: [google]}
    run: {type: command, command: [echo, "${params.query}"]}
  watched:
    schedule: {cron: "0 9 * * 1-5", timezone: Europe/Paris, jitter: 30s}
    expect: {succeeds_within: 4d}
    params:
      path: {type: string, required: true}
    run: {type: http, url: "http://127.0.0.1:9/${params.path}"}
  held:
    paused: true
    schedule: {interval: 3h}
    params: {}
    run: {type: command, command: [echo, held]}
"""


@pytest.fixture
def store(write_jobs: WriteJobs, jobs_dir: Path, db_url: str) -> Any:
    write_jobs("t.yaml", TEMPLATES)
    opened = Store(db_url)
    reconcile(opened, jobs_dir)
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("template", "params", "schedule"),
    [
        ("search", {"query": "Grüße"}, {"interval": "2h"}),
        ("search", {"query": "x", "sources": ["a", "b"]}, {"cron": "*/5 * * * *"}),
        ("search", {"query": "once"}, {"in": "2h"}),
        ("watched", {"path": "a"}, None),
        ("held", {}, None),
    ],
)
def test_create_answers_with_what_get_shows(
    store: Store, template: str, params: dict[str, Any], schedule: dict[str, Any] | None
) -> None:
    created = instances.create(store, template, params, schedule, job_id="j1")
    assert created == job_detail(store, "j1")


def test_an_id_used_again_shows_the_runs_its_earlier_job_left(store: Store) -> None:
    instances.create(store, "search", {"query": "old"}, {"interval": "1h"}, job_id="again")
    started = time.time() - 60
    with store.write() as conn:  # what a daemon's history writer records for two runs
        for n, outcome in enumerate(("success", "failure")):
            record = RunRecord(f"run-{n}", "again", started + n, started + n, outcome=outcome)
            conn.execute(store.runs.insert().values(**record.row()))
    instances.remove(store, "again")
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = instances.create(store, "search", {"query": "new"}, {"at": at}, job_id="again")
    assert created["last_outcome"] == "failure"
    assert created == job_detail(store, "again")
