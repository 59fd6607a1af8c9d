"""Runs due jobs. APScheduler's pickled jobs point at ``run_job`` (so no stored row depends
on user code); the daemon's ``RunnerExecutor`` hands due jobs to the bound ``Runner``."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor

log = logging.getLogger(__name__)


class Runner:
    """Runs one job's due times. Bound to a daemon's store and loop."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, job_id: str, run_times: list[datetime]) -> None:
        task = asyncio.get_running_loop().create_task(self.run(job_id, run_times[-1]))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, job_id: str, scheduled: datetime) -> None:
        log.info("job %s due at %s", job_id, scheduled.isoformat())


class RunnerExecutor(BaseExecutor):  # type: ignore[misc]
    """An APScheduler executor that passes due jobs to our runner instead of calling
    ``job.func``: the runner applies the job's concurrency and misfire policy itself."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self.runner.submit(job.id, run_times)

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:  # pragma: no cover
        raise NotImplementedError("submit_job hands jobs to the runner")


async def run_job(job_id: str) -> None:
    """The callable every stored job names. The daemon never calls it (``RunnerExecutor``
    does the work); it exists so APScheduler can restore the pickled job."""
    raise RuntimeError(f"job {job_id} must be run by the scheduler daemon's runner")
