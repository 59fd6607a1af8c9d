"""Instances: jobs created at run time from the templates the files declare.

The service-level operations the HTTP API, the command line and the embedding Python API
all call. Each takes a ``Store`` and acts on it in one transaction; none talks to a daemon.
A running daemon carries them out itself (``Daemon.handle``, ops ``create``/``modify``/
``remove``/``run``) under its apply guard and then updates its runner; a process that writes
the store behind a daemon's back must call ``handoff.bump(store)`` afterwards.

    templates(store) -> list[dict]               every template, with its params' JSON Schema
    template(store, name) -> dict                one (TemplateNotFound)
    create(store, template, params, schedule=None, *, job_id=None, description=None,
           now=None) -> dict                     the new job as ``GET /jobs/{id}`` shows it
    modify(store, job_id, *, params=None, schedule=None, description=None, now=None) -> dict
    remove(store, job_id) -> None

One-off runs of any job and the requests that carry all of these out (a daemon's socket,
the store's request table, the HTTP API) are in ``instance_ops``.

``schedule`` is ``{"cron": ...} | {"interval": "2h"} | {"at": ISO} | {"in": "5m"}`` plus the
optional ``timezone``/``jitter``/``start``/``end``; ``None`` takes the template's default.
``params`` on ``modify`` are merged into the instance's (a ``None`` value drops one, so its
default applies). Instances are stored beside file jobs in ``scheduler_jobs`` with their
``template`` and ``params`` (source ``template NAME``): reconciles never remove them, and a
template edit re-renders them (``template_plan``, called by the reconciler).

Errors: ``TemplateNotFound`` (404), ``InvalidInstance`` (422, naming each field),
``JobExists``/``TooManyInstances``/``DeclaredInFile`` (409), ``JobNotFound`` (404).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Select, func, select

from scheduler.declared import DeclaredJob, Source
from scheduler.durations import parse_duration
from scheduler.errors import JobNotFound, SchedulerError
from scheduler.job_entries import Row, entry, fire_times
from scheduler.overdue import Promise, freshness_of
from scheduler.params import ParamProblem, params_json_schema, resolve_params
from scheduler.plan import Stored, Update, diff
from scheduler.rows import job_state, state_row, summary
from scheduler.spec import (
    JOB_ID_PATTERN,
    RESERVED_ID_PREFIX,
    JobSpec,
    _shortest_gap,
    canonical_text,
    default_models,
    fingerprint,
)
from scheduler.store import Store
from scheduler.templates import DeclaredTemplate, RenderProblem, instance_spec
from scheduler.triggers import build_trigger

ONE_OFF = "@once."  # APScheduler ids of one-off runs: JOB@once.HEX (args: job id, spec)
PAST_TOLERANCE = timedelta(seconds=5)


class TemplateNotFound(SchedulerError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no template '{name}': GET /templates (or `scheduler templates`) lists them; "
            "templates are declared in the job files under `templates:`"
        )


class InvalidInstance(SchedulerError):
    """Bad params, schedule or id: nothing was changed. ``problems``: (field, message)."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {message}" for where, message in self.problems))


class JobExists(SchedulerError):
    def __init__(self, job_id: str, source: str) -> None:
        super().__init__(
            f"job id '{job_id}' is taken (by {source}): choose another id, or leave it out "
            "to get a generated one"
        )


class TooManyInstances(SchedulerError):
    def __init__(self, template: str, limit: int) -> None:
        super().__init__(
            f"template '{template}' allows {limit} instance(s) at once (limits.max_jobs), and "
            "that many exist: delete one first, or raise the limit in the template's file"
        )


class DeclaredInFile(SchedulerError):
    """A file's job: changed or removed only by editing its file."""

    def __init__(self, job_id: str, source: str, what: str) -> None:
        self.source = source
        how = "delete it from that file" if what == "delete" else f"{what} it in that file"
        super().__init__(
            f"job '{job_id}' is declared in {source}: {how} (and commit); the next "
            f"reconcile applies it. To stop it for now, `scheduler pause {job_id}`"
        )


STATUS = {
    "TemplateNotFound": 404,
    "InvalidInstance": 422,
    "JobExists": 409,
    "TooManyInstances": 409,
    "DeclaredInFile": 409,
    "TemplateHasInstances": 409,
}


