"""The ``python`` handler: import ``package.module:function`` at run time and call it.

Plain functions run in threads of their own, at most ``PYTHON_THREADS`` at once, never in
asyncio's default pool: the daemon's history writes, API and reconciles use that one, and
six stuck jobs used to fill it and stall them all.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field

from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext
from scheduler.threads import in_own_thread

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    pass

REPR_LIMIT = 4096
PYTHON_THREADS = 8  # plain functions running at once; more wait for a thread to be free

_threads = threading.BoundedSemaphore(PYTHON_THREADS)

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


async def in_job_thread(function: Callable[[], Any], name: str) -> Any:
    """``function()`` in a daemon thread of its own once one of the ``PYTHON_THREADS`` is
    free. Cancelled (a timeout) while it waits, it never starts; once started it runs to its
    end, holding its thread, because Python cannot kill a thread; a thread that never
    returns does not hold up the daemon's exit."""
    return await in_own_thread(function, name, _threads)


async def run_python(ctx: RunContext, args: PythonArgs) -> Result:
    """Coroutine functions run on the loop; plain ones in a thread of their own (a timeout
    then stops waiting for it, but Python cannot kill the thread: it runs to its end)."""
    import asyncio

    name = f"python job {ctx.job_id}"
    try:
        if args.function.partition(":")[0] in sys.modules:
            function = resolve(args.function)
        else:  # a first import runs the module's code, which must not hold the loop
            function = await in_job_thread(functools.partial(resolve, args.function), name)
    except (ImportError, AttributeError) as exc:
        return Result("failure", error=f"cannot import {args.function}: {exc}")
    try:
        if inspect.iscoroutinefunction(function):
            value = await function(**args.kwargs)
        else:
            call = functools.partial(function, **args.kwargs)
            value = await in_job_thread(call, name)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        return Result("failure", error="".join(traceback.format_exception(exc)))
    text = repr(value)
    if len(text) > REPR_LIMIT:
        text = text[:REPR_LIMIT] + "...(truncated)"
    return Result("success", output=text)


HANDLER = HandlerType("python", PythonArgs, run_python, PythonArgs.__doc__ or "")
