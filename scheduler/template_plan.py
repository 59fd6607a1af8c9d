"""What a reconcile does to templates and their instances, beside the pure file plan.

Templates added, changed, moved or removed in the files are written to the store's
templates table; each instance of a changed template is rendered again with its own params
and schedule (``instances.rerender``); an edit that makes one invalid is refused as a file
problem naming it, at the template; a removed template that still has instances is refused
unless ``allow_orphan_delete`` (then they go, and the plan lists them). A file job whose id
an instance holds is refused too. Everything is written in the reconcile's transaction
(``apply.apply_plan``'s ``extra``). Callers: ``reconciler``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from scheduler.apply import apply_instances
from scheduler.declared import DeclaredJob
from scheduler.errors import InvalidJobFiles, SchedulerError, SpecProblem
from scheduler.instances import (
    InstanceRow,
    InvalidInstance,
    as_declared,
    render_instance,
    select_instances,
)
from scheduler.plan import FieldChange, Plan, Stored, Update, diff
from scheduler.store import Store
from scheduler.templates import DeclaredTemplate


@dataclass
class Rerender:
    """What a reconcile does to instances: re-rendered ones, the problems that block it,
    and instances of removed templates (removed only with ``allow_orphan_delete``)."""

    update: list[Update[DeclaredJob]]
    params: dict[str, dict[str, Any]]
    problems: list[str]
    orphans: dict[str, list[Stored]]
    counts: dict[str, int]  # template -> instances updated

    @property
    def orphan_ids(self) -> list[str]:
        return [stored.id for gone in self.orphans.values() for stored in gone]

    def lines(self) -> list[str]:
        out = [f"{name}: {count} instances updated" for name, count in sorted(self.counts.items())]
        for name, gone in sorted(self.orphans.items()):
            out.append(
                f"{name}: template removed, {len(gone)} instance(s) removed: "
                + ", ".join(s.id for s in gone)
            )
        return out


def instances_of(
    store: Store, names: Iterable[str], conn: Connection | None = None
) -> dict[str, list[InstanceRow]]:
    ours = store.jobs
    wanted = sorted(set(names))
    found: dict[str, list[InstanceRow]] = {name: [] for name in wanted}
    if not wanted:
        return found
    query = select_instances(store).where(ours.c.template.in_(wanted))

    def rows(c: Connection) -> None:
        for row in c.execute(query):
            stored = Stored(
                row.id, row.spec, row.fingerprint, row.source, bool(row.operator_paused)
            )
            params = json.loads(row.params) if row.params else {}
            found[row.template].append(InstanceRow(stored, row.template, params))

    if conn is not None:
        rows(conn)
    else:
        with store.engine.connect() as c:
            rows(c)
    return found


def rerender(
    changed: Mapping[str, DeclaredTemplate],
    removed: Iterable[str],
    instances: Mapping[str, list[InstanceRow]],
    before: Mapping[str, DeclaredTemplate] | None = None,
) -> Rerender:
    """Pure: each instance of a changed template rendered again with its own params,
    schedule and description (the template's new ones where it had those of ``before``:
    the default schedule and description follow template edits);
    instances of removed templates listed as orphans."""
    result = Rerender([], {}, [], {}, {})
    for name, found in sorted(changed.items()):
        was = (before or {}).get(name)
        inherited = was.body.get("description", "") if was is not None else None
        follows: dict[str, Any] | None = None  # the old default schedule, as instances got it
        for inst in instances.get(name, []):
            old = inst.stored.canonical
            description = old.get("description")
            if description == inherited:
                description = None  # the template's, edited with it
            schedule: dict[str, Any] | None = old["schedule"]
            if found.body.get("schedule") is not None:
                follows = follows or _default_schedule(was, inst.params)
                if schedule == follows:
                    schedule = None  # the template's default, edited with it
            try:
                spec, values = render_instance(found, inst.params, schedule, description)
            except InvalidInstance as exc:
                result.problems.append(
                    f"{name}: instance '{inst.stored.id}' would be invalid: {exc}"
                )
                continue
            job = as_declared(inst.stored.id, name, spec)
            if job.fingerprint == inst.stored.fingerprint:
                continue
            changes: tuple[FieldChange, ...] = tuple(diff(old, job.canonical))
            result.update.append(Update(job, inst.stored, changes))
            result.params[job.id] = values
            result.counts[name] = result.counts.get(name, 0) + 1
    for name in sorted(set(removed)):
        if instances.get(name):
            result.orphans[name] = [inst.stored for inst in instances[name]]
    return result


def _default_schedule(
    template: DeclaredTemplate | None, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The schedule (canonical) an instance created without one got from ``template``."""
    if template is None or template.body.get("schedule") is None:
        return None
    try:
        spec, _ = render_instance(template, params, None, None)
    except InvalidInstance:
        return None
    schedule: dict[str, Any] = spec.canonical()["schedule"]
    return schedule


