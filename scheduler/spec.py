"""The job file format as pydantic models: what a valid job is, nothing about files or time.

``loader`` validates parsed YAML against ``models_for(registry)``; the reconciler stores
``JobSpec.model_dump(mode="json")`` and compares fingerprints of it. The ``run:`` union is
built from a handler registry, so plugin types validate and appear in the schema like
built-ins. Never imports apscheduler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from scheduler.cron import CronError, parse_cron
from scheduler.cron import fire_times as cron_fire_times
from scheduler.durations import Duration, format_duration
from scheduler.freshness import cron_period
from scheduler.handlers import Registry, default_registry
from scheduler.handlers.celery import CeleryDefaults
from scheduler.params import PARAM_NAME, Limits, Param

JOB_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
RESERVED_ID_PREFIX = "scheduler."  # the scheduler's own jobs (the built-in cleanup)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # later ones overflow date arithmetic downstream
JobId = Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN, max_length=100)]
ParamName = Annotated[str, StringConstraints(pattern=PARAM_NAME)]
TRIGGER_KEYS = ("cron", "interval", "at")
DEFAULT_MAX_INSTANCES = 3


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = [z for z in available_timezones() if z.lower() == name.lower()]
        hint = (
            f" (did you mean '{close[0]}'?)" if close else " (use an IANA name like Europe/Berlin)"
        )
        raise ValueError(f"unknown time zone '{name}'{hint}") from None
    return name


class Schedule(Strict):
    """When a job runs: exactly one of cron, interval or at."""

    cron: str | None = Field(
        default=None,
        description="standard 5-field cron (Vixie semantics) or @hourly/@daily/@weekly/...",
        examples=["0 9 * * 1-5"],
    )
    interval: Duration | None = Field(default=None, description="run every this long")
    at: datetime | None = Field(default=None, description="run once at this time (ISO 8601)")
    timezone: str = Field(default="UTC", description="IANA zone for cron and naive datetimes")
    jitter: Duration | None = Field(default=None, description="random delay up to this long")
    start: datetime | None = Field(default=None, description="no runs before this time")
    end: datetime | None = Field(default=None, description="no runs after this time")

    @field_validator("cron")
    @classmethod
    def _standard_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_cron(value).text
        except CronError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError("interval must be at least 1s")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_trigger(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = [key for key in TRIGGER_KEYS if data.get(key) is not None]
        if not given:
            raise PydanticCustomError(
                "no_trigger", "schedule needs one of cron, interval or at", {"key": None}
            )
        if len(given) > 1:
            raise PydanticCustomError(
                "two_triggers",
                "schedule has both {first} and {key}: keep exactly one",
                {"first": given[0], "key": given[1]},
            )
        return data

    @model_validator(mode="after")
    def _localize(self) -> Schedule:
        # Naive datetimes mean wall time in the schedule's zone, never the host's zone.
        zone = ZoneInfo(self.timezone)
        for name in ("at", "start", "end"):
            value = getattr(self, name)
            if value is None:
                continue
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone)
                object.__setattr__(self, name, value)
            try:
                in_range = datetime.min.replace(tzinfo=UTC) < value.astimezone(UTC) < LATEST
            except OverflowError:
                in_range = False
            if not in_range:
                raise PydanticCustomError(
                    "date_out_of_range",
                    "{key}: {value} is out of range: use a date-time between years 1 and 9998",
                    {"key": name, "value": value.isoformat()},
                )
        if self.start and self.end and self.start >= self.end:
            raise PydanticCustomError("bad_bounds", "end must be after start", {"key": "end"})
        return self

    @property
    def kind(self) -> str:
        return next(key for key in TRIGGER_KEYS if getattr(self, key) is not None)

    @property
    def warnings(self) -> list[str]:
        """Valid, but probably not what was meant (``scheduler validate`` prints these)."""
        found = [f"cron: {text}" for text in parse_cron(self.cron).warnings] if self.cron else []
        if self.jitter:
            shortest = self.interval or _shortest_gap(self.cron, self.timezone)
            if shortest is not None and self.jitter >= shortest:
                found.append(
                    f"jitter: {format_duration(self.jitter)} is not shorter than the "
                    f"{format_duration(shortest)} between runs, so some runs will be skipped"
                )
        return found


@lru_cache(maxsize=1024)  # thousands of jobs share a few schedules
def _shortest_gap(cron: str | None, timezone: str) -> timedelta | None:
    """The shortest time between runs of a cron schedule, over its next 50 runs from 2026."""
    if cron is None:
        return None
    zone = ZoneInfo(timezone)
    times = cron_fire_times(parse_cron(cron), datetime(2026, 1, 1, tzinfo=zone), zone, 50)
    instants = [time.timestamp() for time in times]  # real time, not wall-clock time
    gaps = (later - earlier for earlier, later in pairwise(instants))
    return timedelta(seconds=min(gaps, default=0)) or None


def schedule_period(schedule: Schedule) -> timedelta | None:
    """The longest wait between two runs of ``schedule`` (None for a one-shot job)."""
    if schedule.interval is not None:
        return schedule.interval
    if schedule.cron is not None:
        return cron_period(parse_cron(schedule.cron))
    return None


class Retries(Strict):
    attempts: int = Field(default=0, ge=0, le=100, description="retries after a failed first try")
    backoff: Duration = Field(
        default=timedelta(seconds=30), description="wait before the first retry; doubles each time"
    )


MIN_FRESHNESS_WINDOW = timedelta(minutes=1)


class Expect(Strict):
    """What the job promises its operators: a success at least this often."""

    succeeds_within: Duration = Field(
        description="the job is overdue when its last success is older than this (at least 1m)",
        examples=["26h"],
    )

    @field_validator("succeeds_within")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta) -> timedelta:
        if value < MIN_FRESHNESS_WINDOW:
            raise ValueError("succeeds_within must be at least 1m: freshness is checked per minute")
        return value


class RunSpec(BaseModel):
    """The common face of every ``run:`` model: a handler type name."""

    type: str


class JobSpec(Strict):
    """One job. ``run`` is narrowed to the registry's union by ``models_for``."""

    description: str = ""
    schedule: Schedule
    run: RunSpec
    timeout: Duration | None = Field(default=None, description="stop the run after this long")
    retries: Retries = Field(default_factory=Retries)
    concurrency: Literal["allow", "forbid", "replace"] = Field(
        default="allow",
        description="when a run is due while one is running: allow (up to max_instances), "
        "forbid (skip the new one) or replace (stop the old one)",
    )
    max_instances: int = Field(default=DEFAULT_MAX_INSTANCES, ge=1, le=1000)
    misfire_grace: Duration | None = Field(
        default=timedelta(seconds=30),
        description="how late a run may start; null = any lateness",
    )
    coalesce: bool = Field(default=True, description="collapse missed runs into one")
    paused: bool = False
    labels: dict[Annotated[str, StringConstraints(min_length=1, max_length=63)], str] = Field(
        default_factory=dict
    )
    on_failure: list[RunSpec] = Field(
        default_factory=list,
        description="run after each failed or timed-out try, and for a run missed, skipped "
        "or interrupted",
    )
    on_success: list[RunSpec] = Field(default_factory=list, description="run after a success")
    on_permanent_failure: list[RunSpec] = Field(
        default_factory=list,
        description="run once the last retry has failed, and for a run missed, skipped or "
        "interrupted",
    )
    expect: Expect | None = Field(
        default=None, description="freshness: alert when the job stops succeeding"
    )
    on_overdue: list[RunSpec] = Field(
        default_factory=list,
        description="run once each time the job becomes overdue (needs expect)",
    )

    @model_validator(mode="after")
    def _expect_fits_the_schedule(self) -> JobSpec:
        if self.expect is None:
            if self.on_overdue:
                raise PydanticCustomError(
                    "on_overdue_needs_expect",
                    "on_overdue needs expect.succeeds_within: without it the job is never overdue",
                    {"key": "on_overdue"},
                )
            return self
        period = schedule_period(self.schedule)
        window = self.expect.succeeds_within
        if period is None:
            raise PydanticCustomError(
                "expect_on_one_shot",
                "expect does not apply to a one-shot 'at' job: it succeeds at most once "
                "(drop expect, or give the job a cron or interval schedule)",
                {"key": "schedule"},
            )
        if window <= period:
            raise PydanticCustomError(
                "expect_shorter_than_schedule",
                "expect.succeeds_within ({window}) must be longer than the longest gap between "
                "runs of this schedule ({period}): the job would be overdue between runs",
                {
                    "key": "schedule",
                    "window": format_duration(window),
                    "period": format_duration(period),
                },
            )
        return self

    @model_validator(mode="after")
    def _max_instances_needs_allow(self) -> JobSpec:
        # Compared with the default, not model_fields_set: a stored canonical spec carries
        # every key and must validate again unchanged.
        if self.max_instances != DEFAULT_MAX_INSTANCES and self.concurrency != "allow":
            raise PydanticCustomError(
                "max_instances_needs_allow",
                "max_instances only applies to concurrency: allow (this job says {concurrency})",
                {"key": "max_instances", "concurrency": self.concurrency},
            )
        return self

    def canonical(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True)
        for key, default in LATER_OPTIONS.items():
            if data.get(key) == default:
                del data[key]
        return data


