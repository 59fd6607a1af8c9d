"""Random valid cron expressions fire when croniter (a test-only oracle) says they do, in UTC.

Generation stays inside what Vixie cron and croniter 7 read the same way:
- A day field is either exactly '*' or has no '*' item at all. Vixie decides AND/OR by whether
  a day field *starts with* '*' (so `*/2` in day-of-month means AND); croniter only treats a
  bare '*' as unrestricted and ORs `*/2` with the day of week. The AND case with `*/n` is
  pinned by the table in test_cron.py instead.
- `N/S` is N-max/S (day-of-week: N-6/S), as croniter reads it; N stays below 7 there.
- No one-value range like `3-3`: croniter 7 expands it to '*'.
Day-of-week 7, `5-7` and `*/n` over 0-7 agree in both (checked by this test).
Expressions that can never fire (Feb 30) are rejected by parse_cron and skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scheduler.cron import MONTH_NAMES, CronError, fire_times, parse_cron

DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def number(low: int, high: int, names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A value as digits or, where the field has them, as a name in upper or lower case."""
    digits = st.integers(low, high).map(str)
    if not names:
        return digits
    return digits | st.sampled_from(names) | st.sampled_from(names).map(str.lower)


@st.composite
def item(
    draw: st.DrawFn,
    low: int,
    high: int,
    names: tuple[str, ...],
    base: int,
    star: bool,
) -> str:
    kind = draw(st.sampled_from(["number", "range", "range/step", "n/step", "*/step"] if star
                                else ["number", "range", "range/step", "n/step"]))  # fmt: skip
    if kind == "number":
        return draw(number(low, high, names))
    if kind == "n/step":
        start = draw(number(low, 6 if names == DAY_NAMES else high, names))
        return f"{start}/{draw(st.integers(1, high + 5))}"  # a step past the range: start only
    if kind == "*/step":
        return f"*/{draw(st.integers(1, high))}"
    first = draw(st.integers(low, high - 1))
    last = draw(st.integers(first + 1, high))
    spelled = [
        names[value - base] if names and value - base < len(names) and draw(st.booleans())
        else str(value)
        for value in (first, last)
    ]  # fmt: skip
    text = f"{spelled[0]}-{spelled[1]}"
    return f"{text}/{draw(st.integers(1, high))}" if kind == "range/step" else text


def field(
    low: int, high: int, names: tuple[str, ...] = (), base: int = 0, star: bool = True
) -> st.SearchStrategy[str]:
    items = st.lists(item(low, high, names, base, star), min_size=1, max_size=3).map(",".join)
    return st.just("*") | items


expressions = st.tuples(
    field(0, 59),
    field(0, 23),
    field(1, 31, star=False),
    field(1, 12, MONTH_NAMES, 1),
    field(0, 7, DAY_NAMES, 0, star=False),
).map(" ".join)

starts = st.datetimes(datetime(2000, 1, 1), datetime(2040, 12, 31)).map(
    lambda start: start.replace(tzinfo=UTC)
)


@settings(max_examples=200, deadline=None)
@given(expression=expressions, start=starts)
def test_fire_times_agree_with_croniter(expression: str, start: datetime) -> None:
    try:
        job = parse_cron(expression)
    except CronError:
        assume(False)
        raise
    ours = fire_times(job, start, UTC, 20)
    oracle = croniter(expression, start, day_or=True)
    theirs = [oracle.get_next(datetime) for _ in ours]
    assert ours == theirs
    assert len(ours) == 20
