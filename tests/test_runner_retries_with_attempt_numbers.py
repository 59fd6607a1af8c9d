"""``retries: {attempts: N, backoff: D}``: a failed or timed-out try is retried up to N more
times, waiting D, then 2D, ...; each try is its own history row with its attempt number."""

from __future__ import annotations

from pathlib import Path

from tests.runner_helpers import command_job, run_once, seconds

# Counts its tries in a file; fails until the given try.
COUNTER = 'n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count; echo "try $n"; '


def test_a_command_failing_twice_then_succeeding_has_three_rows(tmp_path: Path) -> None:
    spec = command_job(
        COUNTER + '[ "$n" -ge 3 ]',
        cwd=str(tmp_path),
        retries={"attempts": 3, "backoff": "1s"},
    )

    rows = run_once(tmp_path, spec)

    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert [r["outcome"] for r in rows] == ["failure", "failure", "success"]
    assert [r["output_tail"] for r in rows] == ["try 1\n", "try 2\n", "try 3\n"]
    assert [r["exit_code"] for r in rows] == [1, 1, 0]
    assert len({r["run_id"] for r in rows}) == 3
    assert len({r["scheduled_time"] for r in rows}) == 1  # tries of one due time
    started = [seconds(r["started_at"]) for r in rows]
    assert started[1] - seconds(rows[0]["finished_at"]) >= 1.0  # backoff
    assert started[2] - seconds(rows[1]["finished_at"]) >= 2.0  # doubled
    assert (tmp_path / "count").read_text() == "3\n"  # no fourth try after the success


def test_a_permanent_failure_with_one_retry_has_two_rows(tmp_path: Path) -> None:
    spec = command_job(["false"], retries={"attempts": 1, "backoff": "1s"})

    rows = run_once(tmp_path, spec)

    assert [(r["attempt"], r["outcome"]) for r in rows] == [(1, "failure"), (2, "failure")]
    assert seconds(rows[1]["started_at"]) - seconds(rows[0]["started_at"]) >= 1.0


def test_a_timed_out_try_is_retried(tmp_path: Path) -> None:
    spec = command_job(
        COUNTER + 'if [ "$n" -eq 1 ]; then exec sleep 30; fi',
        cwd=str(tmp_path),
        timeout="1s",
        retries={"attempts": 2, "backoff": "1s"},
    )

    rows = run_once(tmp_path, spec)

    assert [(r["attempt"], r["outcome"]) for r in rows] == [(1, "timeout"), (2, "success")]


def test_no_retries_by_default(tmp_path: Path) -> None:
    rows = run_once(tmp_path, command_job(["false"]))

    assert [(r["attempt"], r["outcome"]) for r in rows] == [(1, "failure")]
