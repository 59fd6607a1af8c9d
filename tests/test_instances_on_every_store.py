"""Templates and instances on every kind of store (SQLite, PostgreSQL, MariaDB): a template
reconciled into the store, an instance created with a long non-ASCII parameter, changed,
re-rendered by a template edit, and deleted, all read back exactly."""

from __future__ import annotations

from pathlib import Path

from scheduler import instances
from scheduler.reconciler import reconcile
from scheduler.service import list_jobs
from scheduler.store import Store
from tests.conftest import WriteJobs

TEMPLATE = """\
templates:
  greet:
    params:
      who: {type: string, required: true}
    run: {type: command, command: [echo, "${params.who}", v1]}
"""


def test_instances_round_trip_on_the_store(
    store_url: str, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("t.yaml", TEMPLATE)
    store = Store(store_url)
    try:
        reconcile(store, jobs_dir)
        who = "Grüße, 世界 " * 3000  # ~45 KB: more than a TEXT column holds on MariaDB
        job = instances.create(store, "greet", {"who": who}, {"interval": "2h"}, job_id="g")
        assert job["spec"]["run"]["command"] == ["echo", who, "v1"]
        assert [(j["id"], j["origin"], j["params"]) for j in list_jobs(store)] == [
            ("g", "template", {"who": who})
        ]
        changed = instances.modify(store, "g", params={"who": "Welt"})
        assert changed["next_run_time"] == job["next_run_time"]
        write_jobs("t.yaml", TEMPLATE.replace("v1", "v2"))
        result = reconcile(store, jobs_dir)
        assert result.instance_lines == ["greet: 1 instances updated"]
        assert instances.template(store, "greet")["instances"] == 1
        assert list_jobs(store, "g")[0]["source"] == "template greet"
        spec = instances.instance_row(store, "g").stored.canonical
        assert spec["run"]["command"] == ["echo", "Welt", "v2"]
        instances.remove(store, "g")
        assert list_jobs(store) == []
    finally:
        store.close()
