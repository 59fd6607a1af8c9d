"""A real daemon sends ``celery`` runs to a real Celery worker (on Redis, and on RabbitMQ
with Redis as the result backend) and records what came back: the result, the remote
error, a timeout that revokes the task (the task's process really stops), `sent` without a
backend, forbid and replace. One worker per broker serves the whole module; every test has
its own queue."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.api_helpers import ApiDaemon
from tests.celery_helpers import Worker, celery_worker, finished, runs, trigger
from tests.conftest import StartApi, WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import gone

QUEUES = ["success", "failure", "timeout", "sent", "forbid", "replace"]
SLOW = 30  # seconds a slow task would run if nothing stopped it


# Under xdist each broker's tests stay on one worker (scripts/test: --dist loadgroup), so a
# celery worker starts once per broker, not once per xdist worker.
@pytest.fixture(
    scope="module",
    params=[
        pytest.param(kind, marks=pytest.mark.xdist_group(f"celery-{kind}"))
        for kind in ("redis", "rabbitmq")
    ],
)
def worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    with celery_worker(request.param, tmp_path_factory.mktemp("celery"), QUEUES) as started:
        yield started


def celery_jobs(
    job_id: str, run: dict[str, Any], extra: str = "", defaults: dict[str, Any] | None = None
) -> str:
    lines = "\n".join(f"      {key}: {json.dumps(value)}" for key, value in run.items())
    body = textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") + "\n" if extra else ""
    head = f"defaults:\n  celery: {json.dumps(defaults)}\n" if defaults else ""
    return (
        f"{head}jobs:\n  {job_id}:\n    schedule: {{interval: 1h}}\n    run:\n"
        f"      type: celery\n{lines}\n{body}"
    )


def start(start_api: StartApi, worker: Worker, backend: bool = True) -> ApiDaemon:
    """A daemon that knows the broker (and backend) only from its environment."""
    env = {"SD_BROKER": worker.broker}
    if backend:
        env["SD_BACKEND"] = worker.backend
    # A task still running at the end is revoked when the daemon stops, without waiting.
    return start_api("--shutdown-grace", "0", env=env)


def run(worker: Worker, queue: str, task: str, **fields: Any) -> dict[str, Any]:
    return {
        "task": task,
        "queue": worker.queues[queue],
        "broker": "${SD_BROKER}",
        "backend": "${SD_BACKEND}",
        **fields,
    }


def task_pid(path: Path) -> int:
    text = wait_for(lambda: path.exists() and path.read_text(), f"the task to start ({path})", 20)
    return int(str(text).splitlines()[0])


def test_a_result_comes_back_with_the_task_id_and_the_worker(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi
) -> None:
    task = run(worker, "success", "sd.add", kwargs={"a": 2, "b": 3})
    # The file's defaults name the broker and backend, once for all its celery runs.
    defaults = {"broker": task.pop("broker"), "backend": task.pop("backend")}
    write_jobs("a.yaml", celery_jobs("add", task, defaults=defaults))
    daemon = start(start_api, worker)
    trigger(daemon, "add")
    [row] = finished(daemon, "add")
    assert row["outcome"] == "success", row
    assert row["output_tail"] == "{'sum': 5}"
    assert row["task_id"] == row["run_id"]
    assert row["worker"] == worker.hostname
    with daemon.client() as client:
        page = client.get("/").text
        api_runs = client.get("/jobs/add/runs").json()
    assert f"task {row['task_id']} on {worker.hostname}" in page
    assert api_runs[0]["task_id"] == row["task_id"]
    # The log names the process that sends to the broker, never the broker's password.
    sent_by = daemon.wait_log(r"celery tasks for (\S+) are sent by process \d+").group(1)
    password = urlsplit(worker.broker).password
    if password is not None:  # RabbitMQ's guest:guest
        assert f":{password}@" not in sent_by and ":***@" in sent_by, sent_by


def test_a_task_that_raises_is_a_failure_with_the_remote_error_retried_and_notified(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    told = tmp_path / "told"
    options = f"""
    retries: {{attempts: 1, backoff: 1s}}
    on_permanent_failure:
      - type: command
        command: 'echo "$SCHEDULER_OUTCOME $SCHEDULER_EXIT_CODE" > {told}'
    """
    write_jobs(
        "a.yaml",
        celery_jobs("boom", run(worker, "failure", "sd.fail", args=["boom"]), options),
    )
    daemon = start(start_api, worker)
    trigger(daemon, "boom")
    rows = finished(daemon, "boom", count=2)
    assert [(r["outcome"], r["attempt"]) for r in rows] == [("failure", 1), ("failure", 2)]
    for row in rows:
        assert "celery task FAILURE: ValueError: deliberate failure: boom" in row["error"]
        assert 'raise ValueError(f"deliberate failure: {reason}")' in row["output_tail"]
        assert (row["task_id"], row["worker"]) == (row["run_id"], worker.hostname)
    assert wait_for(lambda: told.exists() and told.read_text(), "the notifier") == "failure \n"
    with daemon.client() as client:
        metrics = client.get("/metrics").text
    assert 'scheduler_runs_total{job="boom",outcome="failure"} 2.0' in metrics


def test_a_timeout_revokes_the_task_and_its_process_stops(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    task = run(worker, "timeout", "sd.slow", kwargs={"path": str(ticks), "seconds": SLOW})
    write_jobs("a.yaml", celery_jobs("slow", task, "timeout: 2s"))
    daemon = start(start_api, worker)
    trigger(daemon, "slow")
    pid = task_pid(ticks)
    [row] = finished(daemon, "slow")
    assert row["outcome"] == "timeout"
    revoked = f"celery task {row['task_id']} revoked (terminate=True)"
    assert row["error"] == f"timed out after 2s; {revoked}"
    assert gone(pid, timeout=10), f"the task's process {pid} still runs after the revoke"
    assert "done" not in ticks.read_text()


def test_without_a_backend_the_run_is_sent_and_the_task_runs(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    task = run(worker, "sent", "sd.slow", kwargs={"path": str(ticks), "seconds": 0})
    del task["backend"]
    write_jobs("a.yaml", celery_jobs("fire", task, "retries: {attempts: 2, backoff: 1s}"))
    daemon = start(start_api, worker, backend=False)
    trigger(daemon, "fire")
    [row] = finished(daemon, "fire")
    assert row["outcome"] == "sent"
    assert row["task_id"] == row["run_id"]
    assert row["error"] is None
    assert wait_for(lambda: ticks.exists() and "done" in ticks.read_text(), "the sent task")
    assert len(runs(daemon, "fire")) == 1  # sent is not retried


def test_forbid_skips_while_the_task_is_queued_or_running(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    task = run(worker, "forbid", "sd.slow", kwargs={"path": str(ticks), "seconds": 2})
    write_jobs("a.yaml", celery_jobs("once", task, "concurrency: forbid"))
    daemon = start(start_api, worker)
    trigger(daemon, "once")
    task_pid(ticks)
    trigger(daemon, "once")
    first, second = finished(daemon, "once", count=2)
    assert second["outcome"] == "skipped"
    assert "still running (concurrency: forbid)" in second["error"]
    assert first["outcome"] == "success" and first["output_tail"] == "'slept'"


def test_max_instances_counts_tasks_still_queued_or_running(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    task = run(worker, "forbid", "sd.slow", kwargs={"path": str(ticks), "seconds": 2})
    write_jobs("a.yaml", celery_jobs("two", task, "max_instances: 2"))
    daemon = start(start_api, worker)
    for _ in range(3):
        trigger(daemon, "two")
    rows = finished(daemon, "two", count=3)
    assert sorted(r["outcome"] for r in rows) == ["skipped", "success", "success"]
    [skipped] = [r for r in rows if r["outcome"] == "skipped"]
    assert skipped["error"] == "2 run(s) still running (max_instances)"


def test_replace_revokes_the_old_task(
    worker: Worker, write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    task = run(worker, "replace", "sd.slow", kwargs={"path": str(ticks), "seconds": SLOW})
    write_jobs("a.yaml", celery_jobs("newest", task, "concurrency: replace"))
    daemon = start(start_api, worker)
    trigger(daemon, "newest")
    old_pid = task_pid(ticks)
    ticks.unlink()
    trigger(daemon, "newest")
    old, new = wait_for(
        lambda: (
            (rows := runs(daemon, "newest"))[0]["outcome"] != "running" and len(rows) == 2 and rows
        ),
        "the replaced run to be recorded",
        timeout=20,
    )
    assert old["outcome"] == "interrupted"
    assert old["error"] == (
        "replaced by a newer run (concurrency: replace); "
        f"celery task {old['task_id']} revoked (terminate=True)"
    )
    assert gone(old_pid, timeout=10), f"the replaced task's process {old_pid} still runs"
    new_pid = task_pid(ticks)  # the new task started and runs
    assert new_pid != old_pid and new["outcome"] == "running"
