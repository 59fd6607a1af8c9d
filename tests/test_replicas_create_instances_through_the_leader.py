"""Instances with replicas on one PostgreSQL store (issue 9): a standby creates, changes and
deletes them through the leader, and after the leader dies the new one runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for
from tests.replica_helpers import replicas

TEMPLATE = """\
templates:
  tick:
    params:
      word: {type: string, required: true}
    run: {type: command, command: [echo, "${params.word}"]}
"""


def test_a_standby_creates_instances_and_a_new_leader_runs_them(
    jobs_dir: Path, write_jobs: WriteJobs, tmp_path: Path, pg_database: Callable[[], str]
) -> None:
    write_jobs("t.yaml", TEMPLATE)
    with replicas(jobs_dir, pg_database(), tmp_path) as group:
        leader, standby = group.leader_and_standby()

        def outputs(job: str) -> list[str]:
            rows = group.sql(
                f"SELECT output_tail FROM scheduler_runs WHERE job_id = '{job}' "
                "AND outcome = 'success' ORDER BY started_at"
            )
            return [row.output_tail for row in rows]

        with standby.client() as api:
            body = {"id": "every", "params": {"word": "one"}, "schedule": {"interval": "1s"}}
            made = api.post("/templates/tick/jobs", json=body)
            assert made.status_code == 201, made.text
            assert made.json()["next_run_time"] is not None
            wait_for(lambda: outputs("every") or None, "the leader to run the instance")
            changed = api.patch("/jobs/every", json={"params": {"word": "two"}})
            assert changed.status_code == 200, changed.text
            wait_for(lambda: "two\n" in outputs("every") or None, "the changed params to run")
            once = {"id": "once", "params": {"word": "x"}, "schedule": {"in": "1h"}}
            assert api.post("/templates/tick/jobs", json=once).status_code == 201
            assert api.delete("/jobs/once").status_code == 204
            assert api.get("/jobs/once").status_code == 404

        leader.kill()  # kill -9: the standby takes over when the lease runs out
        new = group.leader()
        assert new is standby
        before = len(outputs("every"))
        wait_for(lambda: len(outputs("every")) > before + 1 or None, "the new leader to run it")
        assert outputs("every")[-1] == "two\n"
