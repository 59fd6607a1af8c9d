"""An edit of a template's default schedule reaches the instances created without a
schedule of their own (as an edit of its description does), with their next run
recomputed; an instance that chose its schedule keeps it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from scheduler import instances
from scheduler.lookup import job_detail
from scheduler.reconciler import reconcile
from scheduler.store import Store
from tests.conftest import WriteJobs

TEMPLATE = """\
templates:
  report:
    schedule: {interval: 2h}
    params:
      name: {type: string, required: true}
    run: {type: command, command: [echo, "${params.name}"]}
"""


def test_a_default_schedule_edit_reaches_instances_that_took_it(
    write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs("t.yaml", TEMPLATE)
    store = Store(db_url)
    try:
        reconcile(store, jobs_dir)
        took = instances.create(store, "report", {"name": "a"}, job_id="took")
        chose = instances.create(store, "report", {"name": "b"}, {"interval": "3h"}, job_id="own")
        write_jobs("t.yaml", TEMPLATE.replace("interval: 2h", "interval: 6h"))
        result = reconcile(store, jobs_dir)
        assert result.instance_lines == ["report: 1 instances updated"]
        now = job_detail(store, "took")
        assert now["spec"]["schedule"]["interval"] == "6h"
        gap = datetime.fromisoformat(now["next_run_time"]) - datetime.fromisoformat(
            took["next_run_time"]
        )
        assert timedelta(hours=3) < gap < timedelta(hours=5)  # 6h from the reconcile, not 2h
        assert job_detail(store, "own") == chose
    finally:
        store.close()
