"""Job files in, desired state out: parse YAML keeping every key's ``file:line:col``,
validate it against the spec models, and report every problem in every file at once.

Callers: ``scheduler validate``, ``preview --job`` and the reconciler (which only ever
applies a ``DesiredState`` that loaded without a single problem). Pure apart from reading
the files it is given; never imports apscheduler.
"""

from __future__ import annotations

import difflib
import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from scheduler.errors import InvalidJobFiles, SpecProblem
from scheduler.jobfiles import job_files, read_job_file, too_big
from scheduler.spec import (
    JOB_ID_PATTERN,
    RESERVED_ID_PREFIX,
    JobSpec,
    Schedule,
    SpecModels,
    canonical_text,
    default_models,
    field_names,
    fingerprint,
)
from scheduler.templates import DeclaredTemplate
from scheduler.templates import check as check_template
from scheduler.yamldoc import LIMITS, Loc, Mark, Parsed, Pos, Refused, read_yaml


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
    # ``apply.Prepared``: its rows should it be added, built by the parse child that read it.
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


@dataclass
class Document:
    """A parsed YAML file: plain data, and the means to find any value's position.

    Positions beyond job ids are found only when there is a problem to report (the file
    is read a second time, keeping them), so a valid file costs no more than its data.
    """

    path: str
    data: Any
    text: str = ""
    problems: list[SpecProblem] = field(default_factory=list)
    refused: bool = False  # a syntax error or a limit: the data is not worth validating
    streamed: set[str] = field(default_factory=set)  # jobs handed on while reading
    defaults_late: bool = False  # `defaults:` came after jobs that were handed on
    key_marks: dict[Loc, Mark] = field(default_factory=dict)
    # A job key filled in from the file's `defaults:` points back at where it was written.
    redirects: dict[Loc, Loc] = field(default_factory=dict)
    _root: Pos | None = field(default=None, repr=False)

    def problem(self, mark: Mark, message: str) -> SpecProblem:
        return SpecProblem(self.path, mark[0], mark[1], message)

    def mark_of(self, loc: Loc, *, key: bool = False) -> Mark:
        """The position of the value at ``loc`` (or of its key), else of the nearest
        enclosing key that exists."""
        for prefix_len in range(len(loc), 0, -1):
            if loc[:prefix_len] in self.redirects:
                loc = self.redirects[loc[:prefix_len]] + loc[prefix_len:]
                break
        if key and loc in self.key_marks:
            return self.key_marks[loc]
        key_mark: Mark | None = None
        node, depth = self._positions(), 0
        if node is None:
            return (1, 1)
        for step in loc:
            child = node.child(step)
            if child is None:
                break
            key_mark, node, depth = child[0], child[1], depth + 1
        if depth == len(loc) and not key:
            return node.mark
        return key_mark if key_mark is not None else node.mark

    def _positions(self) -> Pos | None:
        if self._root is None and self.text:
            text, self.text = self.text, ""  # read once, even if this read fails
            try:
                self._root = read_yaml(text, positions=True).root
            except (Refused, yaml.YAMLError):  # past a limit while its jobs were checked
                return None
        return self._root


@dataclass(frozen=True)
class FileResult:
    path: str
    digest: str
    jobs: tuple[DeclaredJob, ...]
    problems: tuple[SpecProblem, ...]
    templates: tuple[DeclaredTemplate, ...] = ()


@dataclass
class DesiredState:
    """The jobs the files declare, by id, with the files they came from."""

    jobs: dict[str, DeclaredJob]
    files: dict[str, str]  # path -> sha256 of its content
    templates: dict[str, DeclaredTemplate] = field(default_factory=dict)


OnJob = Callable[[Document, str, Any, Any], None]  # document, job id, raw job, raw defaults


def parse_yaml(path: str, text: str, on_job: OnJob | None = None) -> Document:
    """Parse one file; YAML-level problems (syntax, duplicate keys, tags, limits) go in
    ``problems``. ``on_job``: called with each job as soon as it is read (the document's
    data then keeps None in its place)."""
    doc = Document(path=path, data=None, text=text)
    if len(text) > LIMITS.file_bytes:
        return _refuse(doc, (1, 1), too_big(len(text.encode())))
    synced = 0

    def sync(parsed: Parsed) -> None:
        nonlocal synced
        doc.key_marks = parsed.key_marks
        new = parsed.problems[synced:]
        doc.problems.extend(doc.problem(mark, message) for mark, message in new)
        synced = len(parsed.problems)

    def handed_on(job_id: str, raw: Any, parsed: Parsed) -> None:
        sync(parsed)
        assert on_job is not None
        on_job(doc, job_id, raw, parsed.defaults)

    try:
        parsed = read_yaml(text, on_job=handed_on if on_job else None)
    except Refused as exc:
        return _refuse(doc, exc.mark, exc.message)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        if "maximum nesting depth" in detail:
            detail, context = f"values nest deeper than {LIMITS.depth} levels", ""
        return _refuse(doc, where, f"YAML syntax error: {detail}{context}")
    except yaml.YAMLError as exc:
        return _refuse(doc, (1, 1), f"YAML error: {exc}")
    sync(parsed)
    doc.data, doc.streamed, doc.defaults_late = parsed.data, parsed.streamed, parsed.defaults_late
    return doc


def _refuse(doc: Document, mark: Mark, message: str) -> Document:
    """Only this problem counts: what jobs checked before it said is beside the point."""
    doc.problems[:] = [doc.problem(mark, message)]
    doc.refused = True
    doc.text = ""
    return doc


