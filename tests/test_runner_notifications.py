"""Notifiers: ``on_failure`` after each failed try, ``on_success`` after a success,
``on_permanent_failure`` once after the last retry. Commands get the run's details in their
environment, http notifiers as a JSON body. A failing notifier is recorded in the run's
``error`` and never holds up the job's next run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.runner_helpers import (
    Received,
    command_job,
    gone,
    harness,
    http_server,
    json_body,
    now,
    read_pid_async,
    run_once,
    wait_for_async,
)

LINE = 'echo "$SCHEDULER_JOB_ID $SCHEDULER_OUTCOME $SCHEDULER_EXIT_CODE $SCHEDULER_RUN_ID"'


def writes_to(path: Path) -> dict[str, Any]:
    """A command notifier appending one line about the run to ``path``."""
    return {"type": "command", "command": f"{LINE} >> {path}"}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_on_failure_gets_the_run_in_its_environment(tmp_path: Path) -> None:
    failed, succeeded = tmp_path / "failed.txt", tmp_path / "succeeded.txt"
    spec = command_job("exit 4", on_failure=[writes_to(failed)], on_success=[writes_to(succeeded)])

    (row,) = run_once(tmp_path, spec, job_id="backup")

    assert lines(failed) == [f"backup failure 4 {row['run_id']}"]
    assert lines(succeeded) == []
    assert row["error"] == "exited with code 4"  # the notifier worked: nothing added


def test_on_success_runs_after_a_success_only(tmp_path: Path) -> None:
    failed, succeeded = tmp_path / "failed.txt", tmp_path / "succeeded.txt"
    spec = command_job(["true"], on_failure=[writes_to(failed)], on_success=[writes_to(succeeded)])

    (row,) = run_once(tmp_path, spec, job_id="backup")

    assert lines(succeeded) == [f"backup success 0 {row['run_id']}"]
    assert lines(failed) == []


def test_on_permanent_failure_runs_once_after_the_last_retry(tmp_path: Path) -> None:
    each, last = tmp_path / "each.txt", tmp_path / "last.txt"
    spec = command_job(
        "exit 2",
        retries={"attempts": 1, "backoff": "1s"},
        on_failure=[writes_to(each)],
        on_permanent_failure=[writes_to(last)],
    )

    rows = run_once(tmp_path, spec, job_id="backup")

    assert [r["attempt"] for r in rows] == [1, 2]
    assert sorted(lines(each)) == sorted(f"backup failure 2 {r['run_id']}" for r in rows)
    assert lines(last) == [f"backup failure 2 {rows[1]['run_id']}"]


def test_no_permanent_failure_when_a_retry_succeeds(tmp_path: Path) -> None:
    last = tmp_path / "last.txt"
    spec = command_job(
        "if [ -e tried ]; then exit 0; fi; touch tried; exit 1",
        cwd=str(tmp_path),
        retries={"attempts": 1, "backoff": "0s"},
        on_permanent_failure=[writes_to(last)],
    )

    rows = run_once(tmp_path, spec)

    assert [r["outcome"] for r in rows] == ["failure", "success"]
    assert lines(last) == []


def test_an_http_notifier_receives_the_run_as_json(tmp_path: Path) -> None:
    def reply(request: Received) -> tuple[int, bytes, float]:
        return 204, b"", 0.0

    with http_server(reply) as server:
        spec = command_job(
            "echo partial output; exit 3",
            on_failure=[{"type": "http", "url": f"{server.url}/hook", "method": "POST"}],
        )
        (row,) = run_once(tmp_path, spec, job_id="export")

    (request,) = server.received
    body = json_body(request)
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/json"
    assert body["event"] == "on_failure"
    assert (body["job_id"], body["run_id"]) == ("export", row["run_id"])
    assert (body["outcome"], body["exit_code"], body["attempt"]) == ("failure", 3, 1)
    assert body["output_tail"] == "partial output\n"
    assert body["finished_at"] == row["finished_at"]


def test_a_failing_notifier_is_recorded_and_the_next_run_still_runs(tmp_path: Path) -> None:
    broken = {"type": "command", "command": ["sh", "-c", "echo no route to pager >&2; exit 7"]}
    spec = command_job(["false"], concurrency="forbid", on_failure=[broken])

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"sync": spec}) as h:
            assert h.runner.dispatch("sync", now()) is None
            await h.idle()
            assert h.runner.dispatch("sync", now()) is None
            await h.idle()
            return h.runs("sync")

    first, second = asyncio.run(go())
    for row in (first, second):
        assert row["outcome"] == "failure"
        assert row["error"] == (
            "exited with code 1\non_failure[0] (command) failed: exited with code 7"
        )


def test_a_slow_notifier_does_not_block_the_next_run_and_is_stopped_on_shutdown(
    tmp_path: Path,
) -> None:
    slow = {"type": "command", "command": f"echo $$ > {tmp_path}/notifier.pid; exec sleep 30"}
    spec = command_job(["false"], concurrency="forbid", on_failure=[slow])

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"sync": spec}) as h:
            assert h.runner.dispatch("sync", now()) is None
            pid = await read_pid_async(tmp_path / "notifier.pid")  # notifier still running
            assert h.runner.dispatch("sync", now()) is None  # not skipped

            async def two_finished() -> bool:
                await h.writer.flush()
                return [r["outcome"] for r in h.runs("sync")] == ["failure", "failure"]

            await wait_for_async(two_finished, "the second run")
            began = time.monotonic()
            await h.runner.shutdown(grace=0)
            # Regression: shutdown stopped only runs; it waited kill_grace + 10 s for the
            # notifier and returned with it still running.
            assert time.monotonic() - began < 3.0
            assert gone(pid, timeout=0), "the notifier is still running after shutdown"
            return h.runs("sync")

    rows = asyncio.run(go())
    assert [r["outcome"] for r in rows] == ["failure", "failure"]
