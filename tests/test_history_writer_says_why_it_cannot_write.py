"""While run history cannot be written the writer says why (the daemon's ``/healthz`` turns
503 with that reason, issue 16 "Done when"), keeps the rows and writes them once it can;
at shutdown it gives up after its patience, logging the runs it lost, so SIGTERM completes
(issue 16 item 1: it never did while a write kept failing)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest

from scheduler.history import HistoryWriter, RunRecord, list_runs
from scheduler.store import Store
from tests.runner_helpers import wait_for_async


def skipped(job_id: str) -> RunRecord:
    return RunRecord(job_id.encode().hex().rjust(32, "0"), job_id, None, 1.0, outcome="skipped")


def test_the_reason_is_reported_and_the_rows_written_once_possible(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    gone: list[str] = ["the store file s.db was deleted"]

    async def go() -> tuple[str | None, int, str | None]:
        writer = HistoryWriter(store, retry=0.05, check=lambda: gone[0] if gone else None)
        writer.start()
        writer.record(skipped("a"))

        async def problem() -> str | None:
            return writer.unhealthy()

        reason = await wait_for_async(problem, "the writer to say why")
        held = len(list_runs(store))
        gone.clear()
        await writer.flush()
        after = writer.unhealthy()
        await writer.close()
        return reason, held, after

    try:
        reason, held, after = asyncio.run(go())
        written = [r["job_id"] for r in list_runs(store)]
    finally:
        store.close()
    assert reason == "run history cannot be written: the store file s.db was deleted"
    assert held == 0
    assert written == ["a"]
    assert after is None


def test_shutdown_gives_up_after_its_patience_and_names_the_lost_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 's.db'}")
    store.engine.dispose()
    shutil.rmtree(folder)  # the volume went away: every write fails (OperationalError)

    async def go() -> None:
        writer = HistoryWriter(store, retry=0.05)
        writer.start()
        writer.record(skipped("a"))
        await writer.close(patience=0.3)

    try:
        with caplog.at_level(logging.ERROR, "scheduler.history"):
            asyncio.run(go())
    finally:
        store.close()
    lost = [r.getMessage() for r in caplog.records if "lost at shutdown" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].startswith("1 run record(s) lost at shutdown (run history cannot be written: ")
    assert lost[0].endswith(f"): {skipped('a').run_id}")
