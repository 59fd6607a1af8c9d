"""Plain python functions run in threads of their own, at most ``PYTHON_THREADS`` at once
(issue 16 item 5): while that many hold their threads, another waits, and if its timeout
ends the wait first it never starts (its function never runs) and is recorded ``timeout``;
the held ones finish normally once released."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from scheduler.handlers.python import PYTHON_THREADS
from tests.runner_helpers import harness, job, now

RELEASE = threading.Event()
CALLED: list[str] = []


def hold() -> str:
    RELEASE.wait(30)
    return "released"


def mark() -> None:
    CALLED.append("late")


def python_job(function: str, **fields: str) -> dict[str, object]:
    return job(run={"type": "python", "function": f"{__name__}:{function}"}, **fields)


def test_a_job_that_times_out_waiting_for_a_thread_never_runs(tmp_path: Path) -> None:
    holders = [f"hold-{n}" for n in range(PYTHON_THREADS)]
    jobs = {job_id: python_job("hold") for job_id in holders}
    jobs["late"] = python_job("mark", timeout="1s")

    async def go() -> dict[str, list[dict[str, object]]]:
        async with harness(tmp_path, jobs) as h:
            for job_id in holders:
                assert h.runner.dispatch(job_id, now()) is None
            assert h.runner.dispatch("late", now()) is None
            late = await h.finished("late")
            RELEASE.set()
            await h.idle()
            return {"late": late, **{j: h.runs(j) for j in holders}}

    try:
        runs = asyncio.run(go())
    finally:
        RELEASE.set()
    (late,) = runs["late"]
    assert late["outcome"] == "timeout"
    assert CALLED == []
    assert {r["outcome"] for j in holders for r in runs[j]} == {"success"}
