"""A first start on large job files (``startup.CHILD_BYTES``, 1 MiB) reconciles them in a
child process, so the daemon's own heap never holds the parse: the jobs are stored and run
as after any start, a broken file is refused with its PATH:LINE:COL and the store keeps
its last good state, and a restart that changes nothing stays in the daemon."""

from __future__ import annotations

import re
from pathlib import Path

from scheduler.startup import CHILD_BYTES
from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import DaemonProcess, wait_for

IN_A_CHILD = "start-up reconcile of large job files: in a child process"
# A comment as large as a file of thousands of jobs, cheap to parse.
PADDING = "".join(f"# {'-' * 96}\n" for _ in range(CHILD_BYTES // 99 + 1))


def jobs_file(cron: str) -> str:
    return f"""\
jobs:
  ticks:
    schedule: {{interval: 1s}}
    run: {{type: command, command: [sh, -c, "echo tick >> ticks"]}}
  nightly:
    schedule: {{cron: "{cron}"}}
    run: {{type: command, command: [echo, night]}}
{PADDING}"""


def schedules(daemon: DaemonProcess) -> dict[str, str]:
    return {job_id: job["schedule"] for job_id, job in daemon.jobs().items()}


def test_a_first_start_on_large_files_reconciles_in_a_child_and_runs_the_jobs(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("big.yaml", jobs_file("0 2 * * *"))
    daemon = start_daemon()
    assert IN_A_CHILD in daemon.log()
    assert re.search(r"reconcile \(start-up\): 2 added, 0 updated", daemon.log())
    assert set(daemon.jobs()) == {"ticks", "nightly"}
    ticks = jobs_dir.parent / "ticks"
    wait_for(lambda: ticks.exists() and ticks.read_text().count("tick") >= 2, "two runs")


def test_a_broken_large_file_at_start_up_is_refused_and_the_store_keeps_its_jobs(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("big.yaml", jobs_file("0 2 * * *"))
    first = start_daemon()
    before = schedules(first)
    first.stop()

    write_jobs("big.yaml", jobs_file("0 25 * * *"))  # no 25th hour
    second = start_daemon()
    assert IN_A_CHILD in second.log()
    refused = second.wait_log(r"reconcile \(start-up\) refused, keeping the last good state")
    where = re.escape(str(jobs_dir / "big.yaml")) + r":6:22: cron: hour field '25'"
    assert re.search(where, second.log(refused.start())), second.tail()
    assert schedules(second) == before

    second.stop()
    write_jobs("big.yaml", jobs_file("0 2 * * *"))  # as the store holds it: nothing to do
    third = start_daemon()
    assert IN_A_CHILD not in third.log()
    assert re.search(r"reconcile \(start-up\): 0 added, 0 updated, 0 removed", third.log())
