"""A daemon killed with ``kill -9`` leaves its Celery tasks running on their workers; the
next daemon, which marks their runs ``interrupted``, revokes each one (terminate=True) and
says so in the run's history: the task really stops (issue 10)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.api_helpers import StartApi
from tests.celery_helpers import celery_worker, finished, trigger
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import gone, process_state

JOB = """\
jobs:
  long:
    schedule: {{interval: 1h}}
    concurrency: forbid
    run:
      type: celery
      task: sd.slow
      kwargs: {{path: "{ticks}", seconds: 60}}
      queue: {queue}
      broker: ${{SD_BROKER}}
      backend: ${{SD_BACKEND}}
"""


def test_the_next_daemon_revokes_the_task_of_a_run_it_marks_interrupted(
    write_jobs: WriteJobs, start_api: StartApi, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    with celery_worker("redis", tmp_path, ["lost"], concurrency=1) as worker:
        write_jobs("a.yaml", JOB.format(ticks=ticks, queue=worker.queues["lost"]))
        env = {"SD_BROKER": worker.broker, "SD_BACKEND": worker.backend}
        first = start_api("--shutdown-grace", "0", env=env)
        trigger(first, "long")
        text = wait_for(lambda: ticks.exists() and ticks.read_text(), "the task to start")
        pid = int(str(text).splitlines()[0])

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        time.sleep(0.3)
        assert process_state(pid) not in (None, "Z"), "kill -9 left the task running"

        second = start_api("--shutdown-grace", "0", env=env)
        [row] = finished(second, "long")
        assert row["outcome"] == "interrupted"
        assert gone(pid, timeout=10), f"the lost run's task (pid {pid}) still runs"
        ticked = ticks.read_text()
        time.sleep(0.3)  # the task ticked every 50 ms: it would have written since
        assert ticks.read_text() == ticked and "done" not in ticked
        # The task id is the run id: revoked even if the killed daemon never wrote it down.
        revoked = wait_for(
            lambda: "revoked" in (r := finished(second, "long")[0])["error"] and r, "the note"
        )
        assert revoked["error"] == (
            "the scheduler stopped while this run was in progress; "
            f"celery task {row['run_id']} revoked (terminate=True)"
        )
        second.wait_log(r"celery task \w+ revoked \(terminate=True\)")
