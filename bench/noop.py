"""Job targets for ``bench/bench_runs.py`` (importable as ``noop`` with ``bench/`` on the path).

``noop``/``anoop`` do nothing: the daemon's ``python`` handler calls them, so what is measured
is the scheduler's own overhead. ``stamp``/``astamp`` are the plain-APScheduler baseline's
jobs: each records (scheduled time, time it started) in ``STAMPS``.
"""

from __future__ import annotations

import time

STAMPS: list[tuple[float, float]] = []


def noop() -> None:
    pass


async def anoop() -> None:
    pass


def stamp(scheduled: float) -> None:
    STAMPS.append((scheduled, time.time()))


async def astamp(scheduled: float) -> None:
    STAMPS.append((scheduled, time.time()))
