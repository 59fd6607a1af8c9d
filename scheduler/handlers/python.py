"""The ``python`` handler: import ``package.module:function`` at run time and call it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scheduler.handlers.base import HandlerArgs, HandlerType

FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$"


class PythonArgs(HandlerArgs):
    """Call a Python function (coroutine functions are awaited) with keyword arguments."""

    function: str = Field(
        pattern=FUNCTION_PATTERN,
        description="'package.module:name'; imported when the job runs, not when it is declared",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)


HANDLER = HandlerType("python", PythonArgs, description=PythonArgs.__doc__ or "")