# -- templates --------------------------------------------------------------------------


def _template_row(row: Any) -> DeclaredTemplate:
    return DeclaredTemplate(row.name, json.loads(row.spec), row.fingerprint, row.source)


def stored_templates(store: Store, conn: Connection | None = None) -> dict[str, DeclaredTemplate]:
    table = store.templates
    query = select(table.c.name, table.c.spec, table.c.fingerprint, table.c.source)
    if conn is not None:
        return {row.name: _template_row(row) for row in conn.execute(query)}
    with store.engine.connect() as c:
        return {row.name: _template_row(row) for row in c.execute(query)}


def load_template(store: Store, name: str, conn: Connection | None = None) -> DeclaredTemplate:
    table = store.templates
    query = select(table.c.name, table.c.spec, table.c.fingerprint, table.c.source).where(
        table.c.name == name
    )
    if conn is not None:
        row = conn.execute(query).first()
    else:
        with store.engine.connect() as c:
            row = c.execute(query).first()
    if row is None:
        raise TemplateNotFound(name)
    return _template_row(row)


def instance_counts(store: Store, conn: Connection | None = None) -> dict[str, int]:
    ours = store.jobs
    query = (
        select(ours.c.template, func.count())
        .where(ours.c.template.is_not(None))
        .group_by(ours.c.template)
    )
    if conn is not None:
        return {row[0]: int(row[1]) for row in conn.execute(query)}
    with store.engine.connect() as c:
        return {row[0]: int(row[1]) for row in c.execute(query)}


def describe_template(template: DeclaredTemplate, instances: int) -> dict[str, Any]:
    head = template.head
    return {
        "name": template.name,
        "source": str(template.source),
        "description": template.body.get("description", ""),
        "schedule": template.body.get("schedule"),
        "handler": (template.body.get("run") or {}).get("type"),
        "params": params_json_schema(head),
        "limits": head.limits.model_dump(mode="json"),
        "instances": instances,
    }


def templates(store: Store) -> list[dict[str, Any]]:
    counts = instance_counts(store)
    found = stored_templates(store)
    return [describe_template(found[name], counts.get(name, 0)) for name in sorted(found)]


def template(store: Store, name: str) -> dict[str, Any]:
    found = load_template(store, name)
    return describe_template(found, instance_counts(store).get(name, 0))


# -- rendering an instance --------------------------------------------------------------


def _fields(problems: Iterable[ParamProblem]) -> list[tuple[str, str]]:
    return [(f"params.{p.param}", p.message) for p in problems]


def _schedule(
    given: Mapping[str, Any] | None, found: DeclaredTemplate, now: datetime
) -> dict[str, Any]:
    """The instance's schedule as a spec's ``schedule:``, checked against the limits."""
    if given is None:
        default = found.body.get("schedule")
        if default is None:
            raise InvalidInstance(
                [
                    (
                        "schedule",
                        "this template has no default schedule: give cron, interval, at or in",
                    )
                ]
            )
        return dict(default)
    schedule = dict(given)
    if "in" in schedule:
        text = schedule.pop("in")
        if schedule.get("at") is not None:
            raise InvalidInstance([("schedule", "give either at or in, not both")])
        try:
            schedule["at"] = (now + parse_duration(str(text))).isoformat()
        except ValueError as exc:
            raise InvalidInstance([("schedule.in", str(exc))]) from None
    return schedule


def _check_limits(spec: JobSpec, found: DeclaredTemplate, now: datetime, new: bool) -> None:
    limits = found.head.limits
    schedule = spec.schedule
    if schedule.kind not in limits.schedules:
        allowed = ", ".join(limits.schedules)
        raise InvalidInstance(
            [("schedule", f"template '{found.name}' allows only these schedules: {allowed}")]
        )
    if schedule.at is not None and new and schedule.at < now - PAST_TOLERANCE:
        raise InvalidInstance([("schedule.at", f"{schedule.at.isoformat()} is in the past")])
    least = limits.min_interval
    if least is None:
        return
    gap = schedule.interval or _shortest_gap(schedule.cron, schedule.timezone)
    if gap is not None and gap < least:
        raise InvalidInstance(
            [
                (
                    "schedule",
                    f"runs {_seconds(gap)} apart, more often than template '{found.name}' allows "
                    f"(limits.min_interval: {_seconds(least)})",
                )
            ]
        )


