"""Standard (Vixie) cron: parse 5-field expressions, compute DST-safe fire times, describe them.

Pure: no clock, no I/O, no apscheduler. Callers: ``scheduler.triggers`` (fire times of a
job), ``scheduler.spec`` (validation) and ``scheduler preview``.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from scheduler.cron_dialects import dialect_advice, macro_advice

# English on purpose: calendar.month_name follows the process locale.
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTH_NAMES = tuple(month[:3].upper() for month in MONTHS)
DAY_NAMES = tuple(day[:3].upper() for day in WEEKDAYS)
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@hourly": "0 * * * *"}  # fmt: skip
# Every valid month/day falls on every weekday within 40 years (Feb 29 across 2100 is the
# worst case), so only an expression that parse_cron would reject could outlast this.
HORIZON_YEARS = 41
# Larger than any UTC offset change (and any gap or fold) that zoneinfo knows in practice.
_MAX_SHIFT = timedelta(hours=3)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
_LAST_YEAR = 9998  # leaves room for offsets and look-ahead below datetime.max
_NUMBER = re.compile(r"[0-9]+")


class CronError(ValueError):
    """Bad cron text. str(err) is a complete, user-facing message naming the field, e.g.
    "day-of-week field 'MON-FOO': unknown name 'FOO' (use SUN-SAT or 0-7)"."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    open_end: int | None = None  # where `N/step` stops, when not at `high`

    def error(self, text: str, problem: str) -> CronError:
        return CronError(f"{self.name} field {text!r}: {problem}")

    def allowed(self) -> str:
        span = f"{self.low}-{self.high}"
        return f"{self.names[0]}-{self.names[-1]} or {span}" if self.names else span

    def spell(self, value: int, like: str) -> str:
        """A value written the way the user wrote ``like``: as a name or as a number."""
        if self.names and like.isalpha():
            return self.names[(value - self.low) % len(self.names)]
        return str(value)


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES),
    # `1/2` means 1-6/2 (Monday, Wednesday, Friday) as in croniter and Kubernetes.
    _Field("day-of-week", 0, 7, DAY_NAMES, open_end=6),
)
_DAY_OF_WEEK = _FIELDS[4]


@dataclass(frozen=True)
class CronExpression:
    text: str  # as written by the user (stripped)
    minutes: frozenset[int]  # 0-59
    hours: frozenset[int]  # 0-23
    days: frozenset[int]  # 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-6, 0 = Sunday (7 is folded into 0)
    day_or: bool  # both day fields restricted -> a day matching EITHER fires
    fixed_time: bool  # neither minute nor hour field starts with '*' (Vixie DST rule)
    warnings: tuple[str, ...] = ()  # valid but probably not what was meant


def _value(field: _Field, text: str, atom: str) -> int:
    """One number or name. Messages name the atom only when it is not the whole field."""
    alone = atom == text
    if _NUMBER.fullmatch(atom):
        number = int(atom) if len(atom) <= 6 else field.high + 1
        if not field.low <= number <= field.high:
            subject = "" if alone else f"{number} is "
            raise field.error(text, f"{subject}out of range ({field.allowed()})")
        return number
    if atom.upper() in field.names:
        return field.names.index(atom.upper()) + field.low
    if re.fullmatch(r"[0-9]*L|L[0-9-]*|[0-9]*L?W", atom, re.IGNORECASE):
        raise field.error(text, "L (last) and W (weekday) are not standard cron")
    if field.names:
        name = "" if alone else f" '{atom}'"
        raise field.error(text, f"unknown name{name} (use {field.allowed()})")
    subject = "" if alone else f"'{atom}' is "
    raise field.error(text, f"{subject}not a number (use {field.allowed()})")


def _wrapped(field: _Field, first: str, last: str, span: tuple[int, int]) -> str:
    """A reversed range written as the two ranges it probably means, e.g. FRI-SUN,MON."""
    top, bottom = (7, 1) if field is _DAY_OF_WEEK else (field.high, field.low)
    head = first if span[0] == top else f"{first}-{field.spell(top, first)}"
    tail = last if span[1] == bottom else f"{field.spell(bottom, last)}-{last}"
    return f"{head},{tail}"


