"""Loaded into the benchmarked daemon (``python -c 'import celery_stamps; ...'``): stamps
every task the moment the daemon hears that the broker has it, i.e. when the sender
process answers for the batch that carried it (``Sender._settle`` is told; Celery's
``after_task_publish`` fires in the sender, before a pipelined batch is flushed), and
writes the stamps to ``$BENCH_STAMPS`` when the daemon exits."""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

from scheduler.handlers.celery import Sender

STAMPS: list[tuple[str, float]] = []
_settle = Sender._settle


def _stamped(self: Sender, batch: list[Any], error: str | None) -> None:
    now = time.time()  # when the daemon hears the sender is done: a little late, not early
    if error is None:
        STAMPS.extend((o.message["task_id"], now) for o in batch)
    _settle(self, batch, error)


def _dump() -> None:
    Path(os.environ["BENCH_STAMPS"]).write_text(json.dumps(STAMPS))


Sender._settle = _stamped  # type: ignore[method-assign]
atexit.register(_dump)
