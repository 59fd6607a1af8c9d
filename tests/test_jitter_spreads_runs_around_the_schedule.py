"""Jitter delays each run by a random time, but the schedule stays put: runs are one interval
apart on average, each in its own slot.

Regression (issue 15, item 8): `interval: 10s` with `jitter: 8s` ran 14.2 s apart on average,
because the next run was counted from the previous run's jittered time.

The trigger is driven as APScheduler drives it (the next fire time is asked for with the
previous fire time, at that time), with a seeded random generator and no sleeping. Why the
tolerances hold: with fire times t_k = s_k + j_k (slot s_k, delay 0 <= j_k < J), the mean gap
over n runs telescopes to (t_n - t_0) / n = P + (j_n - j_0) / n, so it is within J / n of the
period P whatever the draws; a drifting trigger is off by the mean delay, J / 2. The mean
delay of n uniform draws has standard deviation J / sqrt(12 n) (0.07 s for J = 8 s,
n = 1000), so +-J / 16 around J / 2 is seven standard deviations.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.spec import Schedule
from scheduler.triggers import build_trigger

RUNS = 1000
START = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def seeded() -> Iterator[None]:
    state = random.getstate()
    random.seed(20261129)  # APScheduler draws jitter from the module-level generator
    yield
    random.setstate(state)


def fire_times(schedule: Schedule, count: int) -> list[datetime]:
    trigger = build_trigger(schedule, now=START)
    fire = trigger.get_next_fire_time(None, START)
    times = []
    while fire is not None and len(times) < count:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return times


@pytest.mark.parametrize(
    ("schedule", "period", "jitter"),
    [
        (Schedule(interval=timedelta(seconds=10), jitter=timedelta(seconds=8)), 10, 8),
        (Schedule(interval=timedelta(minutes=5), jitter=timedelta(minutes=4)), 300, 240),
        (Schedule(cron="* * * * *", jitter=timedelta(seconds=50)), 60, 50),
        (Schedule(cron="*/10 * * * *", jitter=timedelta(minutes=9)), 600, 540),
    ],
    ids=["interval-10s-jitter-8s", "interval-5m-jitter-4m", "cron-minute", "cron-10-minutes"],
)
def test_runs_keep_their_period_on_average(schedule: Schedule, period: int, jitter: int) -> None:
    times = fire_times(schedule, RUNS)
    assert len(times) == RUNS
    mean_gap = (times[-1] - times[0]).total_seconds() / (RUNS - 1)
    assert abs(mean_gap - period) < jitter / (RUNS - 1)
    first_slot = START + timedelta(seconds=period) if schedule.interval else START
    delays = []
    for n, time in enumerate(times):  # every slot runs once, in order, late by < jitter
        delay = (time - (first_slot + n * timedelta(seconds=period))).total_seconds()
        assert 0 <= delay < jitter, (n, time)
        delays.append(delay)
    assert abs(statistics.fmean(delays) - jitter / 2) < jitter / 16  # spread, not bunched
