"""The ``python`` handler: ``package.module:name`` imported when the job runs and called with
``kwargs``; coroutine functions awaited on the loop, plain ones in a worker thread; the
return value's ``repr`` (truncated) is the output; an exception is a failure with its
traceback; a bad import path is a failure that names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.runner_helpers import job, run_once


def python_job(function: str, **kwargs: Any) -> dict[str, Any]:
    return job(run={"type": "python", "function": function, "kwargs": kwargs})


def test_a_coroutine_function_is_awaited_and_its_repr_recorded(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, python_job("tests.runner_helpers:async_add", a=2, b=3))

    assert row["outcome"] == "success"
    assert row["output_tail"] == "{'sum': 5}"
    assert row["exit_code"] is None
    assert row["error"] is None


def test_a_plain_function_runs_in_a_worker_thread(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, python_job("tests.runner_helpers:plain_greet", name="ada"))

    assert row["outcome"] == "success"
    assert row["output_tail"].startswith("'hello ada from thread ")
    assert "MainThread" not in row["output_tail"]


def test_a_long_return_value_is_truncated(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, python_job("tests.runner_helpers:echo_value", value="x" * 10_000))

    assert row["output_tail"] == "'" + "x" * 4095 + "...(truncated)"


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("tests.runner_helpers:plain_fails", "ValueError: deliberate failure: disk full"),
        ("tests.runner_helpers:async_fails", "RuntimeError: deliberate async failure"),
    ],
)
def test_an_exception_is_a_failure_with_its_traceback(
    tmp_path: Path, function: str, message: str
) -> None:
    kwargs = {"reason": "disk full"} if function.endswith("plain_fails") else {}
    (row,) = run_once(tmp_path, python_job(function, **kwargs))

    assert row["outcome"] == "failure"
    assert row["error"].startswith("Traceback (most recent call last):")
    assert f"in {function.rpartition(':')[2]}" in row["error"]  # the failing frame is shown
    assert row["error"].rstrip().endswith(message)


def test_a_module_that_does_not_exist_is_a_failure_that_names_it(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, python_job("tests.no_such_module:main"))

    assert row["outcome"] == "failure"
    assert row["error"] == (
        "cannot import tests.no_such_module:main: No module named 'tests.no_such_module'"
    )


def test_a_name_missing_from_the_module_is_a_failure_that_names_it(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, python_job("tests.runner_helpers:no_such_function"))

    assert row["outcome"] == "failure"
    assert row["error"].startswith("cannot import tests.runner_helpers:no_such_function: ")
    assert "no_such_function" in row["error"].partition(": ")[2]


def test_wrong_keyword_arguments_are_a_failure(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, python_job("tests.runner_helpers:async_add", a=1, c=2))

    assert row["outcome"] == "failure"
    assert "unexpected keyword argument 'c'" in row["error"]


def test_a_reference_without_a_colon_is_rejected_when_declared() -> None:
    with pytest.raises(ValidationError, match="function"):
        python_job("tests.runner_helpers.async_add")
