"""A hostile job file dropped into a running daemon's directory is refused and changes
nothing, while the daemon stays up, answers /healthz and keeps firing a 1 s job. Pins
issue 13.1: an alias bomb grew the daemon ~300 MB/s to 4 GB, /healthz stopped answering
and a 1 s job stopped running. Parsing happens in a child under a CPU and memory limit,
so even a file the parser accepts cannot take the daemon down: it stops its child."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api_helpers import ApiDaemon
from tests.conftest import StartApi
from tests.daemon_helpers import wait_for
from tests.test_hostile_job_files_are_refused_within_limits import bomb_deep, bomb_through_merge

TICK = 'jobs:\n  tick:\n    schedule: {interval: 1s}\n    run: {type: command, command: ["true"]}\n'


def heavy_valid_file(root: Path) -> str:
    """60,000 valid jobs: well within the parser's limits, past a 1 s CPU parse limit by
    far (20,000 came close to fitting in 1 s once parsing got faster)."""
    body = "".join(
        f"  heavy-{i}:\n    schedule: {{cron: '{i % 60} 9 * * 1-5'}}\n"
        f"    run: {{type: command, command: [echo, '{i}']}}\n    labels: {{n: '{i}'}}\n"
        for i in range(60_000)
    )
    (root / "heavy.yaml").write_text("jobs:\n" + body)
    return "heavy.yaml:1:1: parsing this file went past the parse limit (1 s of CPU"


def declared(daemon: ApiDaemon) -> dict[str, tuple[str, str]]:
    return {job_id: (job["schedule"], job["source"]) for job_id, job in daemon.jobs().items()}


def finished_ticks(daemon: ApiDaemon) -> int:
    return sum(1 for run in daemon.history("tick") if run["outcome"] == "success")


@pytest.mark.parametrize("make", [bomb_deep, bomb_through_merge, heavy_valid_file])
def test_daemon_refuses_the_file_and_keeps_running_jobs(
    make: Callable[[Path], str], start_api: StartApi, jobs_dir: Path
) -> None:
    (jobs_dir / "tick.yaml").write_text(TICK)
    daemon = start_api(env={"SCHEDULER_PARSE_CPU_SECONDS": "1"})
    with daemon.client() as client:
        wait_for(lambda: finished_ticks(daemon) >= 1, "a first tick")
        before = declared(daemon)
        mark = daemon.mark()
        where = re.escape(f"{jobs_dir}/{make(jobs_dir)}")
        daemon.wait_log(rf"refused, keeping the last good state:\n{where}", since=mark, timeout=30)
        assert client.get("/healthz").status_code == 200
        ticks = finished_ticks(daemon)
        wait_for(lambda: finished_ticks(daemon) >= ticks + 2, "two more ticks", timeout=10)
        assert client.get("/healthz").json() == {"status": "ok"}
    assert declared(daemon) == before
    assert daemon.proc.poll() is None
