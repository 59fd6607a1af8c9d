"""Layers point one way: the pure front of the pipeline (job files, cron, planning) never
pulls in APScheduler, SQLAlchemy, the daemon or asyncio (which only running a job needs), so
it stays fast to import and to test, and `scheduler validate` fast in a pre-commit hook."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PURE = [
    "scheduler.spec",
    "scheduler.loader",
    "scheduler.plan",
    "scheduler.cron",
    "scheduler.templates",
    "scheduler.params",
    "scheduler.tokens",  # read by `scheduler run` before anything starts
    "scheduler",  # `from scheduler import Scheduler` loads the daemon only when asked
    "scheduler.jobfiles",
    "scheduler.declared",
    "scheduler.document",
    "scheduler.validation",
]
FORBIDDEN = [
    "apscheduler",
    "sqlalchemy",
    "scheduler.daemon",
    "scheduler.store",
    "fastapi",
    "asyncio",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_scheduler_machinery(module: str) -> None:
    code = (
        f"import sys, json, {module}; "
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == [], f"{module} imports {out.strip()}"
