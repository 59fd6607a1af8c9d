"""A run's whole process tree ends with it, also processes that left its process group
(``setsid``) or double-forked away from it, and the outcome is decided by the main
process's exit, not by the end of its output (issue 13, item 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scheduler.processes import stat
from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import command_job, duration, gone, process_state, read_pid, run_once


def assert_gone(*pids: int) -> None:
    for pid in pids:
        assert gone(pid), f"pid {pid} is still there (state {process_state(pid)})"


def test_a_setsid_process_is_ended_when_the_run_times_out(tmp_path: Path) -> None:
    """Regression: ``setsid`` left the process group, so the timeout's killpg missed it."""
    spec = command_job(
        "setsid sleep 301 & echo $! > escaped.pid; sleep 30", cwd=str(tmp_path), timeout="2s"
    )

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "timeout"
    assert_gone(read_pid(tmp_path / "escaped.pid"))


def test_a_double_forked_process_is_ended_when_the_run_times_out(tmp_path: Path) -> None:
    # The middle process exits at once: the sleep is orphaned, in its own session.
    script = "(setsid sh -c 'sleep 302 & echo $! > escaped.pid' &); sleep 30"
    spec = command_job(script, cwd=str(tmp_path), timeout="2s")

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "timeout"
    assert_gone(read_pid(tmp_path / "escaped.pid"))


def test_an_exit_0_with_a_lingering_setsid_process_is_a_success_and_ends_it(
    tmp_path: Path,
) -> None:
    """Regression: the orphan held the output pipe, so the run waited for it and was
    recorded ``timeout`` at 5 s although the shell had exited 0 after 1 s."""
    spec = command_job(
        "setsid sleep 303 & echo $! > escaped.pid; sleep 1; echo done",
        cwd=str(tmp_path),
        timeout="5s",
    )

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "success"
    assert row["output_tail"] == "done\n"
    assert duration(row) < 4.0  # the sleep 1 and the bounded read of what is left
    assert_gone(read_pid(tmp_path / "escaped.pid"))


def test_a_process_that_clears_its_environment_is_ended_while_its_parent_lives(
    tmp_path: Path,
) -> None:
    # env -i drops the run's mark; it is still found as a descendant of a marked process.
    script = "setsid sh -c 'env -i sleep 304 & echo $! > escaped.pid; wait' & sleep 30"
    spec = command_job(script, cwd=str(tmp_path), timeout="2s")

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "timeout"
    assert_gone(read_pid(tmp_path / "escaped.pid"))


def test_the_daemon_adopts_and_reaps_an_orphan_that_ended_on_its_own(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    """The daemon is a child subreaper: a double-forked process comes back to it, not to
    init. One that ends before its run does is found by nothing else (a zombie's
    environment is empty), so without the daemon reaping it, it stayed a zombie for the
    daemon's lifetime."""
    work = tmp_path / "work"
    work.mkdir()
    write_jobs(
        "a.yaml",
        f"""\
jobs:
  forks:
    schedule: {{cron: "0 9 * * *"}}
    run:
      type: command
      cwd: {work}
      command: "(setsid sh -c 'echo $$ > orphan.pid; sleep 0.2' &); sleep 1.5; echo done"
""",
    )
    daemon = start_daemon()
    assert daemon.cli("trigger", "forks").returncode == 0
    orphan = read_pid(work / "orphan.pid")
    adopted = wait_for(lambda: (p := stat(orphan)) and p.state == "Z" and p, "orphan ends")
    assert adopted.ppid == daemon.proc.pid  # adopted by the daemon, not by init

    def finished() -> dict[str, Any] | None:
        done = daemon.cli("history", "forks", "-o", "json")
        runs = json.loads(done.stdout) if done.returncode == 0 else []
        return runs[0] if runs and runs[0]["outcome"] != "running" else None

    run = wait_for(finished, "the run's end")
    assert (run["outcome"], run["output_tail"]) == ("success", "done\n")
    assert_gone(orphan)


def test_a_notifier_ending_does_not_end_another_notifier_of_the_same_run(
    tmp_path: Path,
) -> None:
    """Notifiers of one run run side by side (``on_failure`` and ``on_permanent_failure``)
    with the same run id: each command has its own mark, so the quick one's end does not
    take the slow one with it."""
    late = tmp_path / "late.txt"
    spec = command_job(
        "exit 1",
        on_failure=[{"type": "command", "command": "sleep 0.3"}],
        on_permanent_failure=[
            {"type": "command", "command": f"setsid sh -c 'sleep 1; echo late > {late}' & wait"}
        ],
    )

    (row,) = run_once(tmp_path, spec)

    assert row["error"] == "exited with code 1"  # no notifier failed
    assert late.read_text() == "late\n"
