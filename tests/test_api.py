"""The daemon's HTTP API against a real daemon on 127.0.0.1: every endpoint, auth,
unknown ids, an invalid file during /reconcile, metrics after some runs."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.api_helpers import StartApi
from tests.conftest import WriteJobs, simple_job
from tests.daemon_helpers import wait_for

JOBS = """\
jobs:
  report:
    description: Nightly report
    schedule: {cron: "0 9 * * 1-5"}
    run: {type: command, command: "echo made the report"}
  broken:
    schedule: {interval: 1h}
    run: {type: command, command: ["false"]}
"""


def test_jobs_endpoints_match_the_command_line(start_api: StartApi, write_jobs: WriteJobs) -> None:
    path = write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with daemon.client() as api:
        listing = api.get("/jobs").json()
        assert listing["total"] == 2
        cli_jobs = json.loads(daemon.cli("jobs", "-o", "json").stdout)
        assert listing["jobs"] == [j for j in cli_jobs if not j["id"].startswith("scheduler.")]
        one = api.get("/jobs/report").json()
        assert one["source"] == f"{path}:2"
        assert one["schedule"] == "At 09:00, Monday through Friday"
        assert one["spec"]["run"] == {
            "type": "command",
            "command": "echo made the report",
            "cwd": None,
            "env": {},
        }
        missing = api.get("/jobs/nope")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "no job 'nope': GET /jobs lists them"}
        assert api.get("/jobs/nope/runs").status_code == 404
        assert api.post("/jobs/nope/trigger").status_code == 404


def test_operator_actions_and_runs(start_api: StartApi, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with daemon.client() as api:
        assert api.post("/jobs/report/trigger").json()["result"]["started"] is True
        runs = wait_for(
            lambda: [r for r in api.get("/jobs/report/runs").json() if r["finished_at"]] or None,
            "a finished run",
        )
        assert runs[0]["outcome"] == "success"
        assert runs[0]["output_tail"] == "made the report\n"
        history = json.loads(daemon.cli("history", "report", "-o", "json").stdout)
        assert api.get("/jobs/report/runs", params={"limit": 1}).json() == history[:1]

        assert api.post("/jobs/report/pause").json()["result"]["paused"] is True
        assert api.get("/jobs/report").json()["paused_by"] == "operator"
        assert api.post("/jobs/report/resume").json()["result"]["paused"] is False
        assert api.get("/jobs/report").json()["next_run_time"] is not None

        gone = api.delete("/jobs/report")
        assert gone.status_code == 409
        assert gone.json()["detail"]["source"].endswith("a.yaml:2")
        assert "delete it from that file" in gone.json()["detail"]["message"]


def test_plan_and_reconcile_and_an_invalid_file(
    start_api: StartApi, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with daemon.client() as api:
        assert api.get("/plan").json()["add"] == []
        before = api.get("/jobs").json()
        bad = write_jobs("b.yaml", simple_job("extra", cron="0 9 * * MON-FOO"))
        refused = api.post("/reconcile")
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail["lines"] == [
            f"{bad}:4:13: cron: day-of-week field 'MON-FOO': unknown name "
            "'FOO' (use SUN-SAT or 0-7)"
        ]
        assert api.get("/plan").status_code == 422
        metrics = api.get("/metrics").text
        # The refused POST, and the watcher's own reconcile of the same change if it came first.
        errors = re.search(r"^scheduler_reconcile_errors_total (\S+)$", metrics, re.M)
        assert errors is not None and float(errors.group(1)) >= 1
        assert "scheduler_last_reconcile_success 0.0" in metrics
        assert api.get("/jobs").json() == before  # nothing changed
        write_jobs("b.yaml", simple_job("extra"))
        planned = api.get("/plan").json()
        assert planned["add"] == ["extra"] or planned["unchanged"].count("extra") == 1
        applied = api.post("/reconcile").json()
        assert "extra" in applied["add"] + applied["unchanged"]
        assert api.get("/jobs/extra").status_code == 200


def test_health_version_and_metrics(start_api: StartApi, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with daemon.client() as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        assert api.get("/version").json()["version"]
        api.post("/jobs/report/trigger")
        api.post("/jobs/broken/trigger")
        api.post("/jobs/report/pause")

        def scraped() -> str | None:
            # Both runs: they end in either order (waiting for one only was a race).
            text = api.get("/metrics").text
            ended = (
                'scheduler_runs_total{job="broken",outcome="failure"} 1.0',
                'scheduler_runs_total{job="report",outcome="success"} 1.0',
            )
            return text if all(line in text for line in ended) else None

        metrics = wait_for(scraped, "both runs in the metrics")
        assert "scheduler_jobs_stored 2.0" in metrics
        assert "scheduler_jobs_paused 1.0" in metrics
        assert "scheduler_run_duration_seconds_bucket" in metrics
        assert "scheduler_start_lag_seconds_count 2.0" in metrics
        assert "scheduler_last_reconcile_success 1.0" in metrics
        assert "scheduler_reconcile_errors_total 0.0" in metrics
        assert api.get("/metrics").headers["content-type"].startswith("text/plain")


def test_a_token_guards_every_endpoint_but_healthz(
    start_api: StartApi, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api(env={"SCHEDULER_API_TOKEN": "s3cret"})
    with (
        daemon.client() as anonymous,
        daemon.client("wrong") as wrong,
        daemon.client("s3cret") as api,
    ):
        # /openapi.json and /docs too (issue 13.5: the schema was public).
        paths = ("/jobs", "/jobs/report", "/plan", "/metrics", "/", "/version", "/openapi.json")
        for path in (*paths, "/docs"):
            assert anonymous.get(path).status_code == 401, path
            assert wrong.get(path).status_code == 401, path
            assert api.get(path).status_code == 200, path
        assert anonymous.post("/jobs/report/trigger").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/jobs").headers["www-authenticate"] == "Bearer"


def test_a_public_bind_without_a_token_is_refused(tmp_path: Path, jobs_dir: Path) -> None:
    def run(bind: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "scheduler",
                "--jobs-dir",
                str(jobs_dir),
                "--db",
                f"sqlite:///{tmp_path / 's.db'}",
                "run",
                "--http",
                bind,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    started = time.monotonic()
    public = run("0.0.0.0:0")
    assert public.returncode == 1
    assert "refusing to serve the API on 0.0.0.0 without SCHEDULER_API_TOKEN" in public.stderr
    assert time.monotonic() - started < 20  # refused at start-up, before any work
    bad = run("localhost:http")
    assert bad.returncode == 1 and "expected HOST:PORT or PORT" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run(f"127.0.0.1:{port}")
    assert busy.returncode == 1
    assert f"cannot serve the HTTP API on 127.0.0.1:{port}: Address already in use" in busy.stderr


def test_the_command_line_can_act_through_the_api(
    start_api: StartApi, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    """`--url` (SCHEDULER_URL): a daemon on another host is steered through its API, with
    the same output and errors as locally; no store access is needed."""
    write_jobs("a.yaml", JOBS)
    daemon = start_api(env={"SCHEDULER_API_TOKEN": "s3cret"})
    remote = {
        **daemon.env,
        "SCHEDULER_URL": daemon.base_url,
        "SCHEDULER_API_TOKEN": "s3cret",
        "SCHEDULER_DB": f"sqlite:///{tmp_path / 'elsewhere.db'}",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scheduler", *args],
            env=remote,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert {j["id"] for j in json.loads(cli("jobs", "-o", "json").stdout)} == {"report", "broken"}
    assert cli("pause", "report").stdout.strip() == "report paused"
    assert cli("resume", "report").stdout.strip() == "report resumed"
    assert cli("trigger", "report").returncode == 0
    wait_for(lambda: json.loads(cli("history", "report", "-o", "json").stdout) or None, "a run")
    assert cli("trigger", "report").returncode == 0
    wait_for(
        lambda: len(json.loads(cli("history", "report", "-o", "json").stdout)) >= 2 or None,
        "a second run",
    )
    newest = cli("history", "report", "--limit", "1", "-o", "json")  # the page's cursor, by API
    hint = newest.stderr.strip()
    assert hint.startswith("older runs: scheduler history report --before "), hint
    older = cli("history", "report", "--limit", "1", "-o", "json", *hint.split()[-2:])
    assert json.loads(older.stdout)[0]["run_id"] != json.loads(newest.stdout)[0]["run_id"]
    assert json.loads(cli("reconcile", "-o", "json").stdout)["unchanged"] == ["broken", "report"]
    assert cli("trigger", "nope").stderr.startswith("error: no job 'nope'")
    assert not (tmp_path / "elsewhere.db").exists()  # the local store was never opened
    unauthorized = subprocess.run(
        [sys.executable, "-m", "scheduler", "--url", daemon.base_url, "jobs"],
        env={k: v for k, v in remote.items() if k != "SCHEDULER_API_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unauthorized.returncode == 1
    assert "set SCHEDULER_API_TOKEN to the daemon's token" in unauthorized.stderr
