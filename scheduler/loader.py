"""Job files in, desired state out: parse YAML keeping every key's ``file:line:col``,
validate it against the spec models, and report every problem in every file at once.

A file's text becomes a ``document`` (data, problems, positions), ``validation`` checks its
jobs against the models, and each valid one is a ``declared.DeclaredJob``. Callers:
``scheduler validate``, ``preview --job`` and the reconciler (which only ever applies a
``DesiredState`` that loaded without a single problem). Pure apart from reading the files
it is given; never imports apscheduler.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.declared import DeclaredJob, Source
from scheduler.document import Document, parse_yaml
from scheduler.errors import InvalidJobFiles, SpecProblem
from scheduler.jobfiles import job_files, read_job_file
from scheduler.spec import SpecModels, default_models
from scheduler.templates import DeclaredTemplate
from scheduler.validation import Validator
from scheduler.yamldoc import LIMITS

__all__ = ["DeclaredJob", "DesiredState", "FileResult", "Source", "load_paths", "load_text"]


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
    validator = Validator(models or default_models())
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
