"""``Scheduler(jobs_dir=..., db=...)`` inside a FastAPI app (issue 9, embedding): started by
the app's lifespan on the app's own loop, it is the daemon (reconcile at start and on file
change, runs recorded in history), answers its Python API, and its router mounted under a
prefix serves the HTTP API with the app's routes beside it. Served for real on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from scheduler import Scheduler
from scheduler.embed import Refused
from scheduler.errors import JobNotFound, SchedulerError
from tests.app_helpers import serve_app, wait_until
from tests.conftest import WriteJobs

TICK = """\
jobs:
  tick:
    schedule: {interval: 1s}
    run: {type: command, command: ["echo", "tick from the app"]}
"""
LATER = """\
jobs:
  later:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: ["echo", "later"]}
"""


def host_app(sched: Scheduler) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sched:
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello() -> dict[str, int]:
        return {"jobs": len(await sched.jobs())}

    app.include_router(sched.router, prefix="/scheduler")
    return app


@pytest.fixture(autouse=True)
def _runtime(monkeypatch: pytest.MonkeyPatch, runtime_dir: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))


def test_an_app_runs_the_scheduler_and_serves_its_api(
    write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs("a.yaml", TICK)
    sched = Scheduler(jobs_dir=jobs_dir, db=db_url)
    term_handler = signal.getsignal(signal.SIGTERM)

    async def main() -> None:
        async with (
            serve_app(host_app(sched)) as base,
            httpx.AsyncClient(
                base_url=base, headers={"Content-Type": "application/json"}, timeout=30
            ) as http,
        ):
            # The start-up reconcile happened before the app served its first request.
            assert (await http.get("/hello")).json() == {"jobs": 1}
            listed = (await http.get("/scheduler/jobs")).json()["jobs"]
            assert [(j["id"], j["schedule"]) for j in listed] == [("tick", "Every 1s")]
            assert (await sched.get("tick"))["spec"]["run"]["command"][1] == "tick from the app"

            # It fires and records, like the daemon.
            runs = await wait_until(
                lambda: _successes(sched, "tick"), "a run of tick in the history"
            )
            assert runs[0]["output_tail"] == "tick from the app\n"
            over_http = (await http.get("/scheduler/jobs/tick/runs")).json()
            assert over_http[-1]["run_id"] == runs[-1]["run_id"]

            # Operator actions from Python and over HTTP.
            assert (await sched.pause("tick"))["paused"] is True
            assert (await http.get("/scheduler/jobs/tick")).json()["paused"] is True
            resumed = await http.post("/scheduler/jobs/tick/resume")
            assert resumed.json()["result"]["paused"] is False
            with pytest.raises(JobNotFound, match="no job 'nope'"):
                await sched.pause("nope")
            with pytest.raises(JobNotFound):
                await sched.history("nope")
            assert (await http.get("/scheduler/jobs/nope")).status_code == 404

            # A file change is reconciled by the embedded watcher.
            write_jobs("b.yaml", LATER)
            await wait_until(
                lambda: _ids(sched, "later"), "the new file's job, reconciled by the watcher"
            )
            # The mounted API keeps the daemon's guard without tokens: local clients only.
            foreign = await http.post(
                "/scheduler/jobs/tick/pause", headers={"Origin": "http://evil.example"}
            )
            assert foreign.status_code == 403
            assert (await http.get("/scheduler/healthz")).json() == {"status": "ok"}
            # The status page and its links work under the prefix.
            assert 'href="ui/jobs/tick"' in (await http.get("/scheduler/")).text
            page = await http.get("/scheduler/ui/jobs/tick")
            assert page.status_code == 200 and "tick from the app" in page.text
            # The docs page points at the mounted schema, not the app's root.
            assert "/scheduler/openapi.json" in (await http.get("/scheduler/docs")).text

        # Stopped with the app: using it now says so.
        with pytest.raises(SchedulerError, match="start the scheduler first"):
            await sched.jobs()

    asyncio.run(main())
    assert signal.getsignal(signal.SIGTERM) == term_handler  # the host's signals untouched


async def _successes(sched: Scheduler, job_id: str) -> list[dict[str, object]]:
    return [r for r in await sched.history(job_id) if r["outcome"] == "success"]


async def _ids(sched: Scheduler, job_id: str) -> bool:
    return job_id in {job["id"] for job in await sched.jobs()}


def test_tokens_guard_the_mounted_router_and_a_held_store_is_refused(
    write_jobs: WriteJobs, jobs_dir: Path, db_url: str, tmp_path: Path
) -> None:
    write_jobs("a.yaml", LATER)
    tokens = tmp_path / "tokens"
    tokens.write_text("viewer-Pk2Jd8Wq5Rt1 read viewer\napp-Ms7Vb3Xc9Ln4 operate app\n")
    sched = Scheduler(jobs_dir=jobs_dir, db=db_url, tokens_file=tokens)

    async def main() -> None:
        async with serve_app(host_app(sched)) as base:

            def client(token: str) -> httpx.AsyncClient:
                return httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
                )

            async with (
                client("viewer-Pk2Jd8Wq5Rt1") as viewer,
                client("app-Ms7Vb3Xc9Ln4") as app,
                client("guess") as stranger,
            ):
                assert (await viewer.get("/scheduler/jobs")).status_code == 200
                refused = await viewer.post("/scheduler/jobs/later/pause")
                assert refused.status_code == 403
                assert "needs operate" in refused.json()["detail"]
                assert (await app.post("/scheduler/jobs/later/pause")).status_code == 200
                assert (await app.post("/scheduler/reconcile")).status_code == 403
                assert (await stranger.get("/scheduler/jobs")).status_code == 401
            # A second scheduler on the same SQLite store is refused at start, with why.
            second = Scheduler(jobs_dir=jobs_dir, db=db_url)
            with pytest.raises(SchedulerError, match="already"):
                await second.start()

    asyncio.run(main())


def test_app_processes_on_postgresql_share_the_store_one_leads(
    write_jobs: WriteJobs, jobs_dir: Path, pg_database: Callable[[], str]
) -> None:
    """Two app workers (here two Schedulers on one loop) on one PostgreSQL store: both
    start, one leads and the other stands by, a pause asked of the standby is done by the
    leader, and when the leader's app stops the standby takes over and fires."""
    write_jobs("a.yaml", TICK)
    url = pg_database()
    first = Scheduler(jobs_dir=jobs_dir, db=url, lease=2.0)
    second = Scheduler(jobs_dir=jobs_dir, db=url, lease=2.0)

    async def main() -> None:
        await first.start()
        await second.start()  # returns once it stands by
        try:
            assert (await second.pause("tick"))["paused"] is True  # handed to the leader
            assert (await first.get("tick"))["paused"] is True
            await second.resume("tick")
            await first.stop()
            stopped_at = time.time()
            await wait_until(
                lambda: _ran_after(second, stopped_at), "a tick fired by the new leader"
            )
        finally:
            await first.stop()
            await second.stop()

    asyncio.run(main())


