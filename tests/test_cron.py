"""Standard (Vixie) cron: what each field means, when it fires, what it rejects, how it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler.cron import CronError, CronExpression, describe, fire_times, parse_cron


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next_times(expression: str, start: str, count: int) -> list[str]:
    times = fire_times(parse_cron(expression), utc(start), UTC, count)
    return [time.strftime("%a %Y-%m-%d %H:%M") for time in times]


# 2026-01-01 is a Thursday; 2026-11-30 is a Monday.
FIRE_TIMES = [
    # every field on its own
    ("* * * * *", "2026-01-01 00:00", ["Thu 2026-01-01 00:01", "Thu 2026-01-01 00:02"]),
    ("5 * * * *", "2026-01-01 00:00", ["Thu 2026-01-01 00:05", "Thu 2026-01-01 01:05"]),
    ("0 9 * * *", "2026-01-01 00:00", ["Thu 2026-01-01 09:00", "Fri 2026-01-02 09:00"]),
    ("0 0 15 * *", "2026-01-01 00:00", ["Thu 2026-01-15 00:00", "Sun 2026-02-15 00:00"]),
    ("0 0 1 6 *", "2026-01-01 00:00", ["Mon 2026-06-01 00:00", "Tue 2027-06-01 00:00"]),
    ("0 0 * * 3", "2026-01-01 00:00", ["Wed 2026-01-07 00:00", "Wed 2026-01-14 00:00"]),
    ("0 0 31 * *", "2026-01-01 00:00", ["Sat 2026-01-31 00:00", "Tue 2026-03-31 00:00"]),
    ("59 23 31 12 *", "2026-01-01 00:00", ["Thu 2026-12-31 23:59", "Fri 2027-12-31 23:59"]),
    # lists, ranges, steps
    (
        "0,30 9,17 * * *",
        "2026-01-01 00:00",
        ["Thu 2026-01-01 09:00", "Thu 2026-01-01 09:30", "Thu 2026-01-01 17:00"],
    ),
    (
        "10-12 0 * * *",
        "2026-01-01 00:00",
        ["Thu 2026-01-01 00:10", "Thu 2026-01-01 00:11", "Thu 2026-01-01 00:12"],
    ),
    (
        "*/20 * * * *",
        "2026-01-01 00:00",
        ["Thu 2026-01-01 00:20", "Thu 2026-01-01 00:40", "Thu 2026-01-01 01:00"],
    ),
    (
        "5-40/15 * * * *",
        "2026-01-01 00:00",
        [
            "Thu 2026-01-01 00:05",
            "Thu 2026-01-01 00:20",
            "Thu 2026-01-01 00:35",
            "Thu 2026-01-01 01:05",
        ],
    ),
    ("0 */8 * * *", "2026-01-01 00:00", ["Thu 2026-01-01 08:00", "Thu 2026-01-01 16:00"]),
    ("0 0 */10 * *", "2026-01-01 00:00", ["Sun 2026-01-11 00:00", "Wed 2026-01-21 00:00"]),
    # names, in any case, alone, in ranges and with steps
    (
        "0 0 1 JAN-MAR/2 *",
        "2026-01-01 00:00",
        ["Sun 2026-03-01 00:00", "Fri 2027-01-01 00:00", "Mon 2027-03-01 00:00"],
    ),
    ("0 0 1 jun *", "2026-01-01 00:00", ["Mon 2026-06-01 00:00", "Tue 2027-06-01 00:00"]),
    (
        "0 0 * * mon-Wed",
        "2026-01-01 00:00",
        [
            "Mon 2026-01-05 00:00",
            "Tue 2026-01-06 00:00",
            "Wed 2026-01-07 00:00",
            "Mon 2026-01-12 00:00",
        ],
    ),
    ("0 0 * * Sun", "2026-01-01 00:00", ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00"]),
    # Sunday is 0 and 7; 7 also ends ranges and steps
    ("0 0 * * 0", "2026-01-01 00:00", ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00"]),
    ("0 0 * * 7", "2026-01-01 00:00", ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00"]),
    (
        "0 0 * * 5-7",
        "2026-01-01 00:00",
        [
            "Fri 2026-01-02 00:00",
            "Sat 2026-01-03 00:00",
            "Sun 2026-01-04 00:00",
            "Fri 2026-01-09 00:00",
        ],
    ),
    (
        "0 0 * * */2",
        "2026-01-01 00:00",
        ["Sat 2026-01-03 00:00", "Sun 2026-01-04 00:00", "Tue 2026-01-06 00:00"],
    ),
    ("0 0 * * */7", "2026-01-01 00:00", ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00"]),
    # 1-5 is Monday to Friday (APScheduler's from_crontab would say Tuesday to Saturday)
    (
        "0 0 * * 1-5",
        "2026-11-29 00:00",
        [
            "Mon 2026-11-30 00:00",
            "Tue 2026-12-01 00:00",
            "Wed 2026-12-02 00:00",
            "Thu 2026-12-03 00:00",
            "Fri 2026-12-04 00:00",
            "Mon 2026-12-07 00:00",
        ],
    ),
    (
        "0 9 * * MON-FRI",
        "2026-12-04 09:00",
        ["Mon 2026-12-07 09:00", "Tue 2026-12-08 09:00"],
    ),
    # both day fields restricted: a day matching EITHER fires
    (
        "0 0 13 * FRI",
        "2026-01-01 00:00",
        [
            "Fri 2026-01-02 00:00",
            "Fri 2026-01-09 00:00",
            "Tue 2026-01-13 00:00",
            "Fri 2026-01-16 00:00",
        ],
    ),
    (
        "0 0 30 2 1",
        "2026-01-31 00:00",
        ["Mon 2026-02-02 00:00", "Mon 2026-02-09 00:00"],
    ),
    # one day field starts with '*': days must match both
    (
        "0 0 */2 * 1",
        "2026-01-01 00:00",
        [
            "Mon 2026-01-05 00:00",
            "Mon 2026-01-19 00:00",
            "Mon 2026-02-09 00:00",
            "Mon 2026-02-23 00:00",
        ],
    ),
    (
        "0 0 1-7 * */7",
        "2026-01-01 00:00",
        ["Sun 2026-01-04 00:00", "Sun 2026-02-01 00:00", "Sun 2026-03-01 00:00"],
    ),
    # macros
    ("@yearly", "2026-01-01 00:00", ["Fri 2027-01-01 00:00", "Sat 2028-01-01 00:00"]),
    ("@annually", "2026-01-01 00:00", ["Fri 2027-01-01 00:00"]),
    ("@monthly", "2026-01-01 00:00", ["Sun 2026-02-01 00:00", "Sun 2026-03-01 00:00"]),
    ("@weekly", "2026-01-01 00:00", ["Sun 2026-01-04 00:00", "Sun 2026-01-11 00:00"]),
    ("@daily", "2026-01-01 00:00", ["Fri 2026-01-02 00:00", "Sat 2026-01-03 00:00"]),
    ("@midnight", "2026-01-01 00:00", ["Fri 2026-01-02 00:00"]),
    ("@hourly", "2026-01-01 00:00", ["Thu 2026-01-01 01:00", "Thu 2026-01-01 02:00"]),
    ("@Daily", "2026-01-01 00:00", ["Fri 2026-01-02 00:00"]),
    # leap day, and Feb 29 on a Sunday: 40 years apart across 2100, which is no leap year
    ("0 0 29 2 *", "2026-01-01 00:00", ["Tue 2028-02-29 00:00", "Sun 2032-02-29 00:00"]),
    ("0 0 29 2 */7", "2089-01-01 00:00", ["Sun 2128-02-29 00:00"]),
    # strictly after: a fire time equal to `after` is not repeated; seconds count
    ("0 9 * * *", "2026-01-01 09:00", ["Fri 2026-01-02 09:00"]),
    ("0 9 * * *", "2026-01-01 08:59:59.999999", ["Thu 2026-01-01 09:00"]),
    ("0 9 * * *", "2026-01-01 09:00:00.000001", ["Fri 2026-01-02 09:00"]),
    # whitespace around and between fields
    ("  0\t9  * * *\n", "2026-01-01 00:00", ["Thu 2026-01-01 09:00"]),
]


@pytest.mark.parametrize(("expression", "start", "expected"), FIRE_TIMES)
def test_fire_times(expression: str, start: str, expected: list[str]) -> None:
    assert next_times(expression, start, len(expected)) == expected


def test_sunday_as_0_and_as_7_is_the_same_schedule() -> None:
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * 0").weekdays == {0}
    assert parse_cron("0 0 * * 5-7").weekdays == {5, 6, 0}


def test_fire_times_come_back_in_the_requested_zone() -> None:
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    (fire,) = fire_times(parse_cron("0 9 * * *"), utc("2026-01-01 00:00"), tokyo, 1)
    assert fire.tzinfo is tokyo
    assert fire.isoformat() == "2026-01-02T09:00:00+09:00"


def test_after_must_be_aware() -> None:
    from scheduler.cron import next_fire_time

    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_time(parse_cron("0 9 * * *"), datetime(2026, 1, 1), UTC)


def test_no_fire_times_past_the_supported_years() -> None:
    assert fire_times(parse_cron("0 0 1 1 *"), utc("9997-06-01 00:00"), UTC, 3) == [
        utc("9998-01-01 00:00")
    ]


@pytest.mark.parametrize(
    ("expression", "day_or", "fixed_time"),
    [
        ("0 0 13 * FRI", True, True),
        ("0 0 13 * *", False, True),
        ("0 0 * * FRI", False, True),
        ("0 0 */2 * 1", False, True),
        ("0 0 1 * */2", False, True),
        ("30 2 * * *", False, True),
        ("0-59 2 * * *", False, True),
        ("* 2 * * *", False, False),
        ("0 * * * *", False, False),
        ("*/15 * * * *", False, False),
        ("@hourly", False, False),
        ("@daily", False, True),
    ],
)
def test_day_rule_and_dst_rule_follow_the_star(
    expression: str, day_or: bool, fixed_time: bool
) -> None:
    parsed = parse_cron(expression)
    assert (parsed.day_or, parsed.fixed_time) == (day_or, fixed_time)


def test_parse_keeps_the_text_and_is_cached() -> None:
    parsed = parse_cron("  */15 9-17 * * MON-FRI ")
    assert parsed.text == "*/15 9-17 * * MON-FRI"
    assert parsed.minutes == {0, 15, 30, 45}
    assert parsed.hours == set(range(9, 18))
    assert parsed.weekdays == {1, 2, 3, 4, 5}
    assert parse_cron("*/15 9-17 * * MON-FRI") is parse_cron("*/15 9-17 * * MON-FRI")


# What is refused, and what each message says, is pinned in
# test_cron_forms_accepted_and_refused.py.


def test_cron_error_is_a_value_error() -> None:
    # pydantic turns ValueError raised in a validator into a validation error with our text.
    assert issubclass(CronError, ValueError)


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("* * * * *", "Every minute"),
        ("@hourly", "Every hour"),
        ("5 * * * *", "At minute 5 past every hour"),
        ("0 */2 * * *", "At minute 0 past every 2nd hour"),
        ("0 2 * * *", "At 02:00"),
        ("0 8 * * 1", "At 08:00, only on Monday"),
        ("0 0 * * 7", "At 00:00, only on Sunday"),
        ("0 9,17 * * 1,3,5", "At 09:00 and 17:00, only on Monday, Wednesday and Friday"),
        ("0 0 1 * *", "At 00:00, on day 1 of the month"),
        ("0 0 1,15 * *", "At 00:00, on days 1 and 15 of the month"),
        ("0 0 13 * FRI", "At 00:00, on day 13 of the month or on Friday"),
        ("@yearly", "At 00:00, on day 1 of the month, only in January"),
        ("0 12 * JAN-MAR *", "At 12:00, January through March"),
        (
            "*/10 9-17 * * MON-FRI",
            "Every 10 minutes, between 09:00 and 17:59, Monday through Friday",
        ),
        ("1,2,4 1,2,4,8,16 * * *", "At minutes 1, 2 and 4 past hours 1, 2, 4, 8 and 16"),
    ],
)
def test_describe(expression: str, text: str) -> None:
    assert describe(parse_cron(expression)) == text


def test_describe_never_raises() -> None:
    empty: frozenset[int] = frozenset()
    odd = CronExpression("odd", empty, empty, empty, empty, empty, day_or=False, fixed_time=True)
    assert describe(odd) == "cron odd"
