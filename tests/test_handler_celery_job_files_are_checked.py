"""A celery job without a task, with a malformed broker or backend URL, or with arguments
JSON cannot carry is a PATH:LINE:COL error at ``validate`` time; ``${VAR}`` URLs are checked
when the job runs. Job files validate without Celery installed."""

from __future__ import annotations

import json
import sys

import pytest

from scheduler.handlers.celery import CeleryArgs
from tests.conftest import RunCli, WriteJobs


def celery_job(run: str) -> str:
    return f"jobs:\n  send:\n    schedule: {{interval: 1h}}\n    run:\n      type: celery\n{run}\n"


@pytest.mark.parametrize(
    "run, where, message",
    [
        pytest.param(
            "      broker: redis://localhost:6379/0",
            "4:5",
            "missing required key 'task'",
            id="no-task",
        ),
        pytest.param(
            "      task: sd.add\n      broker: 'redis:/localhost'",
            "7:15",
            "broker: 'redis:/localhost' is not a Celery broker URL "
            "(like redis://host:6379/0 or amqp://host//)",
            id="malformed-broker",
        ),
        pytest.param(
            "      task: sd.add\n      broker: 'amqp://guest@rabbit:56x2//'",
            "7:15",
            "broker: 'amqp://guest@rabbit:56x2//' is not a valid broker URL: "
            "Port could not be cast to integer value as '56x2'",
            id="broker-port",
        ),
        pytest.param(
            "      task: sd.add\n      backend: 'rpc://'",
            "7:16",
            "backend: rpc:// results go to the sending process's own reply queue, which the "
            "scheduler does not read: use a redis:// or db+ backend, or leave backend out",
            id="rpc-backend",
        ),
        pytest.param(
            "      task: sd.add\n      args: [1, .nan]",
            "7:13",
            "args[1] is nan, which JSON cannot carry",
            id="nan-argument",
        ),
        pytest.param(
            "      task: sd.add\n      kwargs: {limit: .inf}",
            "7:15",
            "kwargs.limit is inf, which JSON cannot carry",
            id="infinite-kwarg",
        ),
        pytest.param(
            "      task: sd.add\n      quue: searches",
            "7:7",
            "unknown key 'quue' (did you mean 'queue'?)",
            id="misspelt-key",
        ),
    ],
)
def test_a_bad_celery_run_is_reported_at_its_line_and_column(
    run: str, where: str, message: str, write_jobs: WriteJobs, run_cli: RunCli
) -> None:
    path = write_jobs("a.yaml", celery_job(run))
    result = run_cli("validate")
    assert result.exit_code == 1
    assert f"{path}:{where}: {message}" in result.output.splitlines()


def test_a_good_celery_job_validates_without_celery_installed(
    write_jobs: WriteJobs, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)  # `import celery` now fails
    write_jobs(
        "a.yaml",
        celery_job(
            "      task: research.tasks.search\n"
            "      kwargs: {query: AI news, sources: [google, bing], depth: 2.5, when: null}\n"
            "      queue: searches\n"
            "      broker: ${CELERY_BROKER_URL}\n"
            "      backend: redis://${REDIS_HOST}:6379/1"
        ),
    )
    result = run_cli("validate")
    assert result.exit_code == 0, result.output


def test_values_a_yaml_file_cannot_produce_are_refused_too() -> None:
    """Job specs also come from Python (tests, plugins): a date or a set is not JSON."""
    import datetime

    with pytest.raises(ValueError, match=r"kwargs\.day is a date, which JSON cannot carry"):
        CeleryArgs(task="t", kwargs={"day": datetime.date(2026, 1, 1)})
    with pytest.raises(ValueError, match=r"args\[0\] is a set"):
        CeleryArgs(task="t", args=[{1, 2}])
    with pytest.raises(ValueError, match=r"kwargs\.a has the key 1, which is not text"):
        CeleryArgs(task="t", kwargs={"a": {1: "x"}})


def test_file_defaults_fill_celery_runs_and_are_checked_where_they_are_written(
    write_jobs: WriteJobs, run_cli: RunCli
) -> None:
    path = write_jobs(
        "a.yaml",
        "defaults:\n"
        "  celery: {broker: 'redis:/nowhere', queue: searches}\n"
        + celery_job("      task: sd.add"),
    )
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{path}:2:20: broker: 'redis:/nowhere' is not a Celery broker URL "
        "(like redis://host:6379/0 or amqp://host//)"
    )
    write_jobs(
        "a.yaml",
        "defaults:\n"
        "  celery: {broker: 'redis://broker:6379/0', queue: searches}\n"
        + celery_job("      task: sd.add\n      queue: own"),
    )
    assert run_cli("reconcile").exit_code == 0
    spec = json.loads(run_cli("get", "send", "--output", "json").output)["spec"]
    assert (spec["run"]["broker"], spec["run"]["queue"]) == ("redis://broker:6379/0", "own")