async def _ran_after(sched: Scheduler, moment: float) -> bool:
    runs = await sched.history("tick", limit=5)
    return any(datetime.fromisoformat(r["started_at"]).timestamp() > moment for r in runs)


ECHO = """\
templates:
  echo:
    params:
      word: {type: string, required: true}
    limits: {max_jobs: 2, schedules: [interval, at]}
    run: {type: command, command: ["echo", "${params.word}"]}
jobs:
  later:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: ["echo", "later"]}
"""


def test_the_python_api_creates_changes_runs_and_removes_instances(
    write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs("a.yaml", ECHO)

    async def outputs(sched: Scheduler, job_id: str) -> list[str]:
        runs = await sched.history(job_id)
        return sorted(r["output_tail"] for r in runs if r["outcome"] == "success")

    async def main() -> None:
        async with Scheduler(jobs_dir=jobs_dir, db=db_url) as sched:
            (template,) = await sched.templates()
            assert template["name"] == "echo" and template["params"]["required"] == ["word"]
            job = await sched.create("echo", {"word": "one"}, {"interval": "1h"}, id="echo-one")
            assert (job["id"], job["source"]) == ("echo-one", "template echo")

            refusals = [
                (sched.create("echo", {"word": "x"}, {"interval": "1h"}, id="echo-one"), 409),
                (sched.create("echo", {}, {"interval": "1h"}), 422),
                (sched.create("echo", {"word": "x"}, {"cron": "0 9 * * *"}), 422),
                (sched.create("nope", {"word": "x"}, {"interval": "1h"}), 404),
                (sched.remove("later"), 409),  # a file's job: edit its file
                (sched.template("nope"), 404),
            ]
            for call, status in refusals:
                with pytest.raises(Refused) as refused:
                    await call
                assert refused.value.status == status, refused.value
            with pytest.raises(Refused, match=r"params\.word: missing required parameter"):
                await sched.create("echo", {}, {"interval": "1h"})

            # One-off runs, now and in a second, with this run's own params.
            await sched.run_once("echo-one", params={"word": "; rm -rf / --now"})
            await sched.run_once("echo-one", in_="1s")
            await wait_until(lambda: _count(outputs(sched, "echo-one"), 2), "the two one-off runs")
            assert await outputs(sched, "echo-one") == ["; rm -rf / --now\n", "one\n"]

            changed = await sched.modify("echo-one", params={"word": "two"})
            assert changed["spec"]["run"]["command"] == ["echo", "two"]
            await sched.remove("echo-one")
            with pytest.raises(JobNotFound):
                await sched.get("echo-one")
            assert [j["id"] for j in await sched.jobs()] == ["later"]

    asyncio.run(main())


async def _count(found: Awaitable[list[str]], count: int) -> bool:
    return len(await found) >= count