def _seconds(delta: timedelta) -> str:
    from scheduler.durations import format_duration

    return format_duration(delta)


def render_instance(
    found: DeclaredTemplate,
    params: Mapping[str, Any],
    schedule: Mapping[str, Any] | None,
    description: str | None,
) -> tuple[JobSpec, dict[str, Any]]:
    """The instance's spec and the parameter values it got; ``InvalidInstance`` otherwise."""
    values, problems = resolve_params(found.head, params)
    if problems:
        raise InvalidInstance(_fields(problems))
    try:
        spec = instance_spec(found, values, schedule, description, default_models().job)
    except RenderProblem as exc:
        raise InvalidInstance([("params", str(exc))]) from None
    except ValidationError as exc:
        raise InvalidInstance(
            (".".join(str(step) for step in error["loc"]) or "job", error["msg"])
            for error in exc.errors()
        ) from None
    return spec, values


def as_declared(job_id: str, template_name: str, spec: JobSpec) -> DeclaredJob:
    canonical = spec.canonical()
    text = canonical_text(canonical)
    source = Source(f"template {template_name}", 0)
    return DeclaredJob(job_id, canonical, fingerprint(canonical, text), source, spec, text)


def _check_id(job_id: str) -> None:
    import re

    if not re.fullmatch(JOB_ID_PATTERN, job_id) or len(job_id) > 100:
        raise InvalidInstance(
            [
                (
                    "id",
                    f"'{job_id}' must be lowercase letters, digits, '.', '_' or '-', start with "
                    "a letter or digit, and be at most 100 characters",
                )
            ]
        )
    if job_id.startswith(RESERVED_ID_PREFIX):
        raise InvalidInstance([("id", f"ids starting with '{RESERVED_ID_PREFIX}' are reserved")])


# -- create, modify, remove -------------------------------------------------------------


