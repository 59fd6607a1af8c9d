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


class MissingVariable(Exception):
    """An ``env`` value names a variable the daemon's environment does not have."""


def expand_env(env: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """``${VAR}`` in values comes from the daemon's environment at run time, so secrets are
    never written to the database. A missing one fails the run rather than passing the
    literal text ``${VAR}`` on; ``$$`` is a literal ``$``."""
    expanded = {}
    for key, value in env.items():
        try:
            expanded[key] = string.Template(value).substitute(base)
        except KeyError as exc:
            raise MissingVariable(
                f"env {key} uses ${{{exc.args[0]}}}, which is not set in the scheduler's "
                "environment: set it where the daemon starts"
            ) from None
        except ValueError as exc:
            raise MissingVariable(f"env {key}: {exc} (write $$ for a literal $)") from None
    return expanded


async def stop_group(pgid: int, exited: asyncio.Future[None], grace: float) -> None:
    """SIGTERM the whole process group, SIGKILL what is left after ``grace``: no orphaned
    grandchildren survive a stopped run. ``exited`` is done once the leader has exited."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if not exited.done():
                await asyncio.wait([exited], timeout=0.05)
                continue
            _reap(pgid)
            try:
                os.killpg(pgid, 0)  # anyone left in the group?
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)
    await asyncio.wait([exited], timeout=5.0)


def _reap(pgid: int) -> None:
    """Reap the group's members the daemon has adopted (it is PID 1 in a container, or a
    subreaper): nobody else will, and as zombies they would keep the group alive. Called
    only once the leader has been reaped, so it never takes asyncio's own child."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0] > 0:
            pass


class _Capture(asyncio.SubprocessProtocol):
    """Keeps the child's output tail and says when the child itself exits. Not
    ``Process.wait()``: that also waits for the output pipe to close, which a background
    grandchild holds open for as long as it lives, so its group would never be stopped."""

    def __init__(self, tail: Tail) -> None:
        loop = asyncio.get_running_loop()
        self.tail = tail
        self.exited: asyncio.Future[None] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.tail.write(data if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def run_command(ctx: RunContext, args: CommandArgs) -> Result:
    base = dict(os.environ)
    try:
        declared = expand_env(args.env, base)
    except MissingVariable as exc:
        return Result("failure", error=str(exc))
    env = {
        **base,
        **declared,
        **ctx.env,
        "SCHEDULER_JOB_ID": ctx.job_id,
        "SCHEDULER_RUN_ID": ctx.run_id,
        "SCHEDULER_ATTEMPT": str(ctx.attempt),
    }
    argv = ["/bin/sh", "-c", args.command] if isinstance(args.command, str) else args.command
    tail = Tail()
    try:
        transport, capture = await asyncio.get_running_loop().subprocess_exec(
            lambda: _Capture(tail),
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
    pgid = transport.get_pid()
    try:
        await asyncio.shield(capture.exited)
        # The main process is done: what it left running in its group is stopped too.
        await stop_group(pgid, capture.exited, ctx.kill_grace)
        await asyncio.wait([capture.output_closed], timeout=5.0)
    except asyncio.CancelledError:
        await asyncio.shield(stop_group(pgid, capture.exited, ctx.kill_grace))
        raise
    finally:
        transport.close()
    code = transport.get_returncode()
    assert code is not None
    outcome: Literal["success", "failure"] = "success" if code == 0 else "failure"
    error = None if code == 0 else f"exited with code {code}"
    if code < 0:
        error = f"killed by signal {signal.Signals(-code).name}"
    return Result(outcome, exit_code=code, output=tail.text(), error=error)


HANDLER = HandlerType("command", CommandArgs, run_command, CommandArgs.__doc__ or "")
