"""The ``cleanup`` handler: the scheduler's own housekeeping (pruning old run history)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from scheduler.durations import Duration
from scheduler.handlers.base import HandlerArgs, HandlerType


class CleanupArgs(HandlerArgs):
    """Prune run history older than ``retention``."""

    retention: Duration = Field(default=timedelta(days=7), description="keep runs this long")


HANDLER = HandlerType("cleanup", CleanupArgs, description=CleanupArgs.__doc__ or "")
