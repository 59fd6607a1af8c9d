"""A run's whole process tree ends with it, also processes that left its process group
(``setsid``) or double-forked away from it, and the outcome is decided by the main
process's exit, not by the end of its output (issue 13, item 3)."""

from __future__ import annotations

from pathlib import Path

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