def _parse_item(field: _Field, text: str, item: str, warnings: list[str]) -> set[int]:
    if "#" in item:
        raise field.error(text, "'#' (nth weekday) is not standard cron")
    if "?" in item:
        quartz = "Quartz's 'no specific value'"
        what = quartz if item == text else f"'?' ({quartz})"
        raise field.error(text, f"{what} is not standard cron: use *")
    spec, slash, step_text = item.partition("/")
    step = 1
    if slash:
        digits = step_text.lstrip("0")
        if not _NUMBER.fullmatch(step_text) or not digits:
            raise field.error(text, f"step '{step_text}' must be a whole number, 1 or more")
        step = int(digits) if len(digits) <= 6 else 10**6  # any step that large means "once"
    if spec == "*":
        low, high = field.low, field.high
    elif "-" in spec:
        first, _, last = spec.partition("-")
        low, high = _value(field, text, first), _value(field, text, last)
        if field is _DAY_OF_WEEK and high == 0 < low:
            high = 7  # Sunday ends a range as 7 (SAT-SUN), as cronie reads it since 2025
        if low > high:
            subject = "" if spec == text else f"range {spec} "
            raise field.error(
                text,
                f"{subject}wraps around ({low} > {high}), which cron does not do: "
                f"use {_wrapped(field, first, last, (low, high))}",
            )
    else:
        low = _value(field, text, spec)
        # `N/step` is short for N-max/step, as croniter, Kubernetes and Quartz read it.
        high = max(low, field.open_end or field.high) if slash else low
    if slash and high > low and low + step > high:
        start = field.spell(low, spec.partition("-")[0])
        warnings.append(
            f"{field.name} field {text!r}: step {step_text.lstrip('0')} is larger than the range "
            f"{low}-{high}, so only {start} matches"
        )
    return set(range(low, high + 1, step))


