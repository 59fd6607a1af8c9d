"""Jobs created at run time from templates declared in the files (issue 9), against a real
daemon over HTTP: every route and refusal, a hostile parameter arriving as one literal
argument, a template edit re-rendering its instances, a template removal refused (and
allowed with --allow-orphan-delete), and instances surviving a restart."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.api_helpers import StartApi
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for

# The job's own output is its argv as JSON: what the program received, argument by argument.
ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


def template_file(extra_arg: str = "v1") -> str:
    return f"""\
templates:
  echoargs:
    description: prints its arguments
    params:
      query: {{type: string, required: true, max_length: 200}}
      limit: {{type: integer, min: 1, max: 50, default: 10}}
    limits: {{max_jobs: 4, min_interval: 1h, schedules: [interval, at]}}
    run:
      type: command
      command: [{sys.executable}, -c, "{ARGV}",
                "${{params.query}}", "--limit=${{params.limit}}", {extra_arg}]
jobs:
  report:
    schedule: {{cron: "0 9 * * 1-5"}}
    run: {{type: command, command: [echo, report]}}
"""


HOSTILE = ["; rm -rf /", "--output=/etc/passwd", "two\nlines $(id) `id` ${HOME} 'q' \"d\""]


def _outputs(api: httpx.Client, job_id: str, count: int) -> list[list[str]]:
    def finished() -> list[dict[str, Any]] | None:
        runs = [r for r in api.get(f"/jobs/{job_id}/runs").json() if r["finished_at"]]
        return runs if len(runs) >= count else None

    runs = wait_for(finished, f"{count} finished run(s) of {job_id}")
    assert all(r["outcome"] == "success" for r in runs), runs
    return [json.loads(r["output_tail"]) for r in reversed(runs)]


def _create(api: httpx.Client, body: dict[str, Any], template: str = "echoargs") -> httpx.Response:
    return api.post(f"/templates/{template}/jobs", json=body)


def test_instances_are_created_run_changed_and_deleted_over_http(
    start_api: StartApi, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("t.yaml", template_file())
    daemon = start_api()
    with daemon.client() as api:
        listed = api.get("/templates").json()
        assert [t["name"] for t in listed["templates"]] == ["echoargs"]
        schema = api.get("/templates/echoargs").json()["params"]
        assert schema["required"] == ["query"]
        assert schema["properties"]["limit"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 50,
            "default": 10,
        }
        assert api.get("/templates/nope").status_code == 404

        # Hostile values arrive as one literal argument each.
        made = []
        for index, value in enumerate(HOSTILE):
            reply = _create(
                api,
                {
                    "id": f"hostile-{index}",
                    "params": {"query": value},
                    "schedule": {"interval": "2h"},
                },
            )
            assert reply.status_code == 201, reply.text
            job = reply.json()
            assert job["origin"] == "template" and job["template"] == "echoargs"
            assert job["source"] == "template echoargs"
            assert job["params"] == {"query": value, "limit": 10}
            made.append(job)
            assert api.post(f"/jobs/{job['id']}/runs", json={}).status_code == 202
        for index, value in enumerate(HOSTILE):
            assert _outputs(api, f"hostile-{index}", 1) == [[value, "--limit=10", "v1"]]

        # Refusals, each with its status and the field named.
        bad = _create(api, {"params": {"query": "x", "limit": 99}, "schedule": {"interval": "2h"}})
        assert (
            bad.status_code == 422 and bad.json()["detail"]["fields"][0]["field"] == "params.limit"
        )
        missing = _create(api, {"params": {}, "schedule": {"interval": "2h"}})
        assert missing.status_code == 422 and "params.query" in missing.text
        assert _create(api, {"params": {"query": "x"}}, template="nope").status_code == 404
        taken = _create(
            api, {"id": "hostile-0", "params": {"query": "x"}, "schedule": {"in": "1h"}}
        )
        assert taken.status_code == 409 and "taken" in taken.json()["detail"]["message"]
        file_id = _create(api, {"id": "report", "params": {"query": "x"}, "schedule": {"in": "1h"}})
        assert file_id.status_code == 409 and "t.yaml" in file_id.text
        cron = _create(api, {"params": {"query": "x"}, "schedule": {"cron": "0 * * * *"}})
        assert cron.status_code == 422 and "allows only these schedules" in cron.text
        often = _create(api, {"params": {"query": "x"}, "schedule": {"interval": "5m"}})
        assert often.status_code == 422 and "min_interval" in often.text
        # The fourth instance: an "in" one-shot that runs by itself; a fifth is over max_jobs.
        soon = _create(api, {"id": "soon", "params": {"query": "later"}, "schedule": {"in": "2s"}})
        assert soon.status_code == 201, soon.text
        over = _create(api, {"params": {"query": "x"}, "schedule": {"interval": "2h"}})
        assert over.status_code == 409 and "max_jobs" in over.text
        assert _outputs(api, "soon", 1) == [["later", "--limit=10", "v1"]]
        # A spent one-shot is no longer alive: there is room for another instance.
        fifth = {"id": "fifth", "params": {"query": "x"}, "schedule": {"interval": "2h"}}
        assert _create(api, fifth).status_code == 201
        assert api.delete("/jobs/fifth").status_code == 204

        # Listing: origin, and a template filter.
        jobs = {j["id"]: j for j in api.get("/jobs").json()["jobs"]}
        assert jobs["report"]["origin"] == "file" and jobs["report"]["source"].endswith("t.yaml:13")
        assert set(api.get("/store/jobs").json()["jobs"]) == {"report"}  # what plan --url sees
        only = api.get("/jobs", params={"template": "echoargs"}).json()["jobs"]
        assert sorted(j["id"] for j in only) == ["hostile-0", "hostile-1", "hostile-2", "soon"]

        # PATCH: params keep the next run, a schedule recomputes it; a file's job is 409.
        before = api.get("/jobs/hostile-0").json()
        changed = api.patch("/jobs/hostile-0", json={"params": {"limit": 3}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["next_run_time"] == before["next_run_time"]
        assert changed.json()["spec"]["run"]["command"][-2:] == ["--limit=3", "v1"]
        moved = api.patch("/jobs/hostile-0", json={"schedule": {"interval": "3h"}})
        assert moved.json()["next_run_time"] != before["next_run_time"]
        assert api.patch("/jobs/hostile-0", json={"params": {"limit": 0}}).status_code == 422
        file_patch = api.patch("/jobs/report", json={"description": "x"})
        assert file_patch.status_code == 409 and file_patch.json()["detail"]["source"].endswith(
            "t.yaml:13"
        )
        assert api.patch("/jobs/nope", json={}).status_code == 404

        # A one-off run later, with params for that run only.
        later = api.post("/jobs/hostile-1/runs", json={"in": "1s", "params": {"query": "once"}})
        assert later.status_code == 202, later.text
        assert _outputs(api, "hostile-1", 2)[1] == ["once", "--limit=10", "v1"]
        assert api.post("/jobs/report/runs", json={"params": {"q": 1}}).status_code == 422
        assert api.post("/jobs/nope/runs", json={}).status_code == 404

        # DELETE: an instance goes (204), a file's job answers 409 with its file.
        assert api.delete("/jobs/hostile-2").status_code == 204
        assert api.get("/jobs/hostile-2").status_code == 404
        assert api.delete("/jobs/hostile-2").status_code == 404
        assert api.delete("/jobs/report").status_code == 409

        # A template edit re-renders every instance at the next reconcile.
        write_jobs("t.yaml", template_file("v2"))
        plan = api.post("/reconcile").json()
        assert plan["details"]["instances"] == ["echoargs: 3 instances updated"]
        assert api.get("/jobs/hostile-0").json()["spec"]["run"]["command"][-1] == "v2"

        # An edit that would make an instance invalid is refused, naming it.
        write_jobs("t.yaml", template_file("v2").replace("min: 1,", "min: 5,"))
        refused = api.post("/reconcile")
        assert refused.status_code == 422
        assert "instance 'hostile-0' would be invalid" in refused.text
        write_jobs("t.yaml", template_file("v2"))

    assert daemon.stop() == 0
    # With no daemon, a one-off run for later goes into the store; the next daemon runs it.
    stored = daemon.cli("trigger", "hostile-1", "--in", "1s", "-p", "query=stored")
    assert stored.returncode == 0 and "hostile-1: runs at" in stored.stdout, stored.stderr
    restarted = start_api()
    with restarted.client() as api:
        kept = api.get("/jobs", params={"template": "echoargs"}).json()["jobs"]
        assert sorted(j["id"] for j in kept) == ["hostile-0", "hostile-1", "soon"]
        assert _outputs(api, "hostile-1", 3)[2] == ["stored", "--limit=10", "v2"]
        assert api.post("/jobs/hostile-0/runs", json={}).status_code == 202
        assert _outputs(api, "hostile-0", 2)[1] == [HOSTILE[0], "--limit=3", "v2"]
        # The command line acts through the running daemon.
        argv = ("create", "echoargs", "-p", "query=via cli", "--interval", "2h", "--id", "cli")
        via = restarted.cli(*argv, "-o", "json")
        assert via.returncode == 0 and json.loads(via.stdout)["via"] == "daemon", via.stderr
        assert restarted.cli("delete", "cli").returncode == 0

        # Removing the template is refused while it has instances...
        (jobs_dir / "t.yaml").write_text("jobs:\n" + template_file().split("jobs:\n", 1)[1])
        refused = api.post("/reconcile")
        assert refused.status_code == 409 and "--allow-orphan-delete" in refused.text
        assert len(api.get("/jobs", params={"template": "echoargs"}).json()["jobs"]) == 3
        # ... and done, listing them, with --allow-orphan-delete.
        done = restarted.cli("reconcile", "--allow-orphan-delete")
        assert done.returncode == 0, done.stderr
        assert "echoargs: template removed, 3 instance(s) removed" in done.stdout
        assert [j["id"] for j in api.get("/jobs").json()["jobs"]] == ["report"]