class TemplateHasInstances(SchedulerError):
    """Refused: a template removed from the files still has instances."""

    def __init__(self, orphans: Mapping[str, list[str]]) -> None:
        listed = "; ".join(
            f"'{name}' has {len(ids)}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}"
            for name, ids in sorted(orphans.items())
        )
        super().__init__(
            f"template(s) removed from the files still have instances ({listed}): refusing to "
            "remove them. Restore the template, delete its instances (`scheduler delete JOB`), "
            "or pass --allow-orphan-delete to remove them with it"
        )


@dataclass
class TemplateShift:
    put: dict[str, DeclaredTemplate] = field(default_factory=dict)  # added or changed
    moved: dict[str, str] = field(default_factory=dict)  # name -> new source
    drop: list[str] = field(default_factory=list)
    rerendered: Rerender = field(default_factory=lambda: Rerender([], {}, [], {}, {}))

    @property
    def has_changes(self) -> bool:
        r = self.rerendered
        return bool(self.put or self.moved or self.drop or r.update or r.orphans)

    def write(self, store: Store, now: datetime, conn: Connection) -> None:
        table = store.templates
        stamp = time.time()
        gone = sorted(set(self.drop) | set(self.put))
        if gone:
            conn.execute(table.delete().where(table.c.name.in_(gone)))
        if self.put:
            conn.execute(
                table.insert(),
                [
                    {
                        "name": t.name,
                        "spec": t.text,
                        "fingerprint": t.fingerprint,
                        "source": str(t.source),
                        "updated_at": stamp,
                    }
                    for t in self.put.values()
                ],
            )
        for name, source in self.moved.items():
            conn.execute(table.update().where(table.c.name == name).values(source=source))
        r = self.rerendered
        orphans = [stored for gone_ones in r.orphans.values() for stored in gone_ones]
        if r.update or orphans:
            apply_instances(store, r.update, orphans, now, r.params, conn)


def plan_templates(
    store: Store,
    desired: Mapping[str, DeclaredTemplate],
    stored: Mapping[str, DeclaredTemplate],
    file_plan: Plan[DeclaredJob],
    allow_orphan_delete: bool,
) -> TemplateShift:
    """Raises ``InvalidJobFiles`` or ``TemplateHasInstances``; changes nothing."""
    shift = TemplateShift()
    for name, found in desired.items():
        old = stored.get(name)
        if old is None or old.fingerprint != found.fingerprint:
            assert not found.from_cache, "a changed template's file is parsed again"
            shift.put[name] = found
        elif str(old.source) != str(found.source):
            shift.moved[name] = str(found.source)
    shift.drop = sorted(set(stored) - set(desired))
    changed = {name: t for name, t in shift.put.items() if name in stored}
    instances = instances_of(store, [*changed, *shift.drop])
    shift.rerendered = rerender(changed, shift.drop, instances, stored)
    problems = [
        _at(desired[line.split(":", 1)[0]], line) for line in shift.rerendered.problems
    ] + _taken_ids(store, file_plan)
    if problems:
        raise InvalidJobFiles(problems)
    orphans = shift.rerendered.orphans
    if orphans and not allow_orphan_delete:
        raise TemplateHasInstances({name: [s.id for s in gone] for name, gone in orphans.items()})
    return shift


def _at(found: DeclaredTemplate, message: str) -> SpecProblem:
    where = found.source
    return SpecProblem(where.path, where.line, where.col, message)


def _taken_ids(store: Store, file_plan: Plan[DeclaredJob]) -> list[SpecProblem]:
    """File jobs to add whose id an instance holds."""
    ids = [job.id for job in file_plan.add]
    if not ids:
        return []
    ours = store.jobs
    taken: dict[str, str] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = select(ours.c.id, ours.c.template).where(
                ours.c.id.in_(ids[start : start + 500]), ours.c.template.is_not(None)
            )
            taken.update({row.id: row.template for row in conn.execute(query)})
    return [
        SpecProblem(
            job.source.path,
            job.source.line,
            job.source.col,
            f"job id '{job.id}' is taken by an instance of template '{taken[job.id]}': rename "
            f"the job, or delete the instance (`scheduler delete {job.id}`)",
        )
        for job in file_plan.add
        if job.id in taken
    ]
