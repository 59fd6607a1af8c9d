"""The tasks a real Celery worker runs in the ``celery`` handler tests and the benchmark:
``celery -A tests.celery_tasks worker``. Broker and result backend come from
``SD_CELERY_BROKER`` / ``SD_CELERY_BACKEND``; the worker reports its hostname
(``result_extended``) and when a task starts (``task_track_started``), as the README asks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

app = Celery(
    "sd_tests",
    broker=os.environ.get("SD_CELERY_BROKER", "redis://127.0.0.1:6379/10"),
    backend=os.environ.get("SD_CELERY_BACKEND", "redis://127.0.0.1:6379/11"),
)
app.conf.update(
    result_extended=True,
    task_track_started=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
)


@app.task(name="sd.add")
def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


@app.task(name="sd.fail")
def fail(reason: str) -> None:
    raise ValueError(f"deliberate failure: {reason}")


@app.task(name="sd.slow")
def slow(path: str, seconds: float) -> str:
    """Writes its pid, then a tick every 50 ms for ``seconds``, then 'done': a run that was
    revoked leaves a pid that no longer exists and no 'done'."""
    out = Path(path)
    out.write_text(f"{os.getpid()}\n")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
        with out.open("a") as f:
            f.write("tick\n")
    with out.open("a") as f:
        f.write("done\n")
    return "slept"


@app.task(name="sd.echo")
def echo(value: Any = None) -> Any:
    return value


@app.task(name="sd.until")
def until(release: float) -> str:
    """The benchmark's task: hold the worker until ``release`` (unix time), so every run
    is pending in the scheduler meanwhile; later ones return at once."""
    time.sleep(max(0.0, release - time.time()))
    return "released"
