"""The ``command`` handler: run a program, directly (list) or through ``/bin/sh -c`` (string)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, PlainValidator, WithJsonSchema

from scheduler.handlers.base import HandlerArgs, HandlerType


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


HANDLER = HandlerType("command", CommandArgs, description=CommandArgs.__doc__ or "")
