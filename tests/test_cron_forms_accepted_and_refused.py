"""The cron forms real crontabs contain: what is accepted (as cronie or croniter read it) and
what is refused with a message saying what to write instead, checked word for word.

The forms come from 248 expressions collected from public repositories (issue 14).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from croniter import croniter

from scheduler.cron import CronError, fire_times, parse_cron

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday

# (form users write, the plain cron it means, the warning `validate` prints or None)
ACCEPTED = [
    # Sunday by name (or 0) at the end of a range is 7, as cronie reads it since 2025.
    ("0 0 * * SAT-SUN", "0 0 * * 6,0", None),
    ("0 0 * * fri-sun", "0 0 * * 5,6,0", None),
    ("0 0 * * MON-SUN", "0 0 * * *", None),
    ("0 0 * * 5-0", "0 0 * * 5,6,0", None),
    ("0 0 * * FRI-SUN/2", "0 0 * * 5,0", None),
    # A step larger than its range: the first value only, as cronie does, with a warning.
    (
        "9 2-23/24 * * *",
        "9 2 * * *",
        "hour field '2-23/24': step 24 is larger than the range 2-23, so only 2 matches",
    ),
    (
        "*/60 * * * *",
        "0 * * * *",
        "minute field '*/60': step 60 is larger than the range 0-59, so only 0 matches",
    ),
    (
        "0 0 1 JAN-MAR/5 *",
        "0 0 1 1 *",
        "month field 'JAN-MAR/5': step 5 is larger than the range 1-3, so only JAN matches",
    ),
    # N/step is N-max/step, as croniter, Kubernetes and Quartz read it (cronie refuses it,
    # but no reader gives it another meaning, so refusing would only cost a rewrite).
    ("0 1/6 * * *", "0 1,7,13,19 * * *", None),
    ("5/15 * * * *", "5,20,35,50 * * * *", None),
    ("0 0 1/10 * *", "0 0 1,11,21,31 * *", None),
    # day-of-week N/step stops at Saturday, as in croniter and Kubernetes
    ("0 0 * * MON/2", "0 0 * * 1,3,5", None),
    (
        "0 0 1 2/20 *",
        "0 0 1 2 *",
        "month field '2/20': step 20 is larger than the range 2-12, so only 2 matches",
    ),
]


@pytest.mark.parametrize(("form", "meaning", "warning"), ACCEPTED)
def test_accepted_forms_fire_as_their_plain_meaning_and_as_croniter_says(
    form: str, meaning: str, warning: str | None
) -> None:
    parsed = parse_cron(form)
    ours = fire_times(parsed, START, UTC, 30)
    assert ours == fire_times(parse_cron(meaning), START, UTC, 30)
    oracle = croniter(form, START, day_or=True)
    assert ours == [oracle.get_next(datetime) for _ in ours]
    assert parsed.warnings == ((warning,) if warning else ())


REFUSED = [
    # other tools' macros and crontab lines
    (
        "@reboot",
        "@reboot is not supported: a scheduler daemon has no boot; start the command with your "
        "service manager, or run `scheduler trigger JOB` after a deploy",
    ),
    ("@every 6h", "@every is not cron: write `interval: 6h` instead of `cron:`"),
    ("@every 1h30m", "@every is not cron: write `interval: 1h30m` instead of `cron:`"),
    (
        "@every 90 seconds",
        "@every is not cron: write `interval:` with a duration like 90s, 5m or 6h instead of "
        "`cron:`",
    ),
    ("@once", "@once is not cron: write `at:` with a time, e.g. at: 2026-12-01T09:00:00"),
    (
        "@fortnightly",
        "unknown cron macro '@fortnightly' (use @yearly, @annually, @monthly, @weekly, @daily, "
        "@midnight, @hourly)",
    ),
    (
        "CRON_TZ=America/New_York 0 9 * * *",
        "CRON_TZ= is not part of a cron expression: write `timezone: America/New_York` beside "
        '`cron: "0 9 * * *"`',
    ),
    (
        "TZ=Europe/Berlin 30 2 * * *",
        "TZ= is not part of a cron expression: write `timezone: Europe/Berlin` beside "
        '`cron: "30 2 * * *"`',
    ),
    (
        "TZ=UTC @daily",
        'TZ= is not part of a cron expression: write `timezone: UTC` beside `cron: "@daily"`',
    ),
    (
        "CRON_TZ=UTC 0 9 * *",
        'CRON_TZ= is not part of a cron expression: write `timezone: UTC` beside `cron: "0 9 * *"`',
    ),
    # AWS EventBridge: day-of-week counts from 1 = Sunday, a year field, '?'
    ("cron(0 12 * * ? *)", "AWS cron(...) is not cron: write '0 12 * * *'"),
    (
        "cron(0 8 ? * 2-6 *)",
        "AWS cron(...) is not cron: write '0 8 * * 1-5' (day-of-week shifted by one: Sunday is "
        "1 there, 0 in cron)",
    ),
    (
        "cron(0 12 * * ? 2027)",
        "AWS cron(...) is not cron: write '0 12 * * *', with `start:` and `end:` for the years",
    ),
    (
        "cron(15 10 ? * 6L *)",
        "AWS cron(...) is not cron, and this one has no 5-field equivalent: day-of-week field "
        "'6L': L (last) and W (weekday) are not standard cron",
    ),
    ("cron(0 12 * * *)", "AWS cron(...) is not cron: write '0 12 * * *'"),
    ("0 12 * * ? *", "6 fields with a year (AWS style) are not cron: write '0 12 * * *'"),
    (
        "cron(0 12 * *)",
        "AWS cron(...) is not cron: write its first 5 fields, minute hour day-of-month month "
        "day-of-week",
    ),
    ("rate(5 minutes)", "AWS rate(...) is not cron: write `interval: 5m` instead of `cron:`"),
    ("rate(1 hour)", "AWS rate(...) is not cron: write `interval: 1h` instead of `cron:`"),
    # Quartz and Spring: seconds first, then (Quartz) an optional year
    (
        "0 0 9 * * MON-FRI",
        "6 fields (seconds first, as Quartz and Spring write them) are not cron: "
        "write '0 9 * * MON-FRI'",
    ),
    (
        "0 0 9 * * 1",
        "6 fields (seconds first, as Quartz and Spring write them) are not cron: write '0 9 * * 1'",
    ),
    (
        "0 0 9 ? * 2-6",
        "6 fields (seconds first, as Quartz and Spring write them) are not cron: "
        "write '0 9 * * 1-5' (day-of-week shifted by one: Sunday is 1 there, 0 in cron)",
    ),
    (
        "0 0 12 ? * MON-FRI *",
        "7 fields (seconds first and a year, as Quartz writes them) are not cron: "
        "write '0 12 * * MON-FRI'",
    ),
    (
        "0 0 12 * * ? 2027",
        "7 fields (seconds first and a year, as Quartz writes them) are not cron: "
        "write '0 12 * * *', with `start:` and `end:` for the years",
    ),
    (
        "*/10 * * * * *",
        "6 fields (seconds first, as Quartz and Spring write them) are not cron, and this one "
        "has no 5-field equivalent: cron has no seconds (use `interval:` to run more often than "
        "once a minute)",
    ),
    (
        "0 0 12 L * ?",
        "6 fields (seconds first, as Quartz and Spring write them) are not cron, and this one "
        "has no 5-field equivalent: day-of-month field 'L': L (last) and W (weekday) are not "
        "standard cron",
    ),
    (
        "0 9 * * 1-5 2026",
        "a 6th field for the year is not cron: write '0 9 * * 1-5', with `start:` and `end:` "
        "for the years",
    ),
    ("0 0 * * * * * *", "cron needs 5 fields (minute hour day-of-month month day-of-week), got 8"),
    ("0 9 * *", "cron needs 5 fields (minute hour day-of-month month day-of-week), got 4"),
    ("", "cron needs 5 fields (minute hour day-of-month month day-of-week), got 0"),
    # a date that never comes (some teams' way of saying "disabled")
    (
        "0 0 31 2 *",
        "never fires: February has no day 31 (to keep a job that must not run, write "
        "`paused: true`)",
    ),
    (
        "0 0 30,31 2 *",
        "never fires: February has no day 30 or 31 (to keep a job that must not run, write "
        "`paused: true`)",
    ),
    (
        "0 0 31 4,6,9,11 *",
        "never fires: April, June, September and November have no day 31 (to keep a job that "
        "must not run, write `paused: true`)",
    ),
    (
        "0 0 31 2 */2",
        "never fires: February has no day 31 (to keep a job that must not run, write "
        "`paused: true`)",
    ),
    # one field wrong: the field is quoted once, its bad part only when it is not all of it
    ("61 * * * *", "minute field '61': out of range (0-59)"),
    ("1,61 * * * *", "minute field '1,61': 61 is out of range (0-59)"),
    ("0 24 * * *", "hour field '24': out of range (0-23)"),
    ("0 0 0 * *", "day-of-month field '0': out of range (1-31)"),
    ("0 0 * 13 *", "month field '13': out of range (JAN-DEC or 1-12)"),
    ("0 0 * * 8", "day-of-week field '8': out of range (SUN-SAT or 0-7)"),
    ("0 0 * FOO *", "month field 'FOO': unknown name (use JAN-DEC or 1-12)"),
    ("0 0 * * MON-FOO", "day-of-week field 'MON-FOO': unknown name 'FOO' (use SUN-SAT or 0-7)"),
    ("0 MON * * *", "hour field 'MON': not a number (use 0-23)"),
    ("0 1,MON * * *", "hour field '1,MON': 'MON' is not a number (use 0-23)"),
    (
        "0 0 * * FRI-MON",
        "day-of-week field 'FRI-MON': wraps around (5 > 1), which cron does not do: "
        "use FRI-SUN,MON",
    ),
    (
        "0 0 * * 5-2",
        "day-of-week field '5-2': wraps around (5 > 2), which cron does not do: use 5-7,1-2",
    ),
    (
        "0 0 * * 7-3",
        "day-of-week field '7-3': wraps around (7 > 3), which cron does not do: use 7,1-3",
    ),
    (
        "0 0 * * 5-1,3",
        "day-of-week field '5-1,3': range 5-1 wraps around (5 > 1), which cron does not do: "
        "use 5-7,1",
    ),
    (
        "0 22-2 * * *",
        "hour field '22-2': wraps around (22 > 2), which cron does not do: use 22-23,0-2",
    ),
    (
        "0 0 * NOV-FEB *",
        "month field 'NOV-FEB': wraps around (11 > 2), which cron does not do: use NOV-DEC,JAN-FEB",
    ),
    ("*/0 * * * *", "minute field '*/0': step '0' must be a whole number, 1 or more"),
    ("0 0 1-5/x * *", "day-of-month field '1-5/x': step 'x' must be a whole number, 1 or more"),
    ("0 0 L * *", "day-of-month field 'L': L (last) and W (weekday) are not standard cron"),
    ("0 0 1,L * *", "day-of-month field '1,L': L (last) and W (weekday) are not standard cron"),
    ("0 0 15W * *", "day-of-month field '15W': L (last) and W (weekday) are not standard cron"),
    ("0 0 * * 5L", "day-of-week field '5L': L (last) and W (weekday) are not standard cron"),
    ("0 0 * * FRI#3", "day-of-week field 'FRI#3': '#' (nth weekday) is not standard cron"),
    (
        "0 0 ? * MON",
        "day-of-month field '?': Quartz's 'no specific value' is not standard cron: use *",
    ),
    (
        "0 0 1,? * MON",
        "day-of-month field '1,?': '?' (Quartz's 'no specific value') is not standard cron: use *",
    ),
    ("1,,2 * * * *", "minute field '1,,2': empty item in the list"),
    ("1, * * * *", "minute field '1,': empty item in the list"),
]


@pytest.mark.parametrize(("form", "message"), REFUSED)
def test_refused_forms_say_what_to_write_instead(form: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(form)
    assert str(caught.value) == message
