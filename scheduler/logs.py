"""Log set-up for the daemon: text for people, or one JSON object per line for log
pipelines (``--log-format json``). Fields passed with ``extra=`` (job_id, run_id, outcome,
duration, counts of a reconcile) become top-level keys."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
from datetime import UTC, datetime
from typing import Any

from scheduler.terminal import safe_json, safe_text

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return safe_json(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Log lines for people: text from job files and jobs is shown, not interpreted by
    the terminal (a cron field of escape sequences would otherwise reach it raw)."""

    def format(self, record: logging.LogRecord) -> str:
        return safe_text(super().format(record))


class _Deferred(logging.handlers.QueueHandler):
    """Hands records to a thread as they are: formatting and writing happen there, not on
    the event loop that starts jobs (a log line per run cost more than starting it)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info:  # tracebacks do not survive the hand-over; render them now
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def setup(level: str, fmt: str) -> None:
    """Route every log record through a queue to one writer thread (stderr)."""
    # Documented switches for what the formats never show: the caller's file and line
    # (a stack walk per record) and thread/process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    atexit.register(listener.stop)  # flushes what is queued when the daemon exits
    root = logging.getLogger()
    root.handlers[:] = [_Deferred(records)]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "watchfiles", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
