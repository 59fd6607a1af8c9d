"""The ``python`` handler: import ``package.module:function`` at run time and call it."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import traceback
from typing import Any

from pydantic import Field

from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext

REPR_LIMIT = 4096

FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$"


class PythonArgs(HandlerArgs):
    """Call a Python function (coroutine functions are awaited) with keyword arguments."""

    function: str = Field(
        pattern=FUNCTION_PATTERN,
        description="'package.module:name'; imported when the job runs, not when it is declared",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)


def resolve(reference: str) -> Any:
    module_name, _, attr_path = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        target = getattr(target, attr)
    return target


async def run_python(ctx: RunContext, args: PythonArgs) -> Result:
    """Coroutine functions run on the loop; plain ones in a worker thread (a timeout then
    stops waiting for it, but Python cannot kill the thread: keep such functions short)."""
    try:
        function = resolve(args.function)
    except (ImportError, AttributeError) as exc:
        return Result("failure", error=f"cannot import {args.function}: {exc}")
    try:
        if inspect.iscoroutinefunction(function):
            value = await function(**args.kwargs)
        else:
            value = await asyncio.to_thread(functools.partial(function, **args.kwargs))
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        return Result("failure", error="".join(traceback.format_exception(exc)))
    text = repr(value)
    if len(text) > REPR_LIMIT:
        text = text[:REPR_LIMIT] + "...(truncated)"
    return Result("success", output=text)


HANDLER = HandlerType("python", PythonArgs, run_python, PythonArgs.__doc__ or "")
