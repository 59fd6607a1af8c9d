"""Durations as people write them in job files: ``90s``, ``5m``, ``1h30m``, ``1d`` or seconds.

Used by the job spec models (``spec``) for timeouts, intervals, back-off and grace times.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
DURATION_PATTERN = r"^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"


def parse_duration(value: Any) -> timedelta:
    """Parse ``1h30m``-style text or whole seconds; raise ``ValueError`` with a fix-it hint."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, int) and not isinstance(value, bool):  # `timeout: yes` is a mistake
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return _bounded(value, value)
    raise _bad(value)


MAX_SECONDS = 100 * 365 * 86400


def _bounded(seconds: int, given: Any) -> timedelta:
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {given!r} is longer than 100 years")
    return timedelta(seconds=seconds)


@lru_cache(maxsize=1024)  # job files repeat the same few durations thousands of times
def _parse_text(value: str) -> timedelta:
    text = value.strip().replace(" ", "").lower()
    match = _DURATION_RE.fullmatch(text)
    if text and match and any(match.groups()):
        counts = (int(g or 0) for g in match.groups())
        return _bounded(sum(n * u for n, u in zip(counts, _UNITS.values(), strict=True)), value)
    if text.isdigit():
        return _bounded(int(text), value)
    raise _bad(value)


def _bad(value: Any) -> ValueError:
    return ValueError(
        "expected a duration like 90s, 5m, 1h30m or 1d "
        f"(units w d h m s, largest first), got {value!r}"
    )


@lru_cache(maxsize=1024)
def format_duration(value: timedelta) -> str:
    """The canonical text of a duration, so equal durations fingerprint equally."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN, "examples": ["90s", "5m", "1h30m"]},
                {"type": "integer", "minimum": 0, "description": "seconds"},
            ]
        }
    ),
]
