"""The ``command`` handler: run a program, directly (list) or through ``/bin/sh -c`` (string)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import string
import time
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema

from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext, Tail


def _command_line(value: Any) -> list[str] | str:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("command is empty: give a program to run")
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError("command is an empty list: give the program and its arguments")
        if not all(
            isinstance(arg, str | int | float) and not isinstance(arg, bool) for arg in value
        ):
            raise ValueError("command list items must be strings (quote numbers and flags)")
        args = [str(arg) for arg in value]
        if not args[0].strip():
            raise ValueError("command's first item (the program) is empty")
        return args
    raise ValueError(
        "command must be a list (run directly, no shell) or a string (run by /bin/sh -c)"
    )


CommandLine = Annotated[
    list[str] | str,
    PlainValidator(_command_line),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "description": "program and arguments, executed directly (no shell)",
                },
                {"type": "string", "minLength": 1, "description": "run by /bin/sh -c"},
            ]
        }
    ),
]


class CommandArgs(HandlerArgs):
    """Run a program; its exit code, stdout and stderr are recorded with the run."""

    command: CommandLine
    env: dict[str, str] = Field(
        default_factory=dict,
        description="merged over the daemon's environment; ${VAR} is resolved at run time",
    )
    cwd: str | None = Field(default=None, description="working directory (default: the daemon's)")


def expand_env(env: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """``${VAR}`` in values comes from the daemon's environment at run time, so secrets are
    never written to the database."""
    return {key: string.Template(value).safe_substitute(base) for key, value in env.items()}


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the whole process group, SIGKILL what is left after ``grace``: no orphaned
    grandchildren survive a stopped run."""
    pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if proc.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.wait()), 0.05)
                continue
            try:
                os.killpg(pgid, 0)  # anyone left in the group?
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 5.0)


async def run_command(ctx: RunContext, args: CommandArgs) -> Result:
    base = dict(os.environ)
    env = {
        **base,
        **expand_env(args.env, base),
        **ctx.env,
        "SCHEDULER_JOB_ID": ctx.job_id,
        "SCHEDULER_RUN_ID": ctx.run_id,
        "SCHEDULER_ATTEMPT": str(ctx.attempt),
    }
    argv = ["/bin/sh", "-c", args.command] if isinstance(args.command, str) else args.command
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=args.cwd,
            env=env,
            start_new_session=True,  # its own process group, so it can be stopped whole
        )
    except OSError as exc:
        return Result("failure", error=f"cannot start {argv[0]!r}: {exc.strerror or exc}")
    tail = Tail()
    assert proc.stdout is not None
    try:
        reader = asyncio.ensure_future(_drain(proc.stdout, tail))
        code = await proc.wait()
        # The main process is done: what it left running in its group is stopped too.
        await stop_group(proc, ctx.kill_grace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, 5.0)
    except asyncio.CancelledError:
        await asyncio.shield(stop_group(proc, ctx.kill_grace))
        raise
    outcome: Literal["success", "failure"] = "success" if code == 0 else "failure"
    error = None if code == 0 else f"exited with code {code}"
    if code < 0:
        error = f"killed by signal {signal.Signals(-code).name}"
    return Result(outcome, exit_code=code, output=tail.text(), error=error)


async def _drain(stream: asyncio.StreamReader, tail: Tail) -> None:
    while chunk := await stream.read(65536):
        tail.write(chunk)


HANDLER = HandlerType("command", CommandArgs, run_command, CommandArgs.__doc__ or "")
