"""The ``command`` handler, through the runner: a list runs the program directly, a string
through ``/bin/sh -c``; exit code, stdout and stderr (the last 64 KiB) are recorded; ``env``
is merged over the daemon's environment with ``${VAR}`` resolved at run time; ``cwd``; the
run's ids are in the child's environment. Real processes, real SQLite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.runner_helpers import command_job, run_once


def test_a_list_runs_the_program_directly_without_a_shell(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, command_job(["echo", "$HOME", "a;b", "*"]))

    assert row["outcome"] == "success"
    assert row["exit_code"] == 0
    assert row["error"] is None
    assert row["output_tail"] == "$HOME a;b *\n"  # nothing expanded, nothing split


def test_a_string_runs_through_the_shell(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, command_job("echo $((40 + 2)) | tr 4 X"))

    assert row["outcome"] == "success"
    assert row["output_tail"] == "X2\n"


def test_a_non_zero_exit_is_a_failure_with_its_code_and_both_streams(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, command_job("echo to stdout; echo to stderr >&2; exit 3"))

    assert row["outcome"] == "failure"
    assert row["exit_code"] == 3
    assert row["error"] == "exited with code 3"
    assert "to stdout\n" in row["output_tail"]
    assert "to stderr\n" in row["output_tail"]
    assert row["attempt"] == 1
    assert row["finished_at"] is not None


def test_only_the_last_64_kib_of_output_are_kept(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.write('START' + 'x' * 200 * 1024 + 'THE END')"
    (row,) = run_once(tmp_path, command_job([sys.executable, "-c", script]))

    tail = row["output_tail"]
    assert row["outcome"] == "success"
    assert tail.endswith("xxxTHE END")
    assert "START" not in tail
    assert 60 * 1024 < len(tail.encode()) <= 64 * 1024


def test_env_is_merged_over_the_daemon_env_and_resolved_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_TEST_INHERITED", "from-daemon")
    monkeypatch.setenv("RUNNER_TEST_OVERRIDDEN", "daemon-value")
    line = 'echo "$GREETING|$RUNNER_TEST_INHERITED|$RUNNER_TEST_OVERRIDDEN"'
    spec = command_job(
        ["sh", "-c", f"{line} > seen.txt; {line}"],
        env={"GREETING": "token=${RUNNER_TEST_SECRET}", "RUNNER_TEST_OVERRIDDEN": "job-value"},
        cwd=".",
    )
    assert spec["run"]["env"]["GREETING"] == "token=${RUNNER_TEST_SECRET}"  # stored unresolved

    runs = []
    for secret, where in (("first", tmp_path / "a"), ("rotated", tmp_path / "b")):
        monkeypatch.setenv("RUNNER_TEST_SECRET", secret)
        where.mkdir()
        monkeypatch.chdir(where)
        (row,) = run_once(where, spec)
        runs.append(((where / "seen.txt").read_text(), row["output_tail"]))

    assert runs == [
        ("token=first|from-daemon|job-value\n", "token=***|from-daemon|job-value\n"),
        ("token=rotated|from-daemon|job-value\n", "token=***|from-daemon|job-value\n"),
    ]  # the job got the value; its history shows it masked


def test_the_child_knows_its_job_and_run_ids(tmp_path: Path) -> None:
    spec = command_job(["sh", "-c", 'echo "$SCHEDULER_JOB_ID $SCHEDULER_RUN_ID"'])
    (row,) = run_once(tmp_path, spec, job_id="nightly-export")

    assert row["output_tail"] == f"nightly-export {row['run_id']}\n"


def test_cwd_is_the_working_directory(tmp_path: Path) -> None:
    work = tmp_path / "work dir"
    work.mkdir()
    (work / "marker.txt").write_text("here")
    (row,) = run_once(tmp_path, command_job(["sh", "-c", "pwd; cat marker.txt"], cwd=str(work)))

    assert row["outcome"] == "success"
    assert row["output_tail"] == f"{os.path.realpath(work)}\nhere"


def test_a_missing_program_is_a_failure_that_names_it(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, command_job(["no-such-program-4c1e", "--help"]))

    assert row["outcome"] == "failure"
    assert row["exit_code"] is None
    assert row["error"] == "cannot start 'no-such-program-4c1e': No such file or directory"
    assert row["finished_at"] is not None


def test_an_unset_variable_fails_the_run_with_a_clear_error(tmp_path: Path) -> None:
    """Regression: a missing secret used to be passed on as the literal text ${VAR}."""
    os.environ.pop("SCHEDULER_TEST_SURELY_UNSET", None)
    spec = command_job(["true"])
    spec["run"]["env"] = {"TOKEN": "${SCHEDULER_TEST_SURELY_UNSET}"}
    (run,) = run_once(tmp_path, spec)
    assert run["outcome"] == "failure"
    assert run["error"] == (
        "env TOKEN uses ${SCHEDULER_TEST_SURELY_UNSET}, which is not set in "
        "the scheduler's environment: set it where the daemon starts"
    )