# Options added after release 0.1.0, left out of the canonical form while unset: a new
# option must not change the fingerprint of every stored job, or the first reconcile after
# an upgrade would show (and rewrite) every job as updated.
LATER_OPTIONS: dict[str, Any] = {"expect": None, "on_overdue": []}


class Defaults(Strict):
    """Merged under every job of the same file; a job's own keys win, labels are merged."""

    timezone: str | None = None
    timeout: Duration | None = None
    retries: Retries | None = None
    concurrency: Literal["allow", "forbid", "replace"] | None = None
    max_instances: int | None = Field(default=None, ge=1, le=1000)
    misfire_grace: Duration | None = None
    coalesce: bool | None = None
    paused: bool | None = None
    labels: dict[str, str] | None = None
    on_failure: list[RunSpec] | None = None
    on_success: list[RunSpec] | None = None
    on_permanent_failure: list[RunSpec] | None = None
    expect: Expect | None = None
    on_overdue: list[RunSpec] | None = None
    celery: CeleryDefaults | None = Field(
        default=None, description="broker, backend and queue of every celery run in the file"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


def canonical_text(canonical: dict[str, Any]) -> str:
    """The one JSON text of a normalized spec: what is stored, and what is fingerprinted."""
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(canonical: dict[str, Any], text: str | None = None) -> str:
    text = canonical_text(canonical) if text is None else text
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SpecModels:
    """The models of one registry: a job, and a whole file (for the JSON Schema)."""

    job: type[JobSpec]
    defaults: type[Defaults]
    file: type[BaseModel]
    run_types: tuple[str, ...]


def _run_model(name: str, args: type[BaseModel]) -> type[BaseModel]:
    camel = "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
    return create_model(
        f"{camel}Run",
        __base__=args,
        type=(Literal[name], Field(description=f"handler type '{name}'")),  # type: ignore[arg-type]
    )


def models_for(registry: Registry) -> SpecModels:
    runs = tuple(_run_model(name, h.args) for name, h in sorted(registry.items()))
    run_union = Annotated[Union[runs], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    notify: dict[str, Any] = {
        name: (list[run_union], Field(default_factory=list, description=info.description))
        for name, info in JobSpec.model_fields.items()
        if name.startswith("on_")
    }
    job = create_model("JobSpec", __base__=JobSpec, run=(run_union, ...), **notify)
    defaults = create_model(
        "Defaults",
        __base__=Defaults,
        **{name: (list[run_union] | None, None) for name in notify},  # type: ignore[call-overload]
    )
    template_fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in job.model_fields.items()
    }
    template_fields["schedule"] = (
        Schedule | None,
        Field(default=None, description="the default schedule of an instance that gives none"),
    )
    template = create_model(
        "Template",
        __config__=ConfigDict(
            extra="forbid",
            title="Template",
            json_schema_extra={
                "description": "a kind of job created at run time: ${params.NAME} may stand in "
                "run.command list items, an http url, headers or json, and python kwargs"
            },
        ),
        params=(dict[ParamName, Param], Field(default_factory=dict)),
        limits=(Limits, Field(default_factory=Limits)),
        **template_fields,
    )
    file = create_model(
        "JobFile",
        __config__=ConfigDict(extra="forbid", title="Job file"),
        defaults=(defaults | None, None),
        jobs=(dict[JobId, job], Field(default_factory=dict)),
        templates=(
            dict[JobId, template],
            Field(default_factory=dict, description="kinds of jobs the API may create"),
        ),
    )
    return SpecModels(job=job, defaults=defaults, file=file, run_types=tuple(sorted(registry)))


@cache
def default_models() -> SpecModels:
    return models_for(default_registry())


def json_schema(models: SpecModels | None = None) -> dict[str, Any]:
    schema = (models or default_models()).file.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }


def field_names(models: SpecModels) -> set[str]:
    """Every key name the models know (the vocabulary of "did you mean")."""
    names: set[str] = set()
    pending: list[Any] = [models.file]
    seen: set[Any] = set()
    while pending:
        model = pending.pop()
        if model in seen or not hasattr(model, "model_fields"):
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
            pending.extend(_models_in(info.annotation))
    return names


def _models_in(annotation: Any) -> Iterator[Any]:
    if hasattr(annotation, "model_fields"):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _models_in(arg)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        yield from _models_in(meta)
