"""Parsed job files checked against the spec models: each job, the file's defaults and
templates, with pydantic's errors turned into problems at ``file:line:col`` that say what
to do. Callers: ``loader``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from scheduler.declared import DeclaredJob, Source
from scheduler.document import Document
from scheduler.spec import (
    JOB_ID_PATTERN,
    RESERVED_ID_PREFIX,
    SpecModels,
    canonical_text,
    field_names,
    fingerprint,
)
from scheduler.templates import DeclaredTemplate
from scheduler.templates import check as check_template
from scheduler.yamldoc import Loc


class Validator:
    """Validates parsed documents and turns pydantic errors into ``file:line:col`` problems."""

    def __init__(self, models: SpecModels) -> None:
        self.models = models
        self.file_defaults: dict[str, Any] = {}

    @cached_property
    def vocabulary(self) -> list[str]:
        # Only a misspelt key needs it: walking every model per file was 2 ms a file
        # (20 s for 10,000 one-job files).
        return sorted(field_names(self.models))

    def jobs(
        self,
        doc: Document,
        defaults: dict[str, Any] | None = None,
        streamed: frozenset[str] | set[str] = frozenset(),
    ) -> Iterator[DeclaredJob]:
        """The file's valid jobs, less those in ``streamed`` (checked while it was read,
        against ``defaults``, already checked then too)."""
        data = doc.data
        if data is None:
            return  # an empty file declares nothing
        if not isinstance(data, dict):
            doc.problems.append(
                doc.problem(doc.mark_of(()), "a job file must be a mapping with a 'jobs:' key")
            )
            return
        for key in data:
            if key not in ("jobs", "defaults", "templates"):
                known = "jobs, defaults, templates"
                doc.problems.append(
                    doc.problem(doc.mark_of((key,), key=True), self._unknown(key, known))
                )
        if defaults is None:
            defaults = self.defaults(doc, data.get("defaults"))
        self.file_defaults = defaults
        jobs = data.get("jobs")
        if jobs is None:
            return
        if not isinstance(jobs, dict):
            doc.problems.append(
                doc.problem(doc.mark_of(("jobs",)), "'jobs' must be a mapping of job id to job")
            )
            return
        for job_id, raw in jobs.items():
            if job_id in streamed:
                continue
            job = self.job(doc, job_id, raw, defaults)
            jobs[job_id] = None  # its raw data is done with: free it for the next jobs
            if job is not None:
                yield job

    def templates(self, doc: Document) -> Iterator[DeclaredTemplate]:
        """The file's valid templates (``templates.check``), problems at PATH:LINE:COL."""
        data = doc.data
        raw_all = data.get("templates") if isinstance(data, dict) else None
        if raw_all is None:
            return
        if not isinstance(raw_all, dict):
            message = "'templates' must be a mapping of template name to template"
            doc.problems.append(doc.problem(doc.mark_of(("templates",)), message))
            return
        defaults = self.file_defaults
        for name, raw in raw_all.items():
            loc: Loc = ("templates", name)
            if not self._good_id(doc, loc, name, "template name"):
                continue

            def merge(body: dict[str, Any], loc: Loc = loc) -> dict[str, Any]:
                return _merge_defaults(doc, loc, body, defaults) if defaults else body

            source = Source(doc.path, *doc.mark_of(loc, key=True))
            found, misplaced, error, about = check_template(
                name, raw, self.models.job, merge, source
            )
            for sub, message in misplaced:
                doc.problems.append(doc.problem(doc.mark_of((*loc, *sub)), message))
            if error is not None:
                self._report(doc, loc, error.errors(), about)
            if found is not None:
                yield found

    def _good_id(self, doc: Document, loc: Loc, job_id: str, what: str) -> bool:
        if not re.fullmatch(JOB_ID_PATTERN, job_id) or len(job_id) > 100:
            message = (
                f"{what} '{job_id}' must be lowercase letters, digits, '.', '_' or '-', "
                "start with a letter or digit, and be at most 100 characters"
            )
        elif job_id.startswith(RESERVED_ID_PREFIX):
            message = (
                f"{what} '{job_id}' is reserved: ids starting with '{RESERVED_ID_PREFIX}' "
                "name the scheduler's built-in jobs, rename it"
            )
        else:
            return True
        doc.problems.append(doc.problem(doc.mark_of(loc, key=True), message))
        return False

    def defaults(self, doc: Document, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        try:
            self.models.defaults.model_validate(raw)
        except ValidationError as exc:
            self._report(doc, ("defaults",), exc.errors(), raw)
            return {}
        return dict(raw)

    def job(
        self, doc: Document, job_id: str, raw: Any, defaults: dict[str, Any]
    ) -> DeclaredJob | None:
        loc: Loc = ("jobs", job_id)
        if not self._good_id(doc, loc, job_id, "job id"):
            return None
        merged = (
            _merge_defaults(doc, loc, raw, defaults) if isinstance(raw, dict) and defaults else raw
        )
        try:
            spec = self.models.job.model_validate(merged)
        except ValidationError as exc:
            self._report(doc, loc, exc.errors(), raw)
            return None
        source = Source(doc.path, *doc.mark_of(loc, key=True))
        canonical = spec.canonical()
        text = canonical_text(canonical)
        return DeclaredJob(job_id, canonical, fingerprint(canonical, text), source, spec, text)

    def _report(self, doc: Document, prefix: Loc, errors: list[ErrorDetails], raw: Any) -> None:
        taken = {(p.line, p.col) for p in doc.problems}
        for error in errors:
            loc, key_side, message = self._explain(prefix, error, raw)
            mark = doc.mark_of(loc, key=key_side)
            if mark not in taken:  # a bad YAML tag already explains this value
                doc.problems.append(doc.problem(mark, message))

    def _explain(self, prefix: Loc, error: ErrorDetails, raw: Any) -> tuple[Loc, bool, str]:
        loc = _resolve(raw, prefix, error["loc"])
        kind, ctx = error["type"], error.get("ctx") or {}
        name = str(loc[-1]) if loc and loc != prefix else ""
        if kind == "extra_forbidden":
            return loc, True, self._unknown(name, None)
        if kind == "missing":
            missing = str(error["loc"][-1])
            return loc, True, f"missing required key '{missing}'"
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            known = ", ".join(self.models.run_types)
            if kind == "union_tag_not_found":
                return loc, True, f"run needs a 'type': one of {known}"
            return (
                (*loc, "type"),
                False,
                (
                    f"unknown run type '{ctx.get('tag')}': use one of {known}, "
                    "or install the plugin that provides it"
                ),
            )
        if "key" in ctx:  # our own errors name the key they are about (None: the block)
            return ((*loc, ctx["key"]) if ctx["key"] else loc), True, error["msg"]
        if kind.startswith("datetime") or kind.startswith("date_"):
            detail = error["msg"].split(",", 1)[-1].strip()
            return loc, False, f"{name}: not a valid ISO 8601 date-time ({detail})"
        message = error["msg"].removeprefix("Value error, ")
        if not name or message.startswith(name):
            return loc, False, message
        return loc, False, f"{name}: {message}"

    def _unknown(self, key: str, known: str | None) -> str:
        close = difflib.get_close_matches(key, self.vocabulary, n=1, cutoff=0.75)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        allowed = f": allowed here: {known}" if known and not close else ""
        return f"unknown key '{key}'{hint}{allowed}"


def _resolve(node: Any, prefix: Loc, loc: tuple[int | str, ...]) -> Loc:
    """Map a pydantic error location in ``node`` (the value at ``prefix``) onto the
    document, skipping union member names."""
    found: Loc = prefix
    for step in loc:
        if isinstance(node, dict) and step in node:
            node, found = node[step], (*found, step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node, found = node[step], (*found, step)
        elif step == loc[-1] and isinstance(node, dict) and isinstance(step, str):
            return (*found, step)  # a missing key: points at its parent
    return found


def _merge_defaults(
    doc: Document, loc: Loc, raw: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    merged = dict(raw)
    for key, value in defaults.items():
        if key == "timezone":
            schedule = merged.get("schedule")
            if not isinstance(schedule, dict) or "timezone" in schedule:
                continue
            merged["schedule"] = {**schedule, "timezone": value}
            doc.redirects[(*loc, "schedule", "timezone")] = ("defaults", key)
        elif key == "labels" and isinstance(merged.get("labels"), dict):
            merged["labels"] = {**value, **merged["labels"]}
        elif key == "celery":
            run = merged.get("run")
            if isinstance(run, dict) and run.get("type") == "celery":
                merged["run"] = {**value, **run}
                for name in value.keys() - run.keys():
                    doc.redirects[(*loc, "run", name)] = ("defaults", key, name)
        elif key not in merged:
            merged[key] = value
            doc.redirects[(*loc, key)] = ("defaults", key)
    return merged
