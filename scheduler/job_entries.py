"""One job as ``scheduler jobs -o json`` and ``GET /jobs`` show it, built from values: the
stored row's (``service.list_jobs``) or those a create has in hand (``instances.create``
answers without reading back what it just wrote). Both go through ``entry``, so the reply
of a create is ``GET /jobs/{id}``'s exactly."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from scheduler.freshness import Freshness


class Row(NamedTuple):
    """What an entry is made of: our row's columns and the APScheduler row's next run (a
    tuple: `scheduler jobs` builds 10,000 of them)."""

    id: str
    info: dict[str, Any]  # the stored ``summary`` (``rows.summary``)
    source: str
    operator_paused: bool
    next_run_time: float | None
    template: str | None
    params: str | None  # JSON text, as stored


@lru_cache(maxsize=4096)  # jobs sharing a schedule share their next run: 10,000 jobs, ~50 times
def iso(timestamp: float | None, zone: str) -> str | None:
    if timestamp is None:
        return None
    tz = UTC if zone == "UTC" else ZoneInfo(zone)
    return datetime.fromtimestamp(timestamp, tz).isoformat()


def entry(
    row: Row, last: tuple[str, float] | None, fresh: Freshness | None, now: float
) -> dict[str, Any]:
    """``last``: the job's latest try (outcome, started_at); ``fresh``: its freshness, for
    jobs that declare ``expect``."""
    info = row.info
    zone = info["timezone"]
    paused_by = "operator" if row.operator_paused else ("file" if info["paused"] else None)
    state = "scheduled"
    if paused_by:
        state = "paused"
    elif row.next_run_time is None:  # a spent trigger: dropped, or never to fire again
        ended = info["end"] is not None and info["end"] <= now
        state = "ended" if ended else "finished"
    return {
        "id": row.id,
        "description": info["description"],
        "schedule": info["schedule"],
        "handler": info["handler"],
        "next_run_time": None if paused_by else iso(row.next_run_time, zone),
        "paused": paused_by is not None,
        "paused_by": paused_by,
        "state": state,
        "source": row.source,
        **_origin(row.template, row.params),
        "last_outcome": last[0] if last else None,
        "last_run_time": iso(last[1], zone) if last else None,
        **_freshness_fields(fresh, zone),
    }


def _origin(template: str | None, params: str | None) -> dict[str, Any]:
    if template is None:
        return {"origin": "file"}
    return {"origin": "template", "template": template, "params": json.loads(params or "{}")}


def _freshness_fields(state: Freshness | None, zone: str) -> dict[str, Any]:
    """Only for jobs that declare ``expect``: other jobs' entries stay as they were."""
    if state is None:
        return {}
    from scheduler.durations import format_duration  # pydantic's types: only when needed

    return {
        "expect": format_duration(timedelta(seconds=state.window)),
        "last_success_time": iso(state.last_success, zone),
        "overdue": state.overdue,
    }


def fire_times(trigger: Any, first: datetime | None, count: int) -> list[str]:
    """The next ``count`` fire times of an APScheduler trigger from its next run time
    ``first``, without jitter: what ``GET /jobs/{id}`` shows as ``next_fire_times``."""
    if first is None or count < 1:
        return []
    if getattr(trigger, "jitter", None):
        trigger = copy.copy(trigger)
        trigger.jitter = None
    fire: datetime | None = first
    times: list[str] = []
    while fire is not None and len(times) < count:
        times.append(fire.isoformat())
        fire = trigger.get_next_fire_time(fire, fire)
    return times
