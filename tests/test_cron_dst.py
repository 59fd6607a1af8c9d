"""Cron across daylight-saving transitions (Vixie rules).

A job at a fixed local time (neither minute nor hour starts with '*') runs once for each time
it is scheduled at: a time inside the skipped hour runs right after the gap (several such
times one second apart, in order, as cronie runs each); in the repeated hour only the first
time. A wildcard job follows real time: nothing in the gap, twice through
the repeated hour.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from scheduler.cron import CronExpression, fire_times, next_fire_time, parse_cron

BERLIN = ZoneInfo("Europe/Berlin")  # 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00
NEW_YORK = ZoneInfo("America/New_York")  # 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00
HAVANA = ZoneInfo("America/Havana")  # 2026-03-08 (Sunday) 00:00 -> 01:00
TEHRAN = ZoneInfo("Asia/Tehran")  # 2021-03-22 (Monday) 00:00 -> 01:00
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # 2026-10-04 02:00 -> 02:30
NUUK = ZoneInfo("America/Nuuk")  # 2026-03-28 (Saturday) 23:00 -> 2026-03-29 00:00
MINUTE = timedelta(minutes=1)

SPRING = {BERLIN: date(2026, 3, 29), NEW_YORK: date(2026, 3, 8), LORD_HOWE: date(2026, 10, 4)}
FALL = {BERLIN: date(2026, 10, 25), NEW_YORK: date(2026, 11, 1), LORD_HOWE: date(2026, 4, 5)}


def local(tz: tzinfo, text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz, fold=fold)


def iso(times: list[datetime]) -> list[str]:
    return [time.isoformat() for time in times]


def does_not_exist(tz: tzinfo, text: str) -> bool:
    wall = local(tz, text)
    return wall.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None)


def test_the_zones_have_the_transitions_these_tests_rely_on() -> None:
    assert does_not_exist(BERLIN, "2026-03-29 02:30")
    assert does_not_exist(NEW_YORK, "2026-03-08 02:30")
    assert does_not_exist(HAVANA, "2026-03-08 00:00") and date(2026, 3, 8).weekday() == 6
    assert does_not_exist(TEHRAN, "2021-03-22 00:00") and date(2021, 3, 22).weekday() == 0
    assert does_not_exist(LORD_HOWE, "2026-10-04 02:15")
    assert not does_not_exist(LORD_HOWE, "2026-10-04 02:30")
    assert does_not_exist(NUUK, "2026-03-28 23:30") and date(2026, 3, 28).weekday() == 5
    for zone, text in ((BERLIN, "2026-10-25 02:30"), (NEW_YORK, "2026-11-01 01:30")):
        assert local(zone, text).utcoffset() != local(zone, text, fold=1).utcoffset()


@pytest.mark.parametrize(
    ("zone", "expression", "spring", "fall"),
    [
        (BERLIN, "30 2 * * *", "2026-03-29T03:00:00+02:00", "2026-10-25T02:30:00+02:00"),
        (BERLIN, "0 2 * * *", "2026-03-29T03:00:00+02:00", "2026-10-25T02:00:00+02:00"),
        (BERLIN, "0 0 * * *", "2026-03-29T00:00:00+01:00", "2026-10-25T00:00:00+02:00"),
        (BERLIN, "59 2 * * *", "2026-03-29T03:00:00+02:00", "2026-10-25T02:59:00+02:00"),
        (BERLIN, "0 3 * * *", "2026-03-29T03:00:00+02:00", "2026-10-25T03:00:00+01:00"),
        (NEW_YORK, "30 2 * * *", "2026-03-08T03:00:00-04:00", "2026-11-01T02:30:00-05:00"),
        (NEW_YORK, "30 1 * * *", "2026-03-08T01:30:00-05:00", "2026-11-01T01:30:00-04:00"),
        (NEW_YORK, "0 0 * * *", "2026-03-08T00:00:00-05:00", "2026-11-01T00:00:00-04:00"),
    ],
)
def test_fixed_local_time_runs_once_every_day_of_the_year(
    zone: ZoneInfo, expression: str, spring: str, fall: str
) -> None:
    times = fire_times(parse_cron(expression), local(zone, "2025-12-31 23:59"), zone, 365)
    days = [time.date() for time in times]
    assert days == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    by_day = {time.date(): time.isoformat() for time in times}
    assert (by_day[SPRING[zone]], by_day[FALL[zone]]) == (spring, fall)


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
def test_weekday_job_runs_once_on_every_weekday(zone: ZoneInfo) -> None:
    times = fire_times(parse_cron("30 2 * * 0-4"), local(zone, "2026-01-01 00:00"), zone, 261)
    assert len({time.date() for time in times}) == 261
    assert {time.isoweekday() for time in times} == {7, 1, 2, 3, 4}
    assert times[-1].year == 2026


def test_each_time_inside_the_gap_runs_right_after_it_in_order() -> None:
    # Regression (issue 14): 02:00 and 02:30 were merged into one run at 03:00.
    job = parse_cron("0,30 2 * * *")
    times = fire_times(job, local(BERLIN, "2026-03-28 23:00"), BERLIN, 4)
    assert iso(times) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:00:01+02:00",
        "2026-03-30T02:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    just_fired = local(BERLIN, "2026-03-29 03:00")
    fire = next_fire_time(parse_cron("30 2 * * *"), just_fired, BERLIN)
    assert fire is not None and fire.isoformat() == "2026-03-30T02:30:00+02:00"


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        # cronie runs both: once for the skipped 02:00, once for 03:00
        (
            NEW_YORK,
            "0 2,3 * * *",
            "2026-03-07 12:00",
            ["2026-03-08T03:00:00-04:00", "2026-03-08T03:00:01-04:00", "2026-03-09T02:00:00-04:00"],
        ),
        # Lord Howe moves its clocks by half an hour: 02:00 -> 02:30
        (
            LORD_HOWE,
            "0,30 2 * * *",
            "2026-10-03 12:00",
            ["2026-10-04T02:30:00+11:00", "2026-10-04T02:30:01+11:00", "2026-10-05T02:00:00+11:00"],
        ),
        # Nuuk's gap is Saturday 23:00-24:00: no run on Saturday's date, one on Sunday 00:00
        (
            NUUK,
            "30 23 * * *",
            "2026-03-27 12:00",
            ["2026-03-27T23:30:00-02:00", "2026-03-29T00:00:00-01:00", "2026-03-29T23:30:00-01:00"],
        ),
    ],
)
def test_two_scheduled_times_in_one_gap_both_run(
    zone: ZoneInfo, expression: str, start: str, expected: list[str]
) -> None:
    assert iso(fire_times(parse_cron(expression), local(zone, start), zone, 3)) == expected


def test_a_gap_full_of_runs_shares_one_minute_and_keeps_the_next() -> None:
    times = fire_times(
        parse_cron("0-59 2,3 * * *"), local(NEW_YORK, "2026-03-08 01:59"), NEW_YORK, 62
    )
    gap_and_three = [time.astimezone(UTC) for time in times[:61]]
    start = local(NEW_YORK, "2026-03-08 03:00").astimezone(UTC)
    assert all(earlier < later for earlier, later in pairwise(gap_and_three))
    assert start == gap_and_three[0] and gap_and_three[-1] < start + MINUTE
    assert times[61].isoformat() == "2026-03-08T03:01:00-04:00"


def test_the_repeated_hour_runs_a_fixed_job_only_the_first_time() -> None:
    job = parse_cron("30 2 * * *")
    first = next_fire_time(job, local(BERLIN, "2026-10-25 00:00"), BERLIN)
    assert first is not None and first.isoformat() == "2026-10-25T02:30:00+02:00"
    second = next_fire_time(job, first, BERLIN)
    assert second is not None and second.isoformat() == "2026-10-26T02:30:00+01:00"


def test_midnight_transition_runs_the_weekly_job_after_the_gap_and_skips_no_week() -> None:
    sunday = fire_times(parse_cron("0 0 * * 0"), local(HAVANA, "2026-02-28 12:00"), HAVANA, 3)
    assert iso(sunday) == [
        "2026-03-01T00:00:00-05:00",
        "2026-03-08T01:00:00-04:00",
        "2026-03-15T00:00:00-04:00",
    ]
    monday = fire_times(parse_cron("0 0 * * 1"), local(TEHRAN, "2021-03-10 12:00"), TEHRAN, 3)
    assert iso(monday) == [
        "2021-03-15T00:00:00+03:30",
        "2021-03-22T01:00:00+04:30",
        "2021-03-29T00:00:00+04:30",
    ]


def test_wildcard_job_follows_real_time_through_the_gap() -> None:
    times = fire_times(parse_cron("*/15 * * * *"), local(BERLIN, "2026-03-29 01:00"), BERLIN, 6)
    assert iso(times) == [
        "2026-03-29T01:15:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_wildcard_job_runs_twice_through_the_repeated_hour() -> None:
    start = local(BERLIN, "2026-10-25 01:59")
    times = fire_times(parse_cron("*/15 * * * *"), start, BERLIN, 9)
    assert iso(times) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:45:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:15:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T02:45:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_the_next_fire_after_the_first_pass_is_locally_earlier() -> None:
    fired = local(BERLIN, "2026-10-25 02:50")  # the first 02:50, CEST
    fire = next_fire_time(parse_cron("*/10 * * * *"), fired, BERLIN)
    assert fire is not None and fire.isoformat() == "2026-10-25T02:00:00+01:00"
    assert fire.astimezone(UTC) - fired.astimezone(UTC) == timedelta(minutes=10)


def test_after_inside_the_second_pass_is_honoured() -> None:
    after = local(BERLIN, "2026-10-25 02:05", fold=1)  # CET
    fire = next_fire_time(parse_cron("*/10 * * * *"), after, BERLIN)
    assert fire is not None and fire.isoformat() == "2026-10-25T02:10:00+01:00"


@pytest.mark.parametrize(("zone", "hours"), [(BERLIN, (23, 25)), (NEW_YORK, (23, 25))])
def test_hourly_job_runs_23_and_25_times_on_transition_days(
    zone: ZoneInfo, hours: tuple[int, int]
) -> None:
    job = parse_cron("@hourly")
    for day, count in zip((SPRING[zone], FALL[zone]), hours, strict=True):
        start = datetime(day.year, day.month, day.day, tzinfo=zone) - timedelta(microseconds=1)
        times = fire_times(job, start, zone, 30)
        assert len([time for time in times if time.date() == day]) == count


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
def test_every_half_hour_is_every_real_half_hour_all_year(zone: ZoneInfo) -> None:
    start = local(zone, "2026-01-01 00:00")
    end = local(zone, "2027-01-01 00:00")
    count = int((end.astimezone(UTC) - start.astimezone(UTC)) / timedelta(minutes=30))
    times = fire_times(parse_cron("*/30 * * * *"), start, zone, count)
    instants = [start.astimezone(UTC)] + [time.astimezone(UTC) for time in times]
    assert {later - earlier for earlier, later in pairwise(instants)} == {timedelta(minutes=30)}
    assert instants[-1] == end.astimezone(UTC)


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, HAVANA])
@pytest.mark.parametrize(
    "expression",
    ["30 2 * * *", "0 0 * * *", "7 * * * *", "*/20 0-3 * * *", "0 0 13 * 5", "15,45 1-2 * * 0"],
)
def test_fire_times_strictly_increase_all_year(zone: ZoneInfo, expression: str) -> None:
    job, fire = parse_cron(expression), local(zone, "2026-01-01 00:00")
    instants = [fire.astimezone(UTC)]
    while fire.year == 2026:
        next_fire = next_fire_time(job, fire, zone)
        assert next_fire is not None
        fire = next_fire
        instants.append(fire.astimezone(UTC))
    assert all(earlier < later for earlier, later in pairwise(instants))
    assert len(instants) > 12


def matches(job: CronExpression, wall: datetime) -> bool:
    in_days, in_weekdays = wall.day in job.days, wall.isoweekday() % 7 in job.weekdays
    day_ok = (in_days or in_weekdays) if job.day_or else (in_days and in_weekdays)
    return (
        day_ok
        and wall.month in job.months
        and wall.hour in job.hours
        and wall.minute in job.minutes
    )


def expected_by_scanning(expression: str, zone: ZoneInfo, day: date) -> list[str]:
    """The DST rules applied literally, minute by minute of real time, for 3 days around `day`."""
    job = parse_cron(expression)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
    fires = []
    for step in range(3 * 24 * 60):
        instant = start + timedelta(minutes=step)
        wall = instant.astimezone(zone)
        naive = wall.replace(tzinfo=None)
        previous = (instant - MINUTE).astimezone(zone).replace(tzinfo=None)
        skipped = [previous + n * MINUTE for n in range(1, (naive - previous) // MINUTE)]
        first_pass = wall.fold == 0
        runs = [gap for gap in skipped if job.fixed_time and matches(job, gap)]
        if matches(job, naive) and (first_pass or not job.fixed_time):
            runs.append(naive)
        # each skipped time is a run of its own, a second after the one before
        fires += [
            (instant + n * timedelta(seconds=1)).astimezone(zone).isoformat()
            for n in range(len(runs))
        ]
    return fires


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, LORD_HOWE])
@pytest.mark.parametrize("when", ["spring", "fall"])
@pytest.mark.parametrize(
    "expression",
    [
        "*/10 * * * *", "30 2 * * *", "0,30 1-3 * * *", "15 * * * *", "* 2 * * *",
        "59 1,2 * * *", "0 2,3 * * *", "0,30 2 * * *", "0,15,45 1-2 * * *",
    ],
)  # fmt: skip
def test_matches_the_rules_applied_minute_by_minute(
    zone: ZoneInfo, when: str, expression: str
) -> None:
    day = (SPRING if when == "spring" else FALL)[zone]
    expected = expected_by_scanning(expression, zone, day)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1, minutes=1)
    times = fire_times(parse_cron(expression), start, zone, len(expected))
    assert iso(times) == expected


CHATHAM = ZoneInfo("Pacific/Chatham")  # 2026-09-27 02:45 -> 03:45


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (NEW_YORK, date(2026, 3, 8)),
        (NEW_YORK, date(2026, 11, 1)),
        (LORD_HOWE, date(2026, 10, 4)),
        (LORD_HOWE, date(2026, 4, 5)),
        (NUUK, date(2026, 3, 28)),
        (CHATHAM, date(2026, 9, 27)),
    ],
)
@pytest.mark.parametrize(
    "expression", ["0 2,3 * * *", "0,30 2 * * *", "30 23 * * *", "*/7 1-3 * * *", "*/10 * * * *"]
)
def test_any_start_finds_the_same_runs(zone: ZoneInfo, day: date, expression: str) -> None:
    """Fire times are a function of the schedule alone: starting anywhere (72 instants, 40
    minutes apart, across the transition) the next run is the next one of a single chain,
    including runs one second apart after a gap."""
    job = parse_cron(expression)
    first = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1, hours=1)
    chain = fire_times(job, first, zone, 400)
    for step in range(72):
        start = first + step * timedelta(minutes=40) + timedelta(seconds=step % 3)
        expected = next(time for time in chain if time > start)
        assert next_fire_time(job, start, zone) == expected, start
