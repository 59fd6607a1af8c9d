"""examples/research_app (issue 9): the seed's scheduling routes on the embedded scheduler,
served by uvicorn on 127.0.0.1 and driven over HTTP: a search scheduled with a query and an
interval, run now, its results stored; its analysis created by the search run and fired a
second later (RESEARCH_ANALYSIS_DELAY, 5 minutes by default); an export per search and
format; refusals from the templates' limits; a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_helpers import wait_for

APP = Path(__file__).resolve().parent.parent / "examples" / "research_app"


class App:
    def __init__(self, tmp_path: Path, runtime_dir: Path) -> None:
        self.data = tmp_path / "data"
        self.log_path = tmp_path / "app.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "RESEARCH_"))}
        env.update(
            XDG_RUNTIME_DIR=str(runtime_dir),
            PYTHONPATH=os.pathsep.join([str(APP), *filter(None, [env.get("PYTHONPATH")])]),
            RESEARCH_DATA=str(self.data),
            RESEARCH_STORE=f"sqlite:///{tmp_path / 'scheduler.db'}",
            RESEARCH_ANALYSIS_DELAY="1s",
        )
        argv = [sys.executable, "-m", "uvicorn", "research_app.app:app", "--port", "0"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=APP, env=env, stdout=log, stderr=log)
        found = wait_for(
            lambda: re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", self.log()),
            f"the app to serve (log: {self.log_path})",
        )
        self.http = httpx.Client(
            base_url=found.group(1), headers={"Content-Type": "application/json"}, timeout=30
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runs(self, job_id: str) -> list[dict[str, Any]]:
        answer = self.http.get(f"/scheduler/jobs/{job_id}/runs")
        return list(answer.json()) if answer.status_code == 200 else []


@pytest.fixture
def app(tmp_path: Path, runtime_dir: Path) -> Iterator[App]:
    started = App(tmp_path, runtime_dir)
    try:
        yield started
    finally:
        started.http.close()
        if started.proc.poll() is None:
            started.proc.kill()
            started.proc.wait()


def test_searches_exports_and_analyses_run_in_the_app(app: App) -> None:
    http = app.http
    created = http.post("/search", json={"query": "AI news; rm -rf /", "interval_hours": 6})
    assert created.status_code == 201, created.text
    assert created.json() == {"job_id": "search-1", "search_id": 1, "message": "search scheduled"}
    job = http.get("/scheduler/jobs/search-1").json()
    assert job["schedule"] == "Every 6h"
    assert job["spec"]["run"]["kwargs"]["query"] == "AI news; rm -rf /"  # a value, not a command

    # Refused by the app's own model, and by the template's limits (no search every minute).
    assert http.post("/search", json={"query": "x"}).status_code == 422
    every_minute = http.post("/search", json={"query": "x", "cron_expression": "* * * * *"})
    assert every_minute.status_code == 422
    assert "(limits.min_interval: 1h)" in every_minute.json()["detail"]

    # A run now: results stored, and the analysis it scheduled runs a second later.
    assert http.post("/searches/1/run").status_code == 202
    search_run = wait_for(
        lambda: [r for r in app.runs("search-1") if r["outcome"] == "success"] or None,
        "the search run",
    )[0]
    assert "6 results for 'AI news; rm -rf /'" in search_run["output_tail"]
    analysed = wait_for(
        lambda: http.get("/searches/1").json()["analyses"] or None, "the delayed analysis"
    )
    assert analysed[0]["trends"] == ["bing", "google"]
    found = http.get("/searches/1").json()
    assert [r["source"] for r in found["results"]] == ["bing"] * 3 + ["google"] * 3

    def analysis_runs() -> list[dict[str, Any]] | None:
        runs = http.get("/scheduler/runs", params={"limit": 50}).json()
        found = [r for r in runs if r["job_id"].startswith("analysis")]
        return found if found and found[0]["outcome"] != "running" else None

    analysis = wait_for(analysis_runs, "the analysis run recorded")
    assert [r["outcome"] for r in analysis] == ["success"]
    assert analysis[0]["scheduled_time"] > search_run["started_at"]

    # An export per search and format.
    export = {"search_id": 1, "format": "json", "cron_expression": "0 8 * * 1"}
    assert http.post("/export", json=export).json()["job_id"] == "export-1-json"
    assert http.post("/export", json=export).status_code == 409  # that pair exists
    assert http.post("/export", json={**export, "search_id": 99}).status_code == 404
    assert http.post("/scheduler/jobs/export-1-json/runs", json={}).status_code < 300
    wait_for(
        lambda: [r for r in app.runs("export-1-json") if r["outcome"] == "success"] or None,
        "the export run",
    )
    exported = json.loads((app.data / "exports" / "search-1.json").read_text())
    assert len(exported) == 6

    # Stopping a search removes it and its exports; the app stops cleanly with the scheduler.
    assert http.delete("/searches/1").status_code == 204
    ids = {j["id"] for j in http.get("/scheduler/jobs").json()["jobs"]}
    assert not {"search-1", "export-1-json"} & ids
    app.proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down cleanly (its exit is -SIGTERM).
    assert app.proc.wait(30) == -signal.SIGTERM
    log = app.log()
    assert "scheduler.daemon: scheduler running" in log
    stopped = log.index("scheduler.daemon: stopped")  # by the app's lifespan, before it ends
    assert stopped < log.index("Application shutdown complete")
    assert "Traceback" not in log