def _parse_field(field: _Field, text: str, warnings: list[str]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise field.error(text, "empty item in the list")
        values |= _parse_item(field, text, item, warnings)
    return frozenset(values)


def _fields(text: str) -> list[str]:
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            known = ", ".join(MACROS)
            raise CronError(macro_advice(text) or f"unknown cron macro {text!r} (use {known})")
        return macro.split()
    fields = text.split()
    advice = dialect_advice(text, fields) if len(fields) != 5 or re.search("[=(]", text) else None
    if advice:
        raise CronError(advice)
    if len(fields) != 5:
        raise CronError(
            f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    return fields


def _check_fires(days: frozenset[int], months: frozenset[int]) -> None:
    """Reject a day-of-month/month pair with no real date (day-of-week is '*')."""
    if any(day <= calendar.monthrange(2000, month)[1] for day in days for month in months):
        return
    names = [MONTHS[month - 1] for month in sorted(months)]
    verb = "has" if len(names) == 1 else "have"
    day_list = _english(sorted(str(day) for day in days), "or")
    raise CronError(
        f"never fires: {_english(names)} {verb} no day {day_list} "
        "(to keep a job that must not run, write `paused: true`)"
    )


@lru_cache(maxsize=1024)
def parse_cron(text: str) -> CronExpression:
    """Parse standard cron text (5 fields or a macro); raise CronError with a user message."""
    text = text.strip()
    fields = _fields(text)
    warnings: list[str] = []
    minutes, hours, days, months, weekdays = (
        _parse_field(field, part, warnings) for field, part in zip(_FIELDS, fields, strict=True)
    )
    star = [part.startswith("*") for part in fields]
    if not star[2] and star[4]:
        _check_fires(days, months)
    weekdays = frozenset(day % 7 for day in weekdays)  # Sunday is both 0 and 7
    day_or, fixed_time = not (star[2] or star[4]), not (star[0] or star[1])
    return CronExpression(
        text, minutes, hours, days, months, weekdays, day_or, fixed_time, tuple(warnings)
    )


@lru_cache(maxsize=1024)
def _sorted(values: frozenset[int]) -> tuple[int, ...]:
    return tuple(sorted(values))


def _first_day(expr: CronExpression, year: int, month: int, start: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    weekday = (calendar.weekday(year, month, start) + 1) % 7  # cron counts from Sunday
    for day in range(start, last + 1):
        in_days, in_weekdays = day in expr.days, weekday in expr.weekdays
        if (in_days or in_weekdays) if expr.day_or else (in_days and in_weekdays):
            return day
        weekday = (weekday + 1) % 7
    return None


def _next_date(expr: CronExpression, day: date, last_year: int) -> date | None:
    """The first day >= day whose month and day fields match."""
    months = _sorted(expr.months)
    while day.year <= last_year:
        index = bisect_left(months, day.month)
        if index == len(months):
            day = date(day.year + 1, months[0], 1)
        elif months[index] != day.month:
            day = date(day.year, months[index], 1)
        else:
            found = _first_day(expr, day.year, day.month, day.day)
            if found is not None:
                return day.replace(day=found)
            day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return None


def _local_candidates(expr: CronExpression, start: datetime, last_year: int) -> Iterator[datetime]:
    """Matching naive wall-clock times >= start, in order, jumping field by field."""
    hours, minutes = _sorted(expr.hours), _sorted(expr.minutes)
    day = _next_date(expr, start.date(), last_year)
    if day == start.date():  # today: only what is left from the start time on
        for hour in hours[bisect_left(hours, start.hour) :]:
            lowest = start.minute if hour == start.hour else 0
            for minute in minutes[bisect_left(minutes, lowest) :]:
                yield datetime(day.year, day.month, day.day, hour, minute)
        day = _next_date(expr, day + _DAY, last_year)
    while day is not None:
        for hour in hours:
            for minute in minutes:
                yield datetime(day.year, day.month, day.day, hour, minute)
        day = _next_date(expr, day + _DAY, last_year)


def _offset(instant: datetime, tz: tzinfo) -> timedelta:
    """The UTC offset of tz at an instant given as naive UTC."""
    return instant.replace(tzinfo=UTC).astimezone(tz).utcoffset() or timedelta(0)


def _matches(expr: CronExpression, wall: datetime) -> bool:
    in_days, in_weekdays = wall.day in expr.days, wall.isoweekday() % 7 in expr.weekdays
    day_ok = (in_days or in_weekdays) if expr.day_or else (in_days and in_weekdays)
    return (
        day_ok and wall.month in expr.months and wall.hour in expr.hours
        and wall.minute in expr.minutes
    )  # fmt: skip


def _after_gap(expr: CronExpression, transition: datetime, gap: tuple[timedelta, timedelta],
               wall: datetime) -> datetime:  # fmt: skip
    """When a fixed-time job scheduled at ``wall`` runs, ``wall`` being in the gap that opens
    at ``transition`` (naive UTC) or the first wall time after it.

    Every scheduled time in the gap is a run the user asked for (cronie runs each one), so
    they run right after the gap one second apart, in order, followed by the time the gap
    ends on; many of them share that minute evenly rather than spill into the next one.
    """
    before, after = gap
    first = (transition + before + _MINUTE - timedelta(microseconds=1)).replace(
        second=0, microsecond=0
    )
    scheduled = [
        first + n * _MINUTE
        for n in range((transition + after - first) // _MINUTE + 1)
        if _matches(expr, first + n * _MINUTE)
    ]
    if wall not in scheduled:
        return transition
    spacing = min(timedelta(seconds=1), timedelta(minutes=1) / len(scheduled))
    return transition + scheduled.index(wall) * spacing


def _instants(expr: CronExpression, wall: datetime, tz: tzinfo) -> list[datetime]:
    """The instants (naive UTC) at which a job scheduled at this local wall time fires."""
    before = wall.replace(tzinfo=tz).utcoffset() or timedelta(0)
    after = wall.replace(tzinfo=tz, fold=1).utcoffset() or timedelta(0)
    if before == after:
        instant = wall - before
        if expr.fixed_time and not isinstance(tz, timezone):
            earlier = _offset(instant - timedelta(microseconds=1), tz)
            if earlier < before:  # the first wall time after a gap: gap runs go first
                return [_after_gap(expr, instant, (earlier, before), wall)]
        return [instant]
    if before > after:  # repeated hour: real time passes through it twice
        return [wall - before] if expr.fixed_time else [wall - before, wall - after]
    if not expr.fixed_time:  # skipped hour: a wildcard job follows real time, which never got here
        return []
    low, high = wall - after, wall - before  # the transition lies in (low, high]
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        low, high = (middle, high) if _offset(middle, tz) == before else (low, middle)
    return [_after_gap(expr, high.replace(microsecond=0), (before, after), wall)]


def next_fire_time(expr: CronExpression, after: datetime, tz: tzinfo) -> datetime | None:
    """The first fire time strictly after ``after`` (aware), aware in ``tz``; None if never."""
    if after.utcoffset() is None:
        raise ValueError(f"after must be timezone-aware, got {after.isoformat()}")
    after_utc = after.astimezone(UTC).replace(tzinfo=None)
    if after_utc.year > _LAST_YEAR:
        return None
    fixed_offset = isinstance(tz, timezone)
    # A wall time can only fire after `after` if it is later than `after` read with the
    # smallest offset in effect soon; near a fall-back that is hours before after's wall time.
    # Runs for the times in a gap come shortly after it: their wall times are up to hours
    # before after's wall time too.
    smallest = min(
        _offset(after_utc - _MAX_SHIFT, tz),
        _offset(after_utc, tz),
        _offset(after_utc + _MAX_SHIFT, tz),
    )
    cursor = after_utc + smallest
    start = cursor.replace(second=0, microsecond=0) + _MINUTE
    best: datetime | None = None
    best_wall = datetime.max
    for wall in _local_candidates(expr, start, min(cursor.year + HORIZON_YEARS, _LAST_YEAR)):
        if wall > best_wall:
            break
        for instant in _instants(expr, wall, tz):
            if instant > after_utc and (best is None or instant < best):
                best = instant
                # Local order is absolute order unless the offset changed shortly before
                # `best`; only then can a later wall time (in a repeated hour) fire sooner.
                settled = fixed_offset or _offset(best - _MAX_SHIFT, tz) == _offset(best, tz)
                best_wall = datetime.min if settled else best + _offset(best, tz) + _MAX_SHIFT
    return None if best is None else best.replace(tzinfo=UTC).astimezone(tz)


def fire_times(expr: CronExpression, after: datetime, tz: tzinfo, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, in increasing order."""
    times: list[datetime] = []
    while len(times) < count:
        fire = next_fire_time(expr, times[-1] if times else after, tz)
        if fire is None:
            break
        times.append(fire)
    return times


def _english(items: list[str], conjunction: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _step(values: frozenset[int], low: int, high: int) -> int | None:
    """n when values are exactly low, low+n, ... (n > 1) up to high."""
    ordered = _sorted(values)
    if len(ordered) < 2 or ordered[0] != low:
        return None
    step = ordered[1] - ordered[0]
    return step if step > 1 and ordered == tuple(range(low, high + 1, step)) else None


def _values(values: frozenset[int], name: Callable[[int], str] = str) -> str:
    """'Monday through Friday' for a run of three or more, else 'Monday, Wednesday and Friday'."""
    ordered = _sorted(values)
    words = [name(value) for value in ordered]
    if len(ordered) >= 3 and ordered[-1] - ordered[0] == len(ordered) - 1:
        return f"{words[0]} through {words[-1]}"
    return _english(words)


def _ordinal(number: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 10 <= number % 100 <= 20 else suffix}"


def _time_phrase(minutes: frozenset[int], hours: frozenset[int]) -> str:
    if len(minutes) == 1 and len(hours) <= 4:
        (minute,) = minutes
        return "At " + _english([f"{hour:02}:{minute:02}" for hour in _sorted(hours)])
    if minutes == {0} and len(hours) == 24:
        return "Every hour"
    minute_step, hour_step, ordered = _step(minutes, 0, 59), _step(hours, 0, 23), _sorted(hours)
    if len(hours) == 24:
        hour_phrase = "every hour"
    elif hour_step:
        hour_phrase = f"every {_ordinal(hour_step)} hour"
    else:
        hour_phrase = f"hour{'s' if len(hours) > 1 else ''} {_values(hours)}"
    if len(minutes) < 60 and not minute_step:
        return f"At minute{'s' if len(minutes) > 1 else ''} {_values(minutes)} past {hour_phrase}"
    phrase = f"Every {minute_step} minutes" if minute_step else "Every minute"
    if len(hours) == 24:
        return phrase
    if ordered[-1] - ordered[0] == len(ordered) - 1:
        return f"{phrase}, between {ordered[0]:02}:00 and {ordered[-1]:02}:59"
    return f"{phrase}, during {hour_phrase}"


def _day_phrases(expr: CronExpression) -> list[str]:
    day_step = _step(expr.days, 1, 31)
    if day_step:
        days = f"on every {_ordinal(day_step)} day of the month"
    else:
        days = f"on day{'s' if len(expr.days) > 1 else ''} {_values(expr.days)} of the month"
    weekdays = _values(expr.weekdays, WEEKDAYS.__getitem__)
    if expr.day_or:
        return [f"{days} or on {weekdays}"]
    if " through " not in weekdays:
        weekdays = f"only on {weekdays}"
    return ([days] if len(expr.days) < 31 else []) + ([weekdays] if len(expr.weekdays) < 7 else [])


@lru_cache(maxsize=1024)
def describe(expr: CronExpression) -> str:
    """Plain English like cron-descriptor, e.g. "At 09:00, Monday through Friday"; never raises."""
    try:
        parts = [_time_phrase(expr.minutes, expr.hours), *_day_phrases(expr)]
        if len(expr.months) < 12:
            months = _values(expr.months, lambda month: MONTHS[month - 1])
            parts.append(months if " through " in months else f"only in {months}")
        return ", ".join(parts)
    except Exception:  # describing is a courtesy: an odd shape must not break a listing
        return f"cron {expr.text}"
