"""The ``command`` handler: run a program, directly (list) or through ``/bin/sh -c`` (string)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Field,
    PlainValidator,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_serializer,
)

from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext, Tail
from scheduler.handlers.variables import OWN_PREFIX, MissingVariable, Resolver, inherited
from scheduler.processes import (
    MARK_VAR,
    Proc,
    end_tree,
    main_process,
    new_mark,
    owner,
    starting,
    stat,
)

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    import asyncio
    from asyncio import SubprocessProtocol as _SubprocessProtocol
else:
    _SubprocessProtocol = object

log = logging.getLogger(__name__)

OUTPUT_DRAIN = 1.0  # seconds to read what is left in the pipe once the run's processes end


def _command_line(value: Any) -> list[str] | str:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("command is empty: give a program to run")
        if "\0" in value:
            raise ValueError("command holds a NUL byte, which no program can receive")
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError("command is an empty list: give the program and its arguments")
        if not all(
            isinstance(arg, str | int | float) and not isinstance(arg, bool) for arg in value
        ):
            raise ValueError("command list items must be strings (quote numbers and flags)")
        args = [str(arg) for arg in value]
        if any("\0" in arg for arg in args):
            raise ValueError("command holds a NUL byte, which no program can receive")
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
        description="added to the environment; ${VAR} comes from the daemon's at run time",
    )
    inherit_env: bool | list[str] = Field(
        default=True,
        description="what the job gets of the daemon's environment: true (all but SCHEDULER_* "
        "and URLs with passwords), false (only PATH) or a list of names",
    )
    cwd: str | None = Field(default=None, description="working directory (default: the daemon's)")

    @field_validator("inherit_env")
    @classmethod
    def _names(cls, value: bool | list[str]) -> bool | list[str]:
        for name in value if isinstance(value, list) else []:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"inherit_env: {name!r} is not a variable name")
            if name.startswith(OWN_PREFIX):
                raise ValueError(
                    f"inherit_env: {name} is the scheduler's own setting and never passed to "
                    f'jobs: if the job needs it, write env: {{{name}: "${{{name}}}"}}'
                )
        return value

    @model_serializer(mode="wrap")
    def _omit_default_inheritance(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out while it is the default: the stored spec and fingerprint of every
        # command job written before inherit_env existed stay the same (no update churn).
        data = handler(self)
        if isinstance(data, dict) and data.get("inherit_env") is True:
            del data["inherit_env"]
        return data

    @field_validator("env")
    @classmethod
    def _no_nul(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if "\0" in key or "\0" in text or "=" in key:
                raise ValueError(f"env {key!r}: names hold no '=' and values no NUL byte")
        return value


class _Capture(_SubprocessProtocol):
    """Keeps the child's output tail and says when the child itself exits. Not
    ``Process.wait()``: that also waits for the output pipe to close, which a background
    grandchild holds open for as long as it lives, so its group would never be stopped.

    Every callback asyncio makes on a subprocess protocol is here (the base class is
    ``asyncio.SubprocessProtocol`` for the type checker only: ``validate`` never imports
    asyncio, which was a fifth of its time)."""

    def __init__(self, tail: Tail) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        self.tail = tail
        self.exited: asyncio.Future[None] = loop.create_future()
        self.exited_at: float | None = None
        self.output_closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.tail.write(data if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited_at = time.monotonic()
            self.exited.set_result(None)


async def run_command(ctx: RunContext, args: CommandArgs) -> Result:
    import asyncio

    resolver = Resolver(os.environ)
    try:
        declared = {k: resolver.template(v, f"env {k}") for k, v in args.env.items()}
    except MissingVariable as exc:
        return Result("failure", error=str(exc))
    mark = new_mark()
    env = {
        **inherited(os.environ, args.inherit_env),
        **declared,
        **ctx.env,
        "SCHEDULER_JOB_ID": ctx.job_id,
        "SCHEDULER_RUN_ID": ctx.run_id,
        "SCHEDULER_ATTEMPT": str(ctx.attempt),
        MARK_VAR: mark,  # finds every process it starts, wherever they go
    }
    argv = ["/bin/sh", "-c", args.command] if isinstance(args.command, str) else args.command
    tail = Tail()
    # Recorded before it starts, by its mark alone: a kill -9 of the daemon between the
    # start and the record with its pid left a run nobody would end (its first file
    # written, the record not yet). The next daemon finds marked processes without a pid.
    _remember(ctx, None, mark, None)
    with contextlib.ExitStack() as stack:
        try:
            with starting():  # until its pid is known, no adopted zombie is reaped
                transport, capture = await asyncio.get_running_loop().subprocess_exec(
                    lambda: _Capture(tail),
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    cwd=args.cwd,
                    env=env,
                    start_new_session=True,  # its own process group and session
                )
                pid = transport.get_pid()
                stack.enter_context(main_process(pid))
        except BaseException as exc:  # not started (asyncio kills a half-started one)
            if ctx.run_files is not None:
                ctx.run_files.remove(ctx.run_id)
            if not isinstance(exc, OSError):
                raise
            return Result("failure", error=f"cannot start {argv[0]!r}: {exc.strerror or exc}")
        await _follow(ctx, transport, capture, pid, mark)
    code = transport.get_returncode()
    assert code is not None
    outcome: Literal["success", "failure"] = "success" if code == 0 else "failure"
    error = None if code == 0 else f"exited with code {code}"
    if code < 0:
        error = f"killed by signal {signal.Signals(-code).name}"
    return Result(
        outcome, exit_code=code, output=tail.text(), error=error, masked=resolver.masked()
    )


async def _follow(
    ctx: RunContext,
    transport: asyncio.SubprocessTransport,
    capture: _Capture,
    pid: int,
    mark: str,
) -> None:
    """Wait for the main process; then end everything it started, however it left."""
    import asyncio

    started = stat(pid)  # its start: everything of the run started later

    async def end() -> None:
        await end_tree(
            mark,
            pid,
            grace=ctx.kill_grace,
            main=pid,
            main_exited=capture.exited,
            since=started.start if started is not None else 0,
            exited_at=capture.exited_at,
        )
        # Whatever still holds the pipe is gone now: read what is left, briefly.
        await asyncio.wait([capture.output_closed], timeout=OUTPUT_DRAIN)
        if ctx.run_files is not None:
            ctx.run_files.remove(ctx.run_id)

    try:
        _remember(ctx, pid, mark, started)
        # The outcome is the main process's exit, not the end of its output: a background
        # process may hold the pipe for as long as it lives.
        await asyncio.shield(capture.exited)
        await end()  # what it left running (even setsid or double-forked) ends with it
    except asyncio.CancelledError:
        await asyncio.shield(end())
        raise
    finally:
        transport.close()


def _remember(ctx: RunContext, pid: int | None, mark: str, proc: Proc | None) -> None:
    """Leave a record that outlives a ``kill -9`` of the daemon (see ``leftovers``)."""
    if ctx.run_files is None:
        return
    try:
        ctx.run_files.add(
            {
                "run_id": ctx.run_id,
                "job_id": ctx.job_id,
                "attempt": ctx.attempt,
                "scheduled_time": ctx.scheduled_time.timestamp() if ctx.scheduled_time else None,
                "started_at": time.time(),
                "pid": pid,
                "mark": mark,
                "daemon": owner(),  # a record of a live daemon is never touched
                "start": proc.start if proc is not None else None,
            }
        )
    except OSError as exc:  # the run goes on; only a daemon crash would lose track of it
        log.warning("job %s: cannot record run %s's process: %s", ctx.job_id, ctx.run_id, exc)


HANDLER = HandlerType("command", CommandArgs, run_command, CommandArgs.__doc__ or "")
