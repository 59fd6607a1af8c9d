"""Loaded into the benchmarked daemon (``python -c 'import celery_stamps; ...'``): stamps
every task the moment the broker has it, i.e. when the batch that carried it has been
written (``Sender._publish`` returned; Celery's ``after_task_publish`` fires before a
pipelined batch is flushed), and writes the stamps to ``$BENCH_STAMPS`` when the daemon
exits."""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

from scheduler.handlers.celery import Sender

STAMPS: list[tuple[str, float]] = []
_publish = Sender._publish


def _stamped(self: Sender, batch: list[Any]) -> list[Exception | None]:
    errors = _publish(self, batch)
    now = time.time()
    STAMPS.extend(
        (o.message["task_id"], now) for o, e in zip(batch, errors, strict=True) if e is None
    )
    return errors


def _dump() -> None:
    Path(os.environ["BENCH_STAMPS"]).write_text(json.dumps(STAMPS))


Sender._publish = _stamped  # type: ignore[method-assign]
atexit.register(_dump)