class _Validator:
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
            doc.problems.append(
                doc.problem(
                    doc.mark_of(loc, key=True),
                    f"{what} '{job_id}' must be lowercase letters, digits, '.', '_' or '-', "
                    "start with a letter or digit, and be at most 100 characters",
                )
            )
            return False
        if job_id.startswith(RESERVED_ID_PREFIX):
            doc.problems.append(
                doc.problem(
                    doc.mark_of(loc, key=True),
                    f"{what} '{job_id}' is reserved: ids starting with '{RESERVED_ID_PREFIX}' "
                    "name the scheduler's built-in jobs, rename it",
                )
            )
            return False
        return True

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


def load_text(
    path: str,
    text: str,
    models: SpecModels | None = None,
    *,
    lean: bool = False,
    specs: bool = True,
) -> FileResult:
    """Parse and validate one file's text. Never raises for bad input. ``lean``: check
    each job as soon as it is read and keep no models (the few callers that need one
    rebuild it from the canonical text), so a large file holds a fraction of the memory."""
    validator = _Validator(models or default_models())
    found: list[DeclaredJob] = []
    checked: list[dict[str, Any]] = []  # the file's defaults, checked before its first job

    def on_job(doc: Document, job_id: str, raw: Any, defaults: Any) -> None:
        if not checked:
            checked.append(validator.defaults(doc, defaults))
        job = validator.job(doc, job_id, raw, checked[0])
        doc.key_marks.pop(("jobs", job_id), None)  # its source is in the job now
        if job is not None:
            found.append(_lean(job, specs))

    doc = parse_yaml(path, text, on_job if lean else None)
    if lean and doc.defaults_late:  # rare: `defaults:` after `jobs:`, read it again
        doc, found, checked = parse_yaml(path, text), [], []
    jobs: tuple[DeclaredJob, ...] = ()
    templates: tuple[DeclaredTemplate, ...] = ()
    if not doc.refused:
        rest = validator.jobs(doc, checked[0] if checked else None, doc.streamed)
        jobs = (*found, *(_lean(job, specs) for job in rest)) if lean else tuple(rest)
        templates = tuple(validator.templates(doc))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return FileResult(path, digest, jobs, tuple(doc.problems), templates)


def _lean(job: DeclaredJob, specs: bool = True) -> DeclaredJob:
    """Without its model; without its spec at all unless ``specs`` (then the warnings
    about its schedule are all that is kept of it)."""
    if job.parsed is None:
        return job
    if specs:  # not dataclasses.replace: a third of the cost of building the job
        return DeclaredJob(job.id, job.canonical, job.fingerprint, job.source, None, job.text)
    notes = tuple(job.parsed.schedule.warnings)
    return DeclaredJob(job.id, {}, job.fingerprint, job.source, notes=notes)


def load_file(
    path: Path, models: SpecModels | None = None, *, lean: bool = False, specs: bool = True
) -> FileResult:
    raw = read_job_file(path)
    if isinstance(raw, SpecProblem):
        return FileResult(str(path), "", (), (raw,))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = SpecProblem(str(path), 1, 1, f"job files must be UTF-8: {exc}")
        return FileResult(str(path), "", (), (problem,))
    del raw  # not held while the text is parsed
    return load_text(str(path), text, models, lean=lean, specs=specs)


def combine(results: Iterable[FileResult]) -> DesiredState:
    """Merge per-file results; raise ``InvalidJobFiles`` with every problem if any."""
    jobs: dict[str, DeclaredJob] = {}
    templates: dict[str, DeclaredTemplate] = {}
    files: dict[str, str] = {}
    problems: list[SpecProblem] = []
    for result in results:
        files[result.path] = result.digest
        problems.extend(result.problems)
        for job in result.jobs:
            if len(jobs) >= LIMITS.jobs:
                problems.append(
                    SpecProblem(
                        job.source.path,
                        job.source.line,
                        job.source.col,
                        f"more than {LIMITS.jobs} jobs in all files: this is the limit",
                    )
                )
                break
            first = jobs.get(job.id)
            if first is not None:
                problems.append(
                    SpecProblem(
                        job.source.path,
                        job.source.line,
                        job.source.col,
                        f"job id '{job.id}' is already defined in {first.source}: "
                        "ids are unique across all job files, rename one",
                    )
                )
                continue
            jobs[job.id] = job
        for found in result.templates:
            where = found.source
            if found.name in templates:
                message = (
                    f"template '{found.name}' is already defined in {templates[found.name].source}"
                    ": template names are unique across all job files, rename one"
                )
                problems.append(SpecProblem(where.path, where.line, where.col, message))
            templates[found.name] = found
    if problems:
        raise InvalidJobFiles(problems)
    return DesiredState(jobs=jobs, files=files, templates=templates)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading builds ~10 objects per YAML node:
    none of them form cycles, and full collections over them cost 40% of a large load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_paths(
    paths: Iterable[Path], models: SpecModels | None = None, *, specs: bool = True
) -> DesiredState:
    """Load every job file under ``paths`` (files or directories). ``specs=False``: keep
    only each job's id, source, fingerprint and warnings (what ``validate`` needs)."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InvalidJobFiles([SpecProblem(str(path), 1, 1, "no such file or directory")])
        files.extend(job_files(path))
    with gc_paused():
        return combine(load_file(f, models, lean=True, specs=specs) for f in files)
