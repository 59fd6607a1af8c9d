"""``Runner.shutdown(grace)``: runs that finish within the grace are recorded as usual; the
rest are stopped as for a timeout (process group and all) and recorded ``interrupted``;
nothing is left running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.runner_helpers import command_job, gone, harness, now, process_state, read_pid_async


def test_shutdown_stops_a_long_run_and_lets_a_short_one_finish(tmp_path: Path) -> None:
    long = command_job(
        ["sh", "-c", "echo $$ > child.pid; sleep 30 & echo $! > grandchild.pid; wait"],
        cwd=str(tmp_path),
    )
    short = command_job(["sh", "-c", "sleep 0.2; echo done"])

    async def go() -> tuple[dict[str, Any], dict[str, Any], float]:
        async with harness(tmp_path, {"long": long, "short": short}) as h:
            assert h.runner.dispatch("long", now()) is None
            pids = [
                await read_pid_async(tmp_path / "child.pid"),
                await read_pid_async(tmp_path / "grandchild.pid"),
            ]
            assert h.runner.dispatch("short", now()) is None
            began = time.monotonic()
            await h.runner.shutdown(grace=0.5)
            took = time.monotonic() - began
            assert not h.runner.tasks
            for pid in pids:  # checked before the loop ends: shutdown itself stopped them
                assert gone(pid, timeout=0), f"pid {pid} left running ({process_state(pid)})"
            (long_row,) = h.runs("long")
            (short_row,) = h.runs("short")
            return long_row, short_row, took

    long_row, short_row, took = asyncio.run(go())
    assert long_row["outcome"] == "interrupted"
    assert long_row["error"] == "stopped: the scheduler shut down"
    assert long_row["finished_at"] is not None
    assert short_row["outcome"] == "success"
    assert short_row["output_tail"] == "done\n"
    assert took < 8.0


def test_shutdown_with_nothing_running_returns_at_once(tmp_path: Path) -> None:
    async def go() -> float:
        async with harness(tmp_path, {}) as h:
            began = time.monotonic()
            await h.runner.shutdown(grace=30)
            return time.monotonic() - began

    assert asyncio.run(go()) < 1.0
