"""A job as declared in a file and validated: its id, normalized spec, fingerprint and
where it is written. What the loader hands the planner and the apply. Callers: ``loader``,
``reconciler``, ``plan``, ``apply``, ``rows``, ``instances``, the daemon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from scheduler.spec import JobSpec, Schedule, default_models


@dataclass(frozen=True, slots=True)
class Source:
    """Where a job is declared: the file and the line of its id."""

    path: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True, slots=True)
class DeclaredJob:
    """A valid job as declared. ``canonical`` is the normalized spec (what is stored and
    fingerprinted); ``spec`` is the model, rebuilt from ``canonical`` when the job came from
    the parse cache and something needs it (only jobs that are added or changed). Two jobs
    are equal when their ids, fingerprints (of ``canonical``) and sources are."""

    id: str
    # ``canonical``, or None until first asked for: a job back from a parse child carries
    # only its text, and a cold apply of 10,000 of them never needs the dict.
    decoded: dict[str, Any] | None = field(compare=False, repr=False)
    fingerprint: str
    source: Source
    parsed: JobSpec | None = field(default=None, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)  # canonical_text(canonical)
    schedule_model: Schedule | None = field(default=None, compare=False, repr=False)
    notes: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    # ``arming.schedule_key``, kept: an apply and its plan's rendering asked for it 4 times.
    schedule_id: tuple[tuple[str, Any], ...] | None = field(default=None, compare=False, repr=False)
    # ``rows.Prepared``: its rows should it be added, built by the parse child that read it.
    prepared: Any = field(default=None, compare=False, repr=False)

    @property
    def canonical(self) -> dict[str, Any]:
        found = self.decoded
        if found is None:
            found = json.loads(self.text)
            object.__setattr__(self, "decoded", found)
        return found

    @property
    def spec(self) -> JobSpec:
        if self.parsed is None:
            model = default_models().job
            # From the JSON text when there is one: pydantic's JSON path is twice as fast.
            spec = (
                model.model_validate_json(self.text)
                if self.text
                else model.model_validate(self.canonical)
            )
            object.__setattr__(self, "parsed", spec)
        assert self.parsed is not None
        return self.parsed

    @property
    def schedule(self) -> Schedule:
        """Only the schedule, without validating the whole spec again (the apply of a cold
        start needs just this, and the options it reads from ``canonical``)."""
        if self.parsed is not None:
            return self.parsed.schedule
        if self.schedule_model is None:
            schedule = Schedule.model_validate(self.canonical["schedule"])
            object.__setattr__(self, "schedule_model", schedule)
        assert self.schedule_model is not None
        return self.schedule_model

    @property
    def warnings(self) -> tuple[str, ...]:
        """Valid, but probably not what was meant (all ``validate`` keeps of a spec)."""
        if self.notes is None:
            return tuple(self.schedule.warnings)
        return self.notes

    @property
    def from_cache(self) -> bool:
        """Known only by fingerprint: its file was unchanged, so it was not parsed."""
        return not self.text and not self.decoded

    def __reduce__(self) -> tuple[Any, ...]:
        # Back from a parse child: the canonical text alone carries the spec (``json.loads``
        # of it is the same dict), so each job crosses the pipe once, not twice (a quarter
        # less to pickle and send).
        if self.text and self.parsed is None and self.schedule_model is None:
            at = (self.id, self.text, self.fingerprint, self.source, self.notes, self.prepared)
            return (_from_text, (*at, self.schedule_id))
        fields = (self.canonical, self.fingerprint, self.source, self.parsed, self.text)
        return (DeclaredJob, (self.id, *fields, self.schedule_model, self.notes))


def _from_text(
    job_id: str,
    text: str,
    fingerprint: str,
    source: Source,
    notes: tuple[str, ...] | None,
    prepared: Any = None,
    schedule_id: tuple[tuple[str, Any], ...] | None = None,
) -> DeclaredJob:
    return DeclaredJob(
        job_id,
        None,  # decoded from ``text`` when asked for
        fingerprint,
        source,
        text=text,
        notes=notes,
        schedule_id=schedule_id,
        prepared=prepared,
    )
