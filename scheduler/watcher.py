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


def _identity(root: Path) -> tuple[int, int] | None:
    """Which directory ``root`` names now (through symlinks); None when it is gone."""
    try:
        st = root.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


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

    inotify watches a directory, not a path: when ``root`` is replaced (``mv new jobs.d``,
    a swapped ``jobs.d -> releases/v2`` symlink) the old watch sees nothing more. So which
    directory ``root`` names is checked every ``poll_missing`` seconds and after each burst;
    when it changed, the new one is watched and reported, once its watch is in place.
    """
    pending: set[str] = set()  # to report once the current watch is in place
    while not stop.is_set():
        if not root.is_dir():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_missing)
            if root.is_dir():
                pending.add(str(root))
            continue
        watched = _identity(root)
        try:
            async for changes in awatch(
                root,
                stop_event=stop,
                step=step_ms,
                debounce=debounce_ms,
                watch_filter=None,
                recursive=True,
                rust_timeout=max(1, int(poll_missing * 1000)),
                yield_on_timeout=True,  # an empty set: time to check the identity
            ):
                paths = pending | {path for _change, path in changes}
                pending = set()
                if paths:
                    await on_change(paths)
                if _identity(root) != watched:
                    pending.add(str(root))
                    break  # replaced or gone: watch whatever root names now
            else:
                if root.is_dir() and not stop.is_set():
                    await asyncio.sleep(poll_missing)  # awatch ended early: avoid a busy loop
        except FileNotFoundError:
            continue
