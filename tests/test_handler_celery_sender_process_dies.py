"""Celery tasks are sent by a process of the daemon's own, one per broker. If it dies
(kill -9, the OOM killer), the runs whose tasks it held fail saying so, and the next run
starts a new one: the daemon never stops sending, and never blocks on the dead one. It is
started ahead of the runs due within a minute."""

from __future__ import annotations

import os
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.api_helpers import ApiDaemon, StartApi
from tests.celery_helpers import (
    BROKERS,
    celery_worker,
    finished,
    runs,
    serves_on,
    silent_redis,
    trigger,
)
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import gone

SENT_BY = r"celery tasks for \S+ are sent by process (\d+)"


def senders(daemon: ApiDaemon) -> set[int]:
    """The daemon's child processes started by multiprocessing's spawn (as ``ps`` shows
    them): the Celery senders. Its parse forkserver and resource tracker look otherwise."""
    found = set()
    for task in Path(f"/proc/{daemon.proc.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in argv:
                found.add(int(child))
    return found


def test_a_killed_sender_is_replaced_and_the_next_run_is_sent(
    write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    with celery_worker("redis", tmp_path, ["add"], concurrency=1, pool="solo") as worker:
        write_jobs(
            "a.yaml",
            f"""
            jobs:
              add:
                schedule: {{interval: 1h}}
                run: {{type: celery, task: sd.add, args: [2, 3], queue: {worker.queues["add"]},
                       broker: "{worker.broker}", backend: "{worker.backend}"}}
            """,
        )
        daemon = start_api()
        trigger(daemon, "add")
        [first] = finished(daemon, "add")
        assert (first["outcome"], first["output_tail"]) == ("success", "{'sum': 5}")
        old = int(daemon.wait_log(SENT_BY).group(1))
        assert old != daemon.proc.pid

        os.kill(old, signal.SIGKILL)
        assert gone(old), "the dead sender was never reaped"
        mark = daemon.mark()
        trigger(daemon, "add")
        _, second = finished(daemon, "add", count=2)
        assert (second["outcome"], second["output_tail"]) == ("success", "{'sum': 5}")
        new = int(daemon.wait_log(SENT_BY, since=mark).group(1))
        assert new != old


def test_a_sender_killed_while_sending_fails_its_runs_with_the_reason(
    write_jobs: WriteJobs, start_api: StartApi
) -> None:
    with silent_redis() as broker:
        write_jobs(
            "a.yaml",
            f"""
            jobs:
              hung:
                schedule: {{interval: 1h}}
                run: {{type: celery, task: sd.add, broker: "{broker}"}}
              local:
                schedule: {{interval: 1h}}
                run: {{type: command, command: [echo, still here]}}
            """,
        )
        daemon = start_api()
        trigger(daemon, "hung")
        # Its sender waits on the silent broker (for up to its socket timeout).
        wait_for(lambda: runs(daemon, "hung") or None, "the run to start")
        sender = wait_for(lambda: senders(daemon) or None, "the sender process to start")
        for pid in sender:
            os.kill(pid, signal.SIGKILL)
        [row] = finished(daemon, "hung")
        assert row["outcome"] == "failure"
        assert re.match(
            r"could not send the task: SenderStopped: the Celery sender process stopped",
            row["error"],
        ), row["error"]
        assert row["task_id"] is None  # never reached a broker
        serves_on(daemon)


def test_a_run_due_within_a_minute_has_its_sender_ready_before_it_is_due(
    write_jobs: WriteJobs, start_api: StartApi
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=50)
    write_jobs(
        "a.yaml",
        f"""
        jobs:
          soon:
            schedule: {{at: "{due.isoformat()}"}}
            run: {{type: celery, task: sd.add, broker: "{BROKERS["redis"][0]}"}}
        """,
    )
    daemon = start_api()
    daemon.wait_log(SENT_BY)  # started and connected by the warm-up: nothing was sent yet
    assert runs(daemon, "soon") == []
