"""Cron text written for other tools, recognised so the error says what to write instead.

Users paste schedules from crontabs (``@reboot``, ``CRON_TZ=``), Go schedulers (``@every``),
AWS EventBridge (``cron(...)``, ``rate(...)``) and Quartz or Spring (seconds first). None of
them is standard cron, so ``scheduler.cron`` refuses them; this module only words the refusal,
showing the 5-field equivalent where one exists. Pure; called by ``cron`` on its error path.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"([0-9]+[wdhms])+")
_ENV = re.compile(r"(CRON_TZ|TZ)=(\S*)\s+(.*)", re.DOTALL)
_AWS = re.compile(r"(cron|rate)\((.*)\)", re.IGNORECASE | re.DOTALL)
_RATE = re.compile(r"([0-9]+)\s+(minute|hour|day)s?", re.IGNORECASE)
_YEAR = re.compile(r"[0-9]{4}([-,/][0-9]+)*")
_WEEKDAY_NUMBER = re.compile(r"(?<![/0-9])[0-9]+")  # not a step
_NUMERIC = re.compile(r"[0-9*,/-]*[0-9][0-9*,/-]*")
_NO_SECONDS = "cron has no seconds (use `interval:` to run more often than once a minute)"
_YEARS = ", with `start:` and `end:` for the years"


def macro_advice(text: str) -> str | None:
    """What to write instead of an ``@`` macro that standard cron does not have."""
    word, _, rest = text.partition(" ")
    word = word.lower()
    if word == "@reboot":
        return (
            "@reboot is not supported: a scheduler daemon has no boot; start the command with "
            "your service manager, or run `scheduler trigger JOB` after a deploy"
        )
    if word == "@every":
        value = rest.strip().lower()
        duration = value if _DURATION.fullmatch(value) else None
        return f"@every is not cron: write {_interval(duration)}"
    if word == "@once":
        return "@once is not cron: write `at:` with a time, e.g. at: 2026-12-01T09:00:00"
    return None


def dialect_advice(text: str, fields: list[str]) -> str | None:
    """What to write instead of cron text in another tool's dialect; None if not one."""
    env = _ENV.fullmatch(text)
    if env:
        variable, zone, rest = env.groups()
        return (
            f"{variable}= is not part of a cron expression: write `timezone: {zone}` "
            f'beside `cron: "{rest.strip()}"`'
        )
    aws = _AWS.fullmatch(text)
    if aws:
        kind, inner = aws.group(1).lower(), aws.group(2).strip()
        return _rate(inner) if kind == "rate" else _aws("AWS cron(...) is not cron", inner.split())
    if len(fields) == 6 and "?" in (fields[2], fields[4]):
        return _aws("6 fields with a year (AWS style) are not cron", fields)
    if len(fields) == 6 and _YEAR.fullmatch(fields[5]) and "?" not in fields:
        return _equivalent("a 6th field for the year is not cron", fields[:5], None, _YEARS)
    if len(fields) in (6, 7):
        return _quartz(fields)
    return None


def _rate(inner: str) -> str:
    rate = _RATE.fullmatch(inner)
    interval = f"{rate.group(1)}{rate.group(2)[0].lower()}" if rate else None
    return f"AWS rate(...) is not cron: write {_interval(interval)}"


def _interval(duration: str | None) -> str:
    if duration is None:
        return "`interval:` with a duration like 90s, 5m or 6h instead of `cron:`"
    return f"`interval: {duration}` instead of `cron:`"


def _aws(label: str, fields: list[str]) -> str:
    """AWS fields: minute hour day-of-month month day-of-week year; day-of-week 1 = Sunday."""
    if len(fields) not in (5, 6):
        return f"{label}: write its first 5 fields, minute hour day-of-month month day-of-week"
    minute, hour, day, month, weekday, year = [*fields, "*"][:6]
    weekday, note = _sunday_is_one(weekday)
    note += "" if year in ("*", "?") else _YEARS
    return _equivalent(label, [minute, hour, day, month, weekday], None, note)


def _quartz(fields: list[str]) -> str:
    """Seconds first, then the 5 fields, then (7 fields) a year. A '?' marks Quartz, which
    counts day-of-week from 1 = Sunday; without one it is Spring's 0-7, like cron."""
    label = (
        "6 fields (seconds first, as Quartz and Spring write them) are not cron"
        if len(fields) == 6
        else "7 fields (seconds first and a year, as Quartz writes them) are not cron"
    )
    second, minute, hour, day, month, weekday = fields[:6]
    note = ""
    if "?" in fields:
        weekday, note = _sunday_is_one(weekday)
    if len(fields) == 7 and fields[6] not in ("*", "?"):
        note += _YEARS
    problem = _NO_SECONDS if second.lstrip("0") else None
    return _equivalent(label, [minute, hour, day, month, weekday], problem, note)


def _sunday_is_one(weekday: str) -> tuple[str, str]:
    """Renumber a day-of-week field that counts 1-7 from Sunday to cron's 0-6."""
    numbers = [int(n) for n in _WEEKDAY_NUMBER.findall(weekday)]
    if not _NUMERIC.fullmatch(weekday) or not all(1 <= n <= 7 for n in numbers):
        return weekday, ""
    renumbered = _WEEKDAY_NUMBER.sub(lambda m: str(int(m.group()) - 1), weekday)
    return renumbered, " (day-of-week shifted by one: Sunday is 1 there, 0 in cron)"


def _equivalent(label: str, five: list[str], problem: str | None, note: str = "") -> str:
    from scheduler.cron import CronError, parse_cron

    if problem is not None:
        return f"{label}, and this one has no 5-field equivalent: {problem}"
    candidate = " ".join("*" if part == "?" else part for part in five)
    try:
        parse_cron(candidate)
    except CronError as exc:
        return f"{label}, and this one has no 5-field equivalent: {exc}"
    return f"{label}: write '{candidate}'{note}"
