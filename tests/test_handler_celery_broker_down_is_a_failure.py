"""A broker that is down or never answers, Celery missing, an unset ``${VAR}``: each is a
``failure`` with a clear error, retried per ``retries``, while the daemon (and its event
loop) goes on serving and running other jobs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.handlers import celery as celery_handler
from tests.celery_helpers import finished, serves_on, silent_redis, trigger
from tests.conftest import StartApi, WriteJobs
from tests.runner_helpers import Harness, harness, job, now, run_once, wait_for_async


@pytest.mark.parametrize(
    "broker, refused",
    [
        ("redis://127.0.0.1:1/0", "Connection refused"),
        ("amqp://guest:guest@127.0.0.1:1//", "Connection refused"),
    ],
    ids=["redis", "rabbitmq"],
)
def test_a_broker_that_refuses_is_a_failure_retried_and_the_daemon_serves_on(
    broker: str, refused: str, write_jobs: WriteJobs, start_api: StartApi
) -> None:
    write_jobs(
        "a.yaml",
        f"""
        jobs:
          nowhere:
            schedule: {{interval: 1h}}
            run: {{type: celery, task: sd.add, broker: "{broker}", backend: "redis://127.0.0.1:1/1"}}
            retries: {{attempts: 1, backoff: 1s}}
          local:
            schedule: {{interval: 1h}}
            run: {{type: command, command: [echo, still here]}}
        """,
    )
    daemon = start_api()
    trigger(daemon, "nowhere")
    first, second = finished(daemon, "nowhere", count=2)
    for attempt, row in enumerate([first, second], start=1):
        assert (row["outcome"], row["attempt"]) == ("failure", attempt)
        assert row["error"].startswith("could not send the task: OperationalError")
        assert refused in row["error"]
        assert row["task_id"] is None  # never reached a broker
    serves_on(daemon)


@pytest.fixture
def silent_broker() -> Iterator[str]:
    with silent_redis() as url:
        yield url


async def ticking(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "ticked"


def test_a_broker_that_never_answers_fails_after_the_send_bound_and_blocks_nothing(
    tmp_path: Path, silent_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(celery_handler, "SEND_TIMEOUT", 1.0)
    specs = {
        "hung": job(run={"type": "celery", "task": "sd.add", "broker": silent_broker}),
        "beside": job(
            run={
                "type": "python",
                "function": f"{__name__}:ticking",
                "kwargs": {"seconds": 0.3},
            }
        ),
    }

    async def go() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        async with harness(tmp_path, specs) as h:
            assert h.runner.dispatch("hung", now()) is None
            assert h.runner.dispatch("beside", now()) is None
            beside = await h.finished("beside")
            hung = await wait_for_async(
                lambda: _done(h, "hung"), "the hung send to fail", timeout=10
            )
            return beside, hung

    beside, [hung] = asyncio.run(go())
    assert (beside[0]["outcome"], beside[0]["output_tail"]) == ("success", "'ticked'")
    # The loop ran the other job while the send waited on the silent broker (its order in the
    # history, not how long each took: a loaded machine may take more than the bound for both).
    assert beside[0]["started_at"] < hung["finished_at"]
    assert hung["outcome"] == "failure"
    assert hung["error"] == "the broker did not take the task in 1s"


async def _done(h: Harness, job_id: str) -> list[dict[str, object]] | None:
    await h.writer.flush()
    rows = h.runs(job_id)
    return rows if rows and all(r["outcome"] != "running" for r in rows) else None


def test_without_celery_installed_the_run_fails_naming_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)  # `import celery` now fails
    monkeypatch.setattr(celery_handler, "_apps", {})  # no client built before
    spec = job(run={"type": "celery", "task": "sd.add", "broker": "redis://127.0.0.1:6379/15"})
    [row] = run_once(tmp_path, spec)
    assert row["outcome"] == "failure"
    assert "the celery run type needs Celery, which is not installed" in row["error"]
    assert row["error"].endswith("pip install 'declarative-scheduler[celery]'")


def test_an_unset_broker_variable_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    [row] = run_once(tmp_path, job(run={"type": "celery", "task": "sd.add"}))
    assert row["outcome"] == "failure"
    assert row["error"] == (
        "broker uses ${CELERY_BROKER_URL}, which is not set in the scheduler's environment: "
        "set it where the daemon starts"
    )
