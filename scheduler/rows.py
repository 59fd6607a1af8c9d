"""A job's rows in the store: APScheduler's pickled job and the summary `scheduler jobs`
shows, built for thousands of jobs at once. Callers: ``apply`` (and the parse children,
through ``prepare``), ``instances``.

Jobs with the same schedule and options differ in their rows only by their id (and their
description). Pickling each job's state was the largest part of building its rows, so a
state is pickled once per schedule and options with a stand-in id, and each job's id is
spliced into those bytes; the summary's JSON text likewise. Both are checked against a full
encoding when first built (anything unexpected there: each job is encoded in full).
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Iterable
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from apscheduler.triggers.base import BaseTrigger
from apscheduler.util import datetime_to_utc_timestamp

from scheduler.arming import Arming, description, schedule_key, schedule_of
from scheduler.declared import DeclaredJob
from scheduler.durations import parse_duration

RUNNER_REF = "scheduler.runner:run_job"
EXECUTOR = "default"
PROTOCOL = 5  # pickle.HIGHEST_PROTOCOL on every Python this runs on (3.11+)


def aps_max_instances(canonical: dict[str, Any]) -> int:
    # forbid: APScheduler itself refuses a second instance (recorded as skipped);
    # replace: the new run must be let in so it can stop the old one.
    limits = {"forbid": 1, "replace": 2}
    return limits.get(canonical["concurrency"], int(canonical["max_instances"]))


def job_state(
    job_id: str, canonical: dict[str, Any], trigger: BaseTrigger, next_run_time: datetime | None
) -> dict[str, Any]:
    """APScheduler 3.x ``Job.__getstate__`` for one of our jobs, built without a scheduler.
    Read from the normalized spec: a cold apply of 10,000 jobs need not rebuild a model each."""
    grace = canonical["misfire_grace"]
    return {
        "version": 1,
        "id": job_id,
        "func": RUNNER_REF,
        "trigger": trigger,
        "executor": EXECUTOR,
        "args": (job_id,),
        "kwargs": {},
        "name": job_id,
        "misfire_grace_time": None
        if grace is None
        else max(1, int(parse_duration(grace).total_seconds())),
        "coalesce": canonical["coalesce"],
        "max_instances": aps_max_instances(canonical),
        "next_run_time": next_run_time,
    }


def state_row(state: dict[str, Any]) -> dict[str, Any]:
    """APScheduler's row of a job state (the id as ``b_id``)."""
    return {
        "b_id": state["id"],
        "next_run_time": datetime_to_utc_timestamp(state["next_run_time"]),
        "job_state": pickle.dumps(state, PROTOCOL),
    }


def summary(job: DeclaredJob) -> dict[str, Any]:
    """What ``scheduler jobs`` shows of a spec, computed once when it is written (from the
    normalized spec: no model is rebuilt per job)."""
    schedule, canonical = schedule_of(job), job.canonical
    expect = canonical.get("expect")
    return {
        "schedule": description(job),
        "timezone": schedule.timezone,
        "handler": canonical["run"]["type"],
        "paused": canonical["paused"],
        "end": schedule.end.timestamp() if schedule.end else None,
        "description": canonical["description"],
        "expect": parse_duration(expect["succeeds_within"]).total_seconds() if expect else None,
    }


class Prepared(NamedTuple):
    """A job's rows should it be added at ``now``: built by the parse child that read it,
    in parallel with the other files' parsing, so a cold apply of 10,000 jobs only writes."""

    now: datetime
    next_run_time: float | None
    job_state: bytes
    summary: str


def prepare(jobs: Iterable[DeclaredJob], now: datetime) -> None:
    """Attach ``Prepared`` rows to freshly parsed jobs (in the parse child: the parent
    uses them for the jobs its plan adds, and builds its own when ``now`` differs)."""
    rows = Rows(now)
    for job in jobs:
        object.__setattr__(job, "prepared", rows.prepared(job))


_STAND_IN = "\x00job\x00"  # never an id or a description's JSON: ids are [a-z0-9._-]
_PROBE = "probe.stand-in"  # spliced in once per template, and compared with a full pickle
_FRAME_HEADER = 11  # PROTO 5, FRAME and its 8-byte length: then the whole pickle, one frame


