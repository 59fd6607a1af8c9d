"""One-off runs of any job, and the requests that carry out the operations on instances
(``instances``): a daemon's socket, the store's request table and the HTTP API all send
``{"op": create|modify|remove|run, ...}`` to ``carry_out``.

    prepare_run(store, job_id, when=None, params=None, *, now=None) -> OneOff
                                                 a one-off run of any job (the daemon runs it)
    carry_out(store, request, now) -> Outcome    one request; raises what ``instances`` raises
    store_one_off(store, run) -> str             a run for later, written as a date job

Callers: ``instance_requests`` (the daemon's side), ``instance_client`` (no daemon), ``daemon``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from scheduler.durations import parse_duration
from scheduler.instances import (
    ONE_OFF,
    PAST_TOLERANCE,
    InvalidInstance,
    create,
    instance_row,
    load_template,
    merged_params,
    modify,
    remove,
    render_instance,
)
from scheduler.params import from_text
from scheduler.rows import state_row
from scheduler.store import Store

# -- one-off runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class OneOff:
    """A run of ``job_id`` at ``at``; ``canonical``: the spec to run when params differ from
    the job's own (None: the job as it is when the run starts)."""

    job_id: str
    at: datetime
    canonical: dict[str, Any] | None
    misfire_grace: int | None  # seconds, as APScheduler takes it

    @property
    def aps_id(self) -> str:
        return f"{self.job_id}{ONE_OFF}{secrets.token_hex(6)}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "at": self.at.isoformat(),
            "params": None if self.canonical is None else True,
        }


def prepare_run(
    store: Store,
    job_id: str,
    when: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> OneOff:
    """Check a one-off run request: ``when`` is ``{"in": "5m"}``, ``{"at": ISO}`` or empty
    (now); ``params`` only for an instance (merged into its own)."""
    now = now or datetime.now(UTC)
    found_row = instance_row(store, job_id)
    when = dict(when or {})
    if when.get("in") is not None and when.get("at") is not None:
        raise InvalidInstance([("in", "give either in or at, not both")])
    at = now
    try:
        if when.get("in") is not None:
            at = now + parse_duration(str(when["in"]))
        elif when.get("at") is not None:
            at = datetime.fromisoformat(str(when["at"]))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInstance([("in" if "in" in when else "at", str(exc))]) from None
    if at < now - PAST_TOLERANCE:
        raise InvalidInstance([("at", f"{at.isoformat()} is in the past")])
    canonical = None
    spec_grace = found_row.stored.canonical.get("misfire_grace")
    if params:
        if found_row.template is None:
            raise InvalidInstance(
                [("params", f"job '{job_id}' is declared in a file: it takes no params")]
            )
        found = load_template(store, found_row.template)
        old = found_row.stored.canonical
        spec, _ = render_instance(
            found, merged_params(found_row.params, params), old["schedule"], old.get("description")
        )
        canonical = spec.canonical()
    grace = max(1, int(parse_duration(spec_grace).total_seconds())) if spec_grace else None
    return OneOff(job_id, at, canonical, grace)


def one_off_args(run: OneOff) -> tuple[Any, ...]:
    """The APScheduler job args of a one-off run (the runner reads them)."""
    return (run.job_id,) if run.canonical is None else (run.job_id, run.canonical)


# -- requests (a daemon's socket, the store's request table, the HTTP API) ---------------

OPS = ("create", "modify", "remove", "run")


@dataclass(frozen=True)
class Outcome:
    """What carrying out a request did: its reply, and what the runner must learn."""

    result: dict[str, Any]
    changed: list[tuple[str, dict[str, Any]]]
    removed: list[str]
    run: OneOff | None = None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def typed_params(store: Store, request: Mapping[str, Any]) -> dict[str, Any] | None:
    """A command line's ``--param k=v`` texts as the template's types (``params.from_text``):
    ``"5"`` is 5 for an integer parameter, ``a,b`` a list."""
    given = request.get("params")
    if not given:
        return None
    name = request.get("template")
    if request.get("op") != "create":
        name = instance_row(store, str(request.get("job_id"))).template
    if name is None:
        return dict(given)
    head = load_template(store, str(name)).head
    return {
        key: from_text(head.params[key], value)
        if key in head.params and isinstance(value, str)
        else value
        for key, value in given.items()
    }


def carry_out(store: Store, request: Mapping[str, Any], now: datetime) -> Outcome:
    """One request ``{"op": create|modify|remove|run, ...}`` (the same keys as the
    functions above; ``job_id`` may be absent on create; ``text_params``: params are texts
    to type, ``typed_params``). Raises what they raise."""
    if request.get("text_params"):
        request = {**request, "params": typed_params(store, request)}
    op, job_id = request.get("op"), _text(request.get("job_id"))
    if op == "create":
        job = create(
            store,
            str(request.get("template")),
            request.get("params") or {},
            request.get("schedule"),
            job_id=job_id,
            description=request.get("description"),
            now=now,
        )
        return Outcome(job, [(job["id"], job["spec"])], [])
    if job_id is None:
        raise InvalidInstance([("job_id", "missing")])
    if op == "modify":
        job = modify(
            store,
            job_id,
            params=request.get("params"),
            schedule=request.get("schedule"),
            description=request.get("description"),
            now=now,
        )
        return Outcome(job, [(job_id, job["spec"])], [])
    if op == "remove":
        remove(store, job_id)
        return Outcome({"id": job_id, "removed": True}, [], [job_id])
    if op == "run":
        when = {key: request.get(key) for key in ("in", "at")}
        run = prepare_run(store, job_id, when, request.get("params"), now=now)
        return Outcome(run.describe(), [], [], run)
    raise InvalidInstance([("op", f"unknown request {op!r}: one of {', '.join(OPS)}")])


def store_one_off(store: Store, run: OneOff, conn: Connection | None = None) -> str:
    """Write a one-off run for a later time straight into the store (no daemon runs now:
    the next leader fires it, or records it missed past its grace). Returns its id."""
    from apscheduler.triggers.date import DateTrigger

    from scheduler.rows import EXECUTOR, RUNNER_REF

    aps_id = run.aps_id
    state = {
        "version": 1,
        "id": aps_id,
        "func": RUNNER_REF,
        "trigger": DateTrigger(run.at),
        "executor": EXECUTOR,
        "args": one_off_args(run),
        "kwargs": {},
        "name": aps_id,
        "misfire_grace_time": run.misfire_grace,
        "coalesce": True,
        "max_instances": 1,
        "next_run_time": run.at,
    }
    row = state_row(state)
    if conn is None:
        with store.write() as own:
            own.execute(store.aps_jobs.insert().values(id=row.pop("b_id"), **row))
    else:
        conn.execute(store.aps_jobs.insert().values(id=row.pop("b_id"), **row))
    return aps_id
