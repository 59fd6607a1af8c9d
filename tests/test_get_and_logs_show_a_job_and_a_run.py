"""`scheduler get JOB` shows one job (spec, next fire times, last runs), `scheduler logs
RUN_ID` one run's whole kept output, `history --output-lines N` more than three lines, and
`resume` on a job its file pauses says so. Issue 15 items 4, 5 and 6: `scheduler jobs ID`
was a usage error, the text history hid all but three lines of output, and `resume` on a
file-paused job exited 0 having done nothing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from itertools import pairwise

from scheduler.store import Store
from tests.api_helpers import StartApi
from tests.conftest import RunCli, WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import run_stored_job

JOBS = """\
jobs:
  counter:
    description: Counts to forty
    schedule: {interval: 10m}
    run: {type: command, command: "seq 1 40; echo failing >&2; exit 3"}
  nightly:
    schedule: {cron: "30 2 * * *", timezone: Europe/Berlin}
    run: {type: command, command: ["true"]}
  frozen:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: ["true"]}
    paused: true
"""
COUNT = "".join(f"{n}\n" for n in range(1, 41)) + "failing\n"


def test_get_shows_spec_next_fire_times_and_last_runs(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    assert run_stored_job(db_url, "counter") == "failure"  # on purpose

    detail = json.loads(run_cli("get", "counter", "-o", "json").output)
    listed = json.loads(run_cli("jobs", "-o", "json").output)
    assert {k: v for k, v in detail.items() if k in listed[0]} == next(
        j for j in listed if j["id"] == "counter"
    )
    assert detail["spec"]["run"]["command"] == "seq 1 40; echo failing >&2; exit 3"
    assert detail["spec"]["schedule"]["interval"] == "10m"
    fires = [datetime.fromisoformat(t) for t in detail["next_fire_times"]]
    assert len(fires) == 5 and fires[0].isoformat() == detail["next_run_time"]
    assert {b - a for a, b in pairwise(fires)} == {timedelta(minutes=10)}
    assert [r["outcome"] for r in detail["runs"]] == ["failure"]

    text = run_cli("get", "counter").output
    assert "job:         counter\ndescription: Counts to forty\n" in text
    assert f"next runs:   {fires[0].isoformat()}\n             {fires[1].isoformat()}\n" in text
    assert "  failure  exit=3" in text and "      | failing" in text
    assert "spec:\n" in text and "    command: seq 1 40; echo failing >&2; exit 3\n" in text


def test_get_agrees_with_preview_and_names_a_pause(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    nightly = json.loads(run_cli("get", "nightly", "--fires", "3", "-o", "json").output)
    preview = json.loads(run_cli("preview", "--job", "nightly", "-n", "3", "-o", "json").output)
    assert nightly["next_fire_times"] == preview
    frozen = json.loads(run_cli("get", "frozen", "-o", "json").output)
    assert frozen["paused_by"] == "file" and frozen["next_fire_times"] == []
    assert "state:       paused by file" in run_cli("get", "frozen").output
    missing = run_cli("get", "nope")
    assert missing.exit_code == 1
    assert (
        missing.output == "error: no job 'nope' in the store: run `scheduler jobs` to list them\n"
    )


def test_history_output_lines_and_logs_show_all_of_it(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    run_stored_job(db_url, "counter")
    (run,) = json.loads(run_cli("history", "counter", "-o", "json").output)
    assert run["output_tail"] == COUNT

    default = run_cli("history", "counter").output.splitlines()
    assert default[0].endswith(f"run={run['run_id']}")
    assert default[1:4] == ["    | 39", "    | 40", "    | failing"]
    every = run_cli("history", "counter", "--output-lines", "all").output.splitlines()
    assert every[1:42] == [f"    | {line}" for line in COUNT.splitlines()]
    assert run_cli("history", "counter", "--output-lines", "0").output.count("    |") == 0
    assert "give a number of lines, or `all`" in run_cli("history", "--output-lines", "x").output

    logs = run_cli("logs", run["run_id"][:8])
    assert logs.exit_code == 1  # the run failed
    assert logs.stdout == COUNT
    assert logs.stderr == "counter failure: exited with code 3\n"
    assert json.loads(run_cli("logs", run["run_id"], "-o", "json").stdout) == run


def test_logs_needs_a_run_id_that_names_one_run(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    store = Store(db_url)
    now = time.time()
    row = {
        "job_id": "nightly",
        "scheduled_time": now,
        "started_at": now,
        "finished_at": now,
        "outcome": "success",
        "exit_code": 0,
        "attempt": 1,
        "output_tail": "done\n",
        "error": None,
    }
    with store.write() as conn:
        conn.execute(
            store.runs.insert(),
            [{**row, "run_id": "abcd" + uuid.uuid4().hex[:28]} for _ in range(2)],
        )
    store.close()
    ambiguous = run_cli("logs", "abcd")
    assert ambiguous.exit_code == 1
    assert ambiguous.output.startswith("error: run id 'abcd' is ambiguous (abcd")
    assert run_cli("logs", "ab").output.startswith("error: run id 'ab' is too short")
    assert run_cli("logs", "ab%_").output == (
        "error: no run 'ab%_': `scheduler history` shows run ids\n"
    )


def test_resume_of_a_job_its_file_pauses_fails_and_says_why(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    path = write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    refused = run_cli("resume", "frozen")
    assert refused.exit_code == 1
    assert refused.output == (
        f"error: frozen stays paused: its file says `paused: true` ({path}:9); set it to "
        "false there (and commit), and the next reconcile resumes it\n"
    )
    assert run_cli("pause", "frozen").exit_code == 0
    both = run_cli("resume", "frozen")
    assert both.exit_code == 1
    assert "the operator's pause is lifted, but its file says" in both.output
    assert run_cli("resume", "nightly").output == "nightly was not paused\n"
    assert run_cli("pause", "nightly").exit_code == 0
    assert run_cli("resume", "nightly").output == "nightly resumed\n"


def test_get_and_logs_through_the_api(start_api: StartApi, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    remote = ("--url", daemon.base_url)
    local = json.loads(daemon.cli("get", "nightly", "-o", "json").stdout)
    through = json.loads(daemon.cli(*remote, "get", "nightly", "-o", "json").stdout)
    assert through == local and len(through["next_fire_times"]) == 5
    daemon.cli("trigger", "counter")
    with daemon.client() as api:
        runs = wait_for(
            lambda: [r for r in api.get("/jobs/counter/runs").json() if r["finished_at"]],
            "the triggered run to finish",
        )
        assert api.get(f"/runs/{runs[0]['run_id'][:6]}").json() == runs[0]
        assert api.get("/runs/ffffffff").status_code == 404
    logs = daemon.cli(*remote, "logs", runs[0]["run_id"])
    assert logs.stdout == runs[0]["output_tail"]