def create(
    store: Store,
    template_name: str,
    params: Mapping[str, Any] | None = None,
    schedule: Mapping[str, Any] | None = None,
    *,
    job_id: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Create an instance of ``template_name``; returns it as ``GET /jobs/{id}`` shows it."""
    now = now or datetime.now(UTC)
    found = load_template(store, template_name)
    spec, values = render_instance(
        found, params or {}, _schedule(schedule, found, now), description
    )
    _check_limits(spec, found, now, new=True)
    job_id = job_id or f"{template_name.replace('_', '-')}-{secrets.token_hex(4)}"
    _check_id(job_id)
    job = as_declared(job_id, template_name, spec)
    ours, aps = store.jobs, store.aps_jobs
    with store.write() as conn:
        taken = conn.execute(select(ours.c.source).where(ours.c.id == job_id)).first()
        if taken is not None:
            raise JobExists(job_id, taken.source)
        if conn.execute(select(aps.c.id).where(aps.c.id == job_id)).first() is not None:
            raise JobExists(job_id, "a job this tool did not create")
        limit = found.head.limits.max_jobs
        if limit is not None:
            # Alive: still to run (a spent one-shot's APScheduler row is gone).
            alive = conn.execute(
                select(func.count())
                .select_from(ours.join(aps, aps.c.id == ours.c.id))
                .where(ours.c.template == template_name)
            ).scalar_one()
            if alive >= limit:
                raise TooManyInstances(template_name, limit)
        trigger = build_trigger(job.schedule, now)
        nrt = None if job.canonical["paused"] else trigger.get_next_fire_time(None, now)
        row = state_row(job_state(job_id, job.canonical, trigger, nrt))
        conn.execute(aps.insert().values(id=row.pop("b_id"), **row))
        ours_row = _ours_row(job, template_name, values)
        conn.execute(ours.insert().values(**ours_row))
        # A job of this id deleted before may have left runs: GET /jobs/{id} shows them.
        runs = store.runs
        last = conn.execute(
            select(runs.c.outcome, runs.c.started_at)
            .where(runs.c.job_id == job_id)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).first()
    return _reply(store, job, ours_row, row["next_run_time"], trigger, nrt, last)


def _reply(
    store: Store,
    job: DeclaredJob,
    ours_row: Mapping[str, Any],
    next_run_time: float | None,
    trigger: Any,
    nrt: datetime | None,
    last: Any,
) -> dict[str, Any]:
    """The new job as ``GET /jobs/{id}`` (``lookup.job_detail``) shows it, built from what
    the create wrote rather than read back (that took half of each create's time)."""
    info: dict[str, Any] = json.loads(ours_row["summary"])
    stamp = float(ours_row["updated_at"])
    fresh = None
    if info.get("expect"):
        fresh = freshness_of(store, stamp, [Promise(job.id, info["expect"], stamp)]).get(job.id)
    row = Row(
        job.id,
        info,
        ours_row["source"],
        False,
        next_run_time,
        ours_row["template"],
        ours_row["params"],
    )
    return {
        **entry(row, None if last is None else (last.outcome, last.started_at), fresh, stamp),
        "spec": json.loads(job.text),
        "next_fire_times": fire_times(trigger, nrt, 5),
    }


def _detail(store: Store, job_id: str) -> dict[str, Any]:
    from scheduler.lookup import job_detail  # lookup -> service -> reconciler -> here

    return job_detail(store, job_id)


def _ours_row(job: DeclaredJob, template_name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": job.id,
        "spec": job.text,
        "fingerprint": job.fingerprint,
        "source": str(job.source),
        "operator_paused": False,
        "updated_at": time.time(),
        "summary": json.dumps(summary(job)),
        "template": template_name,
        "params": json.dumps(dict(values), sort_keys=True),
    }


@dataclass(frozen=True)
class InstanceRow:
    stored: Stored
    template: str | None
    params: dict[str, Any]


def select_instances(store: Store) -> Select[Any]:
    """The columns an ``InstanceRow`` is read from (add the ``where``)."""
    ours = store.jobs
    return select(
        ours.c.id,
        ours.c.spec,
        ours.c.fingerprint,
        ours.c.source,
        ours.c.operator_paused,
        ours.c.template,
        ours.c.params,
    )


def instance_row(store: Store, job_id: str, conn: Connection | None = None) -> InstanceRow:
    query = select_instances(store).where(store.jobs.c.id == job_id)
    if conn is not None:
        row = conn.execute(query).first()
    else:
        with store.engine.connect() as c:
            row = c.execute(query).first()
    if row is None:
        raise JobNotFound(job_id)
    stored = Stored(row.id, row.spec, row.fingerprint, row.source, bool(row.operator_paused))
    return InstanceRow(stored, row.template, json.loads(row.params) if row.params else {})


def merged_params(old: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(old)
    for key, value in (given or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def modify(
    store: Store,
    job_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    schedule: Mapping[str, Any] | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Change an instance's params, schedule or description, validated like a create. Its
    next run is kept unless the schedule changed (the rule of a file edit)."""
    from scheduler.apply import apply_instances

    now = now or datetime.now(UTC)
    found_row = instance_row(store, job_id)
    if found_row.template is None:
        raise DeclaredInFile(job_id, found_row.stored.source, "change")
    found = load_template(store, found_row.template)
    old = found_row.stored.canonical
    new_schedule = _schedule(schedule, found, now) if schedule is not None else old["schedule"]
    spec, values = render_instance(
        found,
        merged_params(found_row.params, params),
        new_schedule,
        description if description is not None else old.get("description", ""),
    )
    _check_limits(spec, found, now, new=schedule is not None)
    job = as_declared(job_id, found.name, spec)
    changes = tuple(diff(old, job.canonical))
    update = Update(job, found_row.stored, changes)
    apply_instances(store, [update], [], now, {job_id: values} if changes or params else {})
    return _detail(store, job_id)


def remove(store: Store, job_id: str) -> None:
    """Delete an instance, and any one-off run of it still to come."""
    found = instance_row(store, job_id)
    if found.template is None:
        raise DeclaredInFile(job_id, found.stored.source, "delete")
    ours, aps = store.jobs, store.aps_jobs
    with store.write() as conn:
        conn.execute(ours.delete().where(ours.c.id == job_id))
        conn.execute(aps.delete().where(aps.c.id == job_id))
        conn.execute(aps.delete().where(aps.c.id.startswith(job_id + ONE_OFF, autoescape=True)))
