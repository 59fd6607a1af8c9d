"""The difference between the jobs the files declare and the jobs the store holds.

``plan`` is purely computational: no file, database or clock. ``apply.apply_plan`` is the
only code that acts on a ``Plan``; ``scheduler plan`` and ``reconcile --dry-run`` print it.
Never imports apscheduler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar


class Declared(Protocol):
    """A job as the files declare it: its normalized spec, fingerprint and location
    (``declared.DeclaredJob``; ``str(source)`` is ``path:line``)."""

    @property
    def id(self) -> str: ...
    @property
    def canonical(self) -> dict[str, Any]: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def source(self) -> object: ...


J = TypeVar("J", bound=Declared)


@dataclass(frozen=True)
class Stored:
    """A job as the store holds it (only jobs this tool created are ever ``Stored``).

    ``spec`` may be the JSON text as stored: it is decoded only for jobs whose fingerprint
    changed, so planning a no-op over 10,000 jobs decodes nothing."""

    id: str
    spec: dict[str, Any] | str
    fingerprint: str
    source: str
    operator_paused: bool = False

    @cached_property
    def canonical(self) -> dict[str, Any]:
        if isinstance(self.spec, str):
            decoded: dict[str, Any] = json.loads(self.spec)
            return decoded
        return self.spec


@dataclass(frozen=True)
class FieldChange:
    field: str  # dotted path into the spec, e.g. "schedule.cron" or "run.command"
    old: Any
    new: Any


@dataclass(frozen=True)
class Update(Generic[J]):
    job: J
    stored: Stored
    changes: tuple[FieldChange, ...]

    @property
    def fields(self) -> list[str]:
        return [c.field for c in self.changes]

    @property
    def reschedules(self) -> bool:
        """Only a schedule change recomputes the next run time."""
        return any(c.field == "schedule" or c.field.startswith("schedule.") for c in self.changes)


@dataclass(frozen=True)
class Plan(Generic[J]):
    add: list[J] = field(default_factory=list)
    update: list[Update[J]] = field(default_factory=list)
    remove: list[Stored] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    moved: list[J] = field(default_factory=list)  # same spec, new file:line

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.update or self.remove)

    def summary(self) -> str:
        return (
            f"{len(self.add)} to add, {len(self.update)} to update, "
            f"{len(self.remove)} to remove, {len(self.unchanged)} unchanged"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "add": [j.id for j in self.add],
            "update": [{"id": u.job.id, "fields": u.fields} for u in self.update],
            "remove": [s.id for s in self.remove],
            "unchanged": list(self.unchanged),
        }


def plan(desired: Mapping[str, J], stored: Mapping[str, Stored]) -> Plan[J]:
    """What must change so that ``stored`` matches ``desired``; applied by ``apply.apply_plan``."""
    result: Plan[J] = Plan()
    for job_id in sorted(desired):
        job = desired[job_id]
        old = stored.get(job_id)
        if old is None:
            result.add.append(job)
        elif old.fingerprint != job.fingerprint:
            changes = tuple(diff(old.canonical, job.canonical))
            result.update.append(Update(job, old, changes))
        else:
            result.unchanged.append(job_id)
            if old.source != str(job.source):
                result.moved.append(job)
    result.remove.extend(stored[job_id] for job_id in sorted(stored) if job_id not in desired)
    return result


def diff(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Leaf-level differences between two normalized specs, as dotted paths."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in sorted(old.keys() | new.keys()):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                changes.append(FieldChange(path, old[key], None))
            elif key not in old:
                changes.append(FieldChange(path, None, new[key]))
            else:
                changes.extend(diff(old[key], new[key], path))
        return changes
    return [] if old == new else [FieldChange(prefix, old, new)]
