"""The ``cleanup`` handler: the scheduler's own housekeeping (pruning old run history)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from scheduler.durations import Duration, format_duration
from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    pass


class CleanupArgs(HandlerArgs):
    """Prune run history older than ``retention``."""

    retention: Duration = Field(default=timedelta(days=7), description="keep runs this long")


async def run_cleanup(ctx: RunContext, args: CleanupArgs) -> Result:
    import asyncio

    from scheduler.history import prune

    if ctx.store is None:
        return Result("failure", error="cleanup needs the scheduler's store")
    cutoff = time.time() - args.retention.total_seconds()
    removed = await asyncio.to_thread(prune, ctx.store, cutoff)
    return Result(
        "success",
        output=f"removed {removed} run(s) older than {format_duration(args.retention)}",
    )


HANDLER = HandlerType("cleanup", CleanupArgs, run_cleanup, CleanupArgs.__doc__ or "")
