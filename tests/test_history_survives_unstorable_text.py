"""Regression tests for issue 16 items 1 and 2: text no database column can hold (a NUL byte
from ``printf 'a\\0b'``, which PostgreSQL refuses; a lone surrogate from an undecodable file
name, which no driver can encode) used to stop run history for good: every later write of
every job failed (PostgreSQL), or the writer's task died silently (surrogates). Now such text
is stored with U+FFFD in its place, a row the database still refuses is written alone (so
the others are), and the writer goes on. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from scheduler.history import HistoryWriter, RunRecord, list_runs
from scheduler.store import Store
from tests.runner_helpers import command_job, harness, job, now

UNDECODABLE = os.fsdecode(b"caf\xe9.txt")  # 'caf\udce9.txt': Latin-1 bytes, not UTF-8


def listdir_of_a_latin1_name() -> None:
    raise FileNotFoundError(f"no such file: {UNDECODABLE}")


def test_nul_bytes_and_surrogates_are_stored_and_later_runs_recorded(
    tmp_path: Path, store_url: str
) -> None:
    jobs = {
        "nul": command_job("printf 'a\\0b'"),
        "surrogate": job(
            run={
                "type": "python",
                "function": f"{__name__}:listdir_of_a_latin1_name",
            }
        ),
        "after": command_job(["echo", "still recorded"]),
    }

    async def go() -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        async with harness(tmp_path, jobs, url=store_url) as h:
            for job_id in ("nul", "surrogate"):
                assert h.runner.dispatch(job_id, now()) is None
            await h.idle()
            assert h.runner.dispatch("after", now()) is None
            await h.idle()
            return {j: h.runs(j) for j in jobs}, h.writer.unhealthy()

    runs, problem = asyncio.run(go())
    (nul,) = runs["nul"]
    assert (nul["outcome"], nul["output_tail"]) == ("success", "a\ufffdb")
    (surrogate,) = runs["surrogate"]
    assert surrogate["outcome"] == "failure"
    assert "FileNotFoundError: no such file: caf\ufffd.txt" in surrogate["error"]
    (after,) = runs["after"]
    assert (after["outcome"], after["output_tail"]) == ("success", "still recorded\n")
    assert problem is None


def test_a_row_the_database_refuses_does_not_block_the_others(store_url: str) -> None:
    """A job id longer than its column (PostgreSQL refuses it; SQLite stores it): the rows
    written in the same batch are written all the same, and the writer stays healthy."""
    store = Store(store_url)

    async def go() -> str | None:
        writer = HistoryWriter(store)
        writer.start()
        for job_id in ("before", "x" * 300, "after"):
            writer.record(RunRecord(f"{len(job_id):032x}", job_id, None, 1.0, outcome="skipped"))
        await writer.close()
        return writer.unhealthy()

    try:
        problem = asyncio.run(go())
        recorded = {run["job_id"] for run in list_runs(store, limit=10)}
    finally:
        store.close()
    assert {"before", "after"} <= recorded
    assert problem is None
