"""``concurrency`` when a run is due while one is running: ``forbid`` skips the new one
(recorded ``skipped``), ``replace`` stops the old one (``interrupted``, "replaced") and runs
the new one, ``allow`` runs up to ``max_instances`` at once and skips beyond that."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.runner_helpers import (
    Harness,
    command_job,
    gone,
    harness,
    now,
    read_pid_async,
    wait_for_async,
)


async def running(h: Harness, job_id: str, count: int) -> None:
    async def probe() -> bool:
        await h.writer.flush()
        return [r["outcome"] for r in h.runs(job_id)].count("running") >= count

    await wait_for_async(probe, f"{count} running row(s) of {job_id}")


def test_forbid_skips_a_run_due_while_the_previous_one_runs(tmp_path: Path) -> None:
    spec = command_job(["sleep", "30"], concurrency="forbid")

    async def go() -> list[str]:
        async with harness(tmp_path, {"report": spec}) as h:
            assert h.runner.dispatch("report", now()) is None
            await running(h, "report", 1)
            reason = h.runner.dispatch("report", now())
            assert reason == "the previous run is still running (concurrency: forbid)"
            await h.runner.shutdown(grace=0)
            rows = h.runs("report")
            assert rows[1]["error"] == reason
            assert rows[1]["finished_at"] is not None
            return [r["outcome"] for r in rows]

    assert asyncio.run(go()) == ["interrupted", "skipped"]


def test_forbid_runs_again_once_the_previous_one_finished(tmp_path: Path) -> None:
    spec = command_job(["true"], concurrency="forbid")

    async def go() -> list[str]:
        async with harness(tmp_path, {"report": spec}) as h:
            assert h.runner.dispatch("report", now()) is None
            await h.idle()
            assert h.runner.dispatch("report", now()) is None
            await h.idle()
            return [r["outcome"] for r in h.runs("report")]

    assert asyncio.run(go()) == ["success", "success"]


def test_replace_stops_the_running_one_and_starts_the_new_one(tmp_path: Path) -> None:
    first_only = "if [ ! -e first.pid ]; then echo $$ > first.pid; exec sleep 30; fi; echo second"
    spec = command_job(first_only, cwd=str(tmp_path), concurrency="replace")

    async def go() -> list[dict[str, object]]:
        async with harness(tmp_path, {"sync": spec}) as h:
            assert h.runner.dispatch("sync", now()) is None
            first_pid = await read_pid_async(tmp_path / "first.pid")
            assert h.runner.dispatch("sync", now()) is None
            await h.idle()
            assert gone(first_pid), "the replaced run's process is still there"
            return h.runs("sync")

    old, new = asyncio.run(go())
    assert old["outcome"] == "interrupted"
    assert old["error"] == "replaced by a newer run (concurrency: replace)"
    assert old["finished_at"] is not None
    assert new["outcome"] == "success"
    assert new["output_tail"] == "second\n"


def test_allow_runs_up_to_max_instances_and_skips_beyond(tmp_path: Path) -> None:
    spec = command_job(["sleep", "30"], concurrency="allow", max_instances=2)

    async def go() -> list[dict[str, object]]:
        async with harness(tmp_path, {"crawl": spec}) as h:
            assert h.runner.dispatch("crawl", now()) is None
            assert h.runner.dispatch("crawl", now()) is None
            await running(h, "crawl", 2)  # both run at once
            assert h.runner.dispatch("crawl", now()) is not None
            await h.runner.shutdown(grace=0)
            return h.runs("crawl")

    rows = asyncio.run(go())
    assert sorted(str(r["outcome"]) for r in rows) == ["interrupted", "interrupted", "skipped"]
    (skipped,) = [r for r in rows if r["outcome"] == "skipped"]
    assert "max_instances" in str(skipped["error"])
