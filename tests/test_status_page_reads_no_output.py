"""The status page reads each job's newest outcomes, never run output. Regression for issue
16.6: it loaded 5,000 runs with their 64 KiB output tails per request, and 20 concurrent
loads took the daemon to 1.87 GB (``bench/bench_status_page.py`` measures it). In-process
(the ASGI app through httpx) with a real SQLite store, every SQL statement seen."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import event

from scheduler.api import create_app
from scheduler.store import Store
from tests.conftest import RunCli, WriteJobs
from tests.test_api_health import FakeDaemon

JOBS = """\
jobs:
  busy:
    schedule: {interval: 1h}
    run: {type: command, command: ["true"]}
  rare:
    schedule: {interval: 1d}
    run: {type: command, command: ["true"]}
"""


def page(store: Store) -> str:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(FakeDaemon(store), token="t"))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://daemon", headers={"Authorization": "Bearer t"}
        ) as client:
            return await client.get("/")

    response = asyncio.run(call())
    assert response.status_code == 200
    return response.text


def test_the_page_shows_recent_outcomes_without_reading_output(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    store = Store(db_url)
    try:
        now = time.time()
        rows: list[dict[str, Any]] = [
            {
                "run_id": uuid.uuid4().hex,
                "job_id": "busy",
                "scheduled_time": now - i,
                "started_at": now - i,
                "finished_at": now - i + 1,
                "outcome": "failure" if i == 0 else "success",
                "exit_code": 0,
                "attempt": 1,
                "output_tail": "x" * 65536,
                "error": None,
            }
            for i in range(30)
        ]
        rows.append({**rows[1], "run_id": uuid.uuid4().hex, "job_id": "rare"})
        with store.write() as conn:
            conn.execute(store.runs.insert(), rows)

        statements: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        html = page(store)

        assert not [s for s in statements if "output_tail" in s], statements
        busy = re.search(r'id="job-busy">(.*?)</tr>', html, re.DOTALL)
        rare = re.search(r'id="job-rare">(.*?)</tr>', html, re.DOTALL)
        assert busy and rare
        strip = re.findall(r'<span class="outcome-(\w+)" title', busy.group(1))
        assert strip == ["success"] * 19 + ["failure"]  # the 20 newest, oldest first
        assert re.findall(r'<span class="outcome-(\w+)" title', rare.group(1)) == ["success"]
    finally:
        store.close()
