"""The SQLite file behind a store: only ``run`` and ``reconcile`` may create it, and a daemon
notices when the file it opened is no longer the one at its path (deleted or replaced: it
would go on writing into an unlinked file, and every run since is lost at exit).
Callers: ``store.Store`` (creation), the daemon (its health and a loud log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from sqlalchemy import make_url

from scheduler.errors import SchedulerError

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0


class StoreMissing(SchedulerError):
    """A command that only reads or acts on an existing store found no store file."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no store at {path}: check --db / SCHEDULER_DB; `scheduler reconcile` or "
            "`scheduler run` creates it (no other command does)"
        )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def store_exists(url: str) -> bool:
    """False only for a SQLite file that does not exist (a server's database may be empty)."""
    path = sqlite_path(url)
    return path is None or path.exists()


def require_existing(url: str) -> None:
    """Raise ``StoreMissing`` if ``url`` is a SQLite file that does not exist."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreMissing(path)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class StoreFile:
    """The file a daemon opened; ``problem()`` says if it is gone from its path."""

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self.identity = _identity(self.path) if self.path is not None else None

    def problem(self) -> str | None:
        if self.path is None or self.identity is None:
            return None
        now = _identity(self.path)
        if now == self.identity:
            return None
        what = "deleted" if now is None else "replaced by another file"
        return (
            f"the store file {self.path} was {what} while the daemon runs: run history is "
            "held in memory, not written; put the file back, or restart the daemon to use "
            "the file now at that path"
        )

    async def watch(self, stop: asyncio.Event) -> None:
        """Log loudly when the file goes, and when it is back."""
        if self.path is None:
            return
        reported: str | None = None
        while not stop.is_set():
            problem = self.problem()
            if problem != reported:
                if problem is not None:
                    log.error("%s", problem)
                else:
                    log.warning(
                        "the store file %s is back: run history is written again", self.path
                    )
                reported = problem
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_SECONDS)
