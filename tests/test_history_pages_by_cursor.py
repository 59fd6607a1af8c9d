"""Run history pages by cursor (issue 12): following each page's cursor returns every run
exactly once, newest first, for all jobs or one, through the library, the command line and
the API; a cursor stays valid when newer runs arrive or the runs of its page are pruned;
a cursor that is not one is refused with what to do instead."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from scheduler.api import create_app
from scheduler.history import BadCursor, prune, runs_page
from scheduler.store import Store
from tests.conftest import RunCli, WriteJobs
from tests.test_api_health import FakeDaemon

T0 = 1_780_000_000.0
JOBS = """\
jobs:
  report:
    schedule: {interval: 1d}
    run: {type: command, command: ["true"]}
  export:
    schedule: {interval: 1d}
    run: {type: command, command: ["true"]}
"""


def row(job_id: str, started: float, attempt: int = 1, outcome: str = "success") -> dict[str, Any]:
    return {
        "run_id": uuid.uuid4().hex,
        "job_id": job_id,
        "scheduled_time": started,
        "started_at": started,
        "finished_at": None if outcome == "running" else started + 1,
        "outcome": outcome,
        "exit_code": 0,
        "attempt": attempt,
        "output_tail": f"run at {started}",
        "error": None,
    }


def fill(store: Store) -> list[dict[str, Any]]:
    """53 runs of two jobs, with ties: retries starting in the same second and runs of both
    jobs starting at the same instant, so a page boundary falls inside a tie."""
    rows = []
    for n in range(20):
        rows.append(row("report", T0 + n * 10.25))
        rows.append(row("export", T0 + n * 10.25))  # the same instant as report's
    for n in range(13):
        rows.append(row("report", T0 + 500.5, attempt=1 + n % 3))  # 13 tries, one second
    with store.write() as conn:
        conn.execute(store.runs.insert(), rows)
    return rows


def newest_first(rows: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(rows, key=lambda r: (r["started_at"], r["attempt"], r["run_id"]))
    return [r["run_id"] for r in reversed(ordered)]


def every_page(store: Store, job_id: str | None, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page, cursor = runs_page(store, job_id, limit, cursor)
        pages.append([r["run_id"] for r in page])
        if cursor is None:
            return pages


def test_following_the_cursor_returns_every_run_once_newest_first(store_url: str) -> None:
    store = Store(store_url)
    try:
        rows = fill(store)
        for job_id, limit in ((None, 7), (None, 53), (None, 1), ("report", 4), ("export", 20)):
            wanted = newest_first([r for r in rows if job_id in (None, r["job_id"])])
            pages = every_page(store, job_id, limit)
            assert [run for page in pages for run in page] == wanted, (job_id, limit)
            assert all(len(page) == limit for page in pages[:-1])
            assert 0 < len(pages[-1]) <= limit  # no empty last page
        assert runs_page(store, None, 0) == ([], None)  # `get JOB --runs 0`
    finally:
        store.close()


def test_a_cursor_outlives_new_runs_and_the_pruning_of_its_page(db_url: str) -> None:
    store = Store(db_url)
    try:
        rows = [row("report", T0 + n) for n in range(30)]
        stuck = row("report", T0 - 100, outcome="running")  # never pruned
        with store.write() as conn:
            conn.execute(store.runs.insert(), [*rows, stuck])
        first, cursor = runs_page(store, "report", 10)
        assert cursor is not None
        with store.write() as conn:  # runs newer than the whole history so far
            conn.execute(store.runs.insert(), [row("report", T0 + 1000 + n) for n in range(5)])
        second, cursor = runs_page(store, "report", 10, cursor)
        assert [r["run_id"] for r in first + second] == newest_first(rows)[:20]

        assert prune(store, T0 + 25) == 25  # the rows of the second page and the cursor's own
        rest, cursor = runs_page(store, "report", 10, cursor)
        assert [r["run_id"] for r in rest] == [stuck["run_id"]]
        assert cursor is None
    finally:
        store.close()


def test_a_bad_cursor_is_refused_with_what_to_do(db_url: str) -> None:
    store = Store(db_url)
    try:
        for bad in ("yesterday", "12.5_x_abc", "12.5_1_", "nan_1_abc", ""):
            with pytest.raises(BadCursor, match="pass the one a previous page gave"):
                runs_page(store, None, 10, bad)
    finally:
        store.close()


def test_the_command_line_prints_the_next_page_command(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    store = Store(db_url)
    try:
        rows = fill(store)
    finally:
        store.close()
    seen: list[str] = []
    args = ["history", "report", "--limit", "5", "-o", "json"]
    while True:
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
        seen += [r["run_id"] for r in json.loads(result.stdout)]
        if not result.stderr:
            break
        hint = result.stderr.strip()
        assert hint.startswith("older runs: scheduler history report --before ")
        args = ["history", "report", "--limit", "5", "-o", "json", *hint.split()[-2:]]
    assert seen == newest_first([r for r in rows if r["job_id"] == "report"])

    text = run_cli("history", "--before", "not-a-cursor")
    assert text.exit_code == 1
    assert "'not-a-cursor' is not a history cursor" in text.output


def test_the_api_links_the_next_page(db_url: str) -> None:
    store = Store(db_url)
    try:
        rows = fill(store)

        async def walk(url: str) -> tuple[list[str], list[str], httpx.Response]:
            transport = httpx.ASGITransport(app=create_app(FakeDaemon(store), token="t"))
            seen: list[str] = []
            links = []
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://daemon",
                headers={"Authorization": "Bearer t"},
            ) as client:
                next_url: str | None = url
                while next_url:
                    response = await client.get(next_url)
                    assert response.status_code == 200, response.text
                    seen += [r["run_id"] for r in response.json()]
                    next_url = response.links.get("next", {}).get("url")
                    links.append(next_url or "")
                bad = await client.get("/runs?before=somewhere")
            return seen, links, bad

        seen, links, bad = asyncio.run(walk("/runs?limit=8"))
        assert seen == newest_first(rows)
        assert all(link.startswith("/runs?limit=8&before=") for link in links[:-1])
        assert links[-1] == ""
        assert bad.status_code == 422
        assert "is not a history cursor" in bad.json()["detail"]
    finally:
        store.close()
