"""A plugin handler type (name, pydantic args model, async callable) validates, appears in
the job-file schema, runs through the runner and is recorded exactly like a built-in, and
can serve as a notifier. The plugin is defined here rather than installed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from scheduler.handlers import HandlerType, builtin_handlers, make_registry
from scheduler.handlers.base import Result, RunContext
from scheduler.spec import models_for
from tests.runner_helpers import command_job, harness, job, now, run_once

NOTIFIED: list[dict[str, Any]] = []


class EchoArgs(BaseModel):
    """A plain pydantic model, as a third-party plugin may well write it."""

    message: str
    shout: bool = False


async def run_echo(ctx: RunContext, args: EchoArgs) -> Result:
    if ctx.payload is not None:  # called as a notifier
        NOTIFIED.append({"message": args.message, **ctx.payload})
        return Result("success")
    text = args.message.upper() if args.shout else args.message
    if text == "fail":
        return Result("failure", exit_code=9, output=text, error="echo was told to fail")
    if text == "raise timeout":
        raise TimeoutError("the plugin's own upstream timed out")
    return Result("success", output=f"{text} from {ctx.job_id} try {ctx.attempt}")


ECHO = HandlerType("echo", EchoArgs, run_echo, "Echo a message")
REGISTRY = make_registry([*builtin_handlers(), ECHO])


def echo_job(**run: Any) -> dict[str, Any]:
    return job(REGISTRY, run={"type": "echo", **run})


def test_a_plugin_job_runs_and_is_recorded_like_a_builtin(tmp_path: Path) -> None:
    (row,) = run_once(tmp_path, echo_job(message="hi"), job_id="greeter", registry=REGISTRY)

    assert row["outcome"] == "success"
    assert row["output_tail"] == "hi from greeter try 1"
    assert row["attempt"] == 1
    assert row["finished_at"] is not None


def test_a_failing_plugin_run_is_recorded_and_retried(tmp_path: Path) -> None:
    spec = echo_job(message="fail")
    spec = job(REGISTRY, **{**spec, "retries": {"attempts": 1, "backoff": "0s"}})
    rows = run_once(tmp_path, spec, registry=REGISTRY)

    assert [(r["attempt"], r["outcome"], r["exit_code"]) for r in rows] == [
        (1, "failure", 9),
        (2, "failure", 9),
    ]
    assert rows[0]["error"] == "echo was told to fail"


def test_a_timeout_error_raised_by_a_handler_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    """Regression: with no job ``timeout`` the runner formatted ``None`` as a duration, the
    run's task died and its row stayed ``running`` for ever."""
    (row,) = run_once(tmp_path, echo_job(message="raise timeout"), registry=REGISTRY)

    assert row["outcome"] == "failure"
    assert row["error"].rstrip().endswith("TimeoutError: the plugin's own upstream timed out")


def test_plugin_args_appear_in_the_job_file_schema() -> None:
    schema = models_for(REGISTRY).file.model_json_schema()

    (echo,) = [d for d in schema["$defs"].values() if d.get("properties", {}).get("message")]
    assert echo["properties"]["type"]["const"] == "echo"
    assert echo["required"] == ["message", "type"]
    assert echo["properties"]["shout"]["type"] == "boolean"
    assert echo.get("additionalProperties") is False


def test_an_unknown_key_in_plugin_args_is_rejected() -> None:
    """Regression: a plugin whose args model is a plain ``BaseModel`` dropped a misspelt
    key silently."""
    with pytest.raises(ValidationError) as info:
        echo_job(message="hi", shuot=True)

    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]
    assert info.value.errors()[0]["loc"][-1] == "shuot"


def test_a_missing_plugin_arg_is_rejected() -> None:
    with pytest.raises(ValidationError, match="message"):
        echo_job(shout=True)


def test_a_plugin_type_unknown_to_the_registry_is_rejected() -> None:
    with pytest.raises(ValidationError, match="echo"):
        job(run={"type": "echo", "message": "hi"})  # the default registry has no echo


def test_a_plugin_serves_as_a_notifier(tmp_path: Path) -> None:
    NOTIFIED.clear()
    spec = command_job(["sh", "-c", "exit 5"])
    spec = job(REGISTRY, **{**spec, "on_failure": [{"type": "echo", "message": "paged"}]})

    async def go() -> list[dict[str, Any]]:
        async with harness(tmp_path, {"nightly": spec}, registry=REGISTRY) as h:
            assert h.runner.dispatch("nightly", now()) is None
            await h.idle()
            return h.runs("nightly")

    (row,) = asyncio.run(go())
    (notice,) = NOTIFIED
    assert notice["message"] == "paged"
    assert notice["event"] == "on_failure"
    assert (notice["job_id"], notice["run_id"]) == ("nightly", row["run_id"])
    assert (notice["outcome"], notice["exit_code"]) == ("failure", 5)
    assert row["error"] == "exited with code 5"  # the notifier succeeded: nothing added
