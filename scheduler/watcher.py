"""Watch the jobs directory and call back once per burst of changes.

It knows nothing about reconciling: the daemon passes the callback. Bursts (``git
checkout``, a ConfigMap's ``..data`` symlink swap, an editor's write-and-rename) are
grouped by watchfiles' debounce, so one burst gives one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import awatch

log = logging.getLogger(__name__)

OnChange = Callable[[set[str]], Awaitable[None]]


async def watch(
    root: Path,
    on_change: OnChange,
    stop: asyncio.Event,
    *,
    step_ms: int = 50,
    debounce_ms: int = 1600,
    poll_missing: float = 1.0,
) -> None:
    """Call ``on_change(paths)`` after each burst of changes under ``root``, until ``stop``.

    A burst ends when nothing changed for ``step_ms``; ``debounce_ms`` caps how long one
    burst may be grouped. A missing directory is waited for, not an error.
    """
    while not stop.is_set():
        if not root.is_dir():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_missing)
            if root.is_dir():
                await on_change({str(root)})
            continue
        try:
            async for changes in awatch(
                root,
                stop_event=stop,
                step=step_ms,
                debounce=debounce_ms,
                watch_filter=None,
                recursive=True,
            ):
                await on_change({path for _change, path in changes})
                if not root.is_dir():
                    break  # the directory itself went away: wait for it to come back
        except FileNotFoundError:
            continue
        if root.is_dir() and not stop.is_set():
            await asyncio.sleep(poll_missing)  # awatch ended early: avoid a busy loop