class _Spliced(NamedTuple):
    head: bytes  # the frame's content before the id
    tail: bytes  # ... and after it (its other uses refer back to it by memo index)
    next_run_time: float | None

    def with_id(self, job_id: str) -> bytes:
        encoded = _short_text(job_id)
        size = len(self.head) + len(encoded) + len(self.tail)
        return b"\x80\x05\x95" + struct.pack("<Q", size) + self.head + encoded + self.tail


def _short_text(text: str) -> bytes:
    """``text`` as pickle writes a str of under 256 bytes (SHORT_BINUNICODE)."""
    raw = text.encode()
    return b"\x8c" + bytes((len(raw),)) + raw


def _spliced(state: dict[str, Any]) -> _Spliced | None:
    """The pickle of ``state`` split around its id, or None when it does not split the way
    ``with_id`` assumes (then each job is pickled in full)."""
    stand_in = pickle.dumps(_with_id(state, _STAND_IN), PROTOCOL)
    head, found, tail = stand_in.partition(_short_text(_STAND_IN))
    if not found or stand_in[:3] != b"\x80\x05\x95" or _short_text(_STAND_IN) in tail:
        return None
    spliced = _Spliced(
        head[_FRAME_HEADER:], tail, datetime_to_utc_timestamp(state["next_run_time"])
    )
    probe = pickle.dumps(_with_id(state, _PROBE), PROTOCOL)
    return spliced if spliced.with_id(_PROBE) == probe else None


def _with_id(state: dict[str, Any], job_id: str) -> dict[str, Any]:
    return {**state, "id": job_id, "args": (job_id,), "name": job_id}


class Rows:
    """Rows of many jobs at one ``now``, sharing what equal schedules and options share."""

    def __init__(self, now: datetime) -> None:
        self.arming = Arming(now)
        self._states: dict[tuple[Any, ...], _Spliced | None] = {}
        self._summaries: dict[tuple[Any, ...], tuple[str, str] | None] = {}

    @property
    def now(self) -> datetime:
        return self.arming.now

    def prepared(self, job: DeclaredJob) -> Prepared:
        trigger, first = self.arming.first_fire(job)
        nrt = None if job.canonical["paused"] else first
        state = job_state(job.id, job.canonical, trigger, nrt)
        next_run_time, data = self.state_bytes(state)
        return Prepared(self.now, next_run_time, data, self.summary_text(job))

    def state_bytes(self, state: dict[str, Any]) -> tuple[float | None, bytes]:
        """``state``'s next run time (a timestamp) and pickle."""
        job_id, trigger = state["id"], state["trigger"]
        spliced = None
        # One-character ids are shared str objects (pickle would refer back to another use
        # of the same text); a jittered first run time is the job's own.
        if (
            len(job_id) >= 2
            and len(job_id.encode()) <= 255
            and not getattr(trigger, "jitter", None)
        ):
            # What else differs between jobs' states (the trigger lives as long as ``arming``).
            key = (
                id(trigger),
                state["next_run_time"],
                state["misfire_grace_time"],
                state["coalesce"],
                state["max_instances"],
            )
            if key not in self._states:
                self._states[key] = _spliced(state)
            spliced = self._states[key]
        if spliced is None:  # pickled in full
            row = state_row(state)
            return row["next_run_time"], row["job_state"]
        return spliced.next_run_time, spliced.with_id(job_id)

    def summary_text(self, job: DeclaredJob) -> str:
        """``json.dumps(summary(job))``, the description spliced into its schedule's text."""
        schedule = schedule_key(job)
        if schedule is None:
            return json.dumps(summary(job))
        canonical = job.canonical
        expect = canonical.get("expect")
        key = (
            schedule,
            canonical["run"]["type"],
            canonical["paused"],
            expect["succeeds_within"] if expect else None,
        )
        if key not in self._summaries:
            self._summaries[key] = _split_summary(summary(job))
        parts = self._summaries[key]
        if parts is None:
            return json.dumps(summary(job))
        return parts[0] + encode_basestring_ascii(canonical["description"]) + parts[1]


def _split_summary(shown: dict[str, Any]) -> tuple[str, str] | None:
    text = json.dumps({**shown, "description": _STAND_IN})
    head, found, tail = text.partition(json.dumps(_STAND_IN))
    if not found or json.dumps(_STAND_IN) in tail:
        return None
    probe = json.dumps({**shown, "description": _PROBE})
    return (head, tail) if head + json.dumps(_PROBE) + tail == probe else None
