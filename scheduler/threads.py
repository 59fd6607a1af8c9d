"""A blocking call awaited from the event loop in a daemon thread of its own: a call that
never returns holds neither a shared pool's thread nor the process's exit.
Callers: ``handlers.python`` (plain job functions), ``warmup``.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    import asyncio

T = TypeVar("T")


async def in_own_thread(
    function: Callable[[], T], name: str, gate: AbstractContextManager[Any] | None = None
) -> T:
    """``function()`` in a new daemon thread, inside ``gate`` (e.g. a semaphore bounding how
    many run at once). Cancelled while it waits at the gate, it never starts; once started
    it runs to its end, because Python cannot kill a thread."""
    import asyncio

    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    abandoned = threading.Event()
    context = contextvars.copy_context()

    def settle(value: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(value)  # type: ignore[arg-type]
        else:
            done.set_exception(error)

    def work() -> None:
        with gate if gate is not None else contextlib.nullcontext():
            if abandoned.is_set():
                return
            value: T | None = None
            error: BaseException | None = None
            try:
                value = context.run(function)
            except StopIteration as exc:  # a future cannot carry StopIteration itself
                error = RuntimeError(f"StopIteration: {exc}")
            except BaseException as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        return await done
    finally:
        abandoned.set()
