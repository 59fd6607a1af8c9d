"""Reconcile: load the job files, plan against the store, apply. The one place that
decides whether a plan may be applied at all (invalid files, an empty directory).

Files whose content hash matches the store's parse cache are not parsed again, so a no-op
reconcile of 10,000 jobs costs reading and hashing the files. Callers: the ``plan`` and
``reconcile`` verbs (under the writer lock) and the daemon.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.apply import FileCacheUpdate, apply_plan
from scheduler.declared import DeclaredJob, Source
from scheduler.errors import InvalidJobFiles, SchedulerError, SpecProblem
from scheduler.handlers import default_registry
from scheduler.instances import stored_templates
from scheduler.jobfiles import job_file_names, read_job_file
from scheduler.loader import FileResult, combine, gc_paused
from scheduler.parsepool import ChildLimits, parse_files
from scheduler.plan import Plan, plan
from scheduler.store import CachedFile, Store
from scheduler.template_plan import Rerender, plan_templates
from scheduler.templates import DeclaredTemplate
from scheduler.unchanged import cache_key


class EmptyJobsDir(SchedulerError):
    """Refused: the files declare no job while the store holds some."""

    def __init__(self, jobs_dir: Path, stored: int) -> None:
        what = "does not exist" if not jobs_dir.exists() else "declares no job"
        super().__init__(
            f"{jobs_dir} {what}, but the store holds {stored} job(s): refusing to remove them "
            "all (a broken mount looks just like this). Fix the path, or pass --allow-empty "
            "if removing every job is what you want"
        )


@dataclass
class Loaded:
    """The desired state plus the file-cache changes that go with applying it."""

    jobs: dict[str, DeclaredJob]
    cache: FileCacheUpdate
    parsed_files: int
    templates: dict[str, DeclaredTemplate] = field(default_factory=dict)


@dataclass
class ReconcileResult:
    plan: Plan[DeclaredJob]
    applied: bool
    parsed_files: int = 0
    seconds: float = 0.0
    instances: Rerender | None = None  # instances re-rendered or removed with their template

    @property
    def instance_lines(self) -> list[str]:
        return self.instances.lines() if self.instances is not None else []


def cache_version() -> str:
    """Cached parses are only valid for the same scheduler and handler types."""
    return cache_key(tuple(default_registry()))


def load_desired(
    jobs_dir: Path,
    cache: Mapping[str, CachedFile],
    reparse: frozenset[str] = frozenset(),
    *,
    workers: int = 1,
    start: str = "fork",
    limits: ChildLimits | None = None,
    prepare: datetime | None = None,
) -> Loaded:
    """Load the jobs dir, re-parsing only files whose content changed since the cache.
    ``prepare``: parse children also build each job's rows for adding it then."""
    version = cache_version()
    results: list[FileResult | None] = []
    pending: list[tuple[str, str]] = []
    slots: list[int] = []
    paths = job_file_names(jobs_dir) if jobs_dir.exists() else []
    with gc_paused():
        for key in paths:
            raw = read_job_file(key)
            if isinstance(raw, SpecProblem):  # never skipped: that would remove its jobs
                results.append(FileResult(key, "", (), (raw,)))
                continue
            digest = hashlib.sha256(raw).hexdigest()
            hit = cache.get(key)
            if hit and hit.digest == digest and hit.version == version and key not in reparse:
                results.append(_from_cache(key, hit))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = SpecProblem(key, 1, 1, f"job files must be UTF-8: {exc}")
                results.append(FileResult(key, digest, (), (problem,)))
                continue
            slots.append(len(results))
            pending.append((key, text))
            results.append(None)  # filled in below, in file order
        put: dict[str, CachedFile] = {}
        parsed = parse_files(pending, workers, start, limits, prepare)
        for slot, result in zip(slots, parsed, strict=True):
            results[slot] = result
            entries = [_cache_entry(j) for j in result.jobs]
            entries += [_template_entry(t) for t in result.templates]
            put[result.path] = CachedFile(result.digest, version, entries)
        state = combine(r for r in results if r is not None)  # raises with every problem
    drop = frozenset(cache) - set(state.files)
    return Loaded(state.jobs, FileCacheUpdate(put, drop), len(pending), state.templates)


def _cache_entry(job: DeclaredJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "fingerprint": job.fingerprint,
        "line": job.source.line,
        "col": job.source.col,
    }


def _template_entry(found: DeclaredTemplate) -> dict[str, Any]:
    where = found.source
    return {
        "template": found.name,
        "fingerprint": found.fingerprint,
        "line": where.line,
        "col": where.col,
    }


def _from_cache(path: str, cached: CachedFile) -> FileResult:
    jobs = tuple(
        DeclaredJob(e["id"], {}, e["fingerprint"], Source(path, e["line"], e["col"]))
        for e in cached.jobs
        if "id" in e
    )
    templates = tuple(
        DeclaredTemplate(e["template"], {}, e["fingerprint"], Source(path, e["line"], e["col"]))
        for e in cached.jobs
        if "template" in e
    )
    return FileResult(path, cached.digest, jobs, (), templates)


def reconcile(
    store: Store,
    jobs_dir: Path,
    *,
    dry_run: bool = False,
    allow_empty: bool = False,
    allow_orphan_delete: bool = False,
    now: datetime | None = None,
    workers: int = 1,
    start: str = "fork",
    limits: ChildLimits | None = None,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> ReconcileResult:
    """Make the store match the files, or raise without changing anything.

    Raises ``InvalidJobFiles`` when any file is invalid (or a template edit would make an
    instance invalid), ``EmptyJobsDir`` when the files declare nothing while the store holds
    jobs (unless ``allow_empty``) and ``TemplateHasInstances`` when a removed template still
    has instances (unless ``allow_orphan_delete``). Instances are otherwise never removed.
    ``limits``: parse in children under these limits; ``guard``: held while reading the store,
    planning and applying (not while parsing).
    """
    started = time.perf_counter()
    # Taken before parsing: what the files add is armed from this moment, so a fire time
    # that passes while a large reconcile runs is still due, not skipped.
    when = now or datetime.now(UTC)
    with store.engine.connect() as conn:
        cache = store.file_cache(conn)
    # Parsing (in children, when ``limits``) happens outside ``guard``: a slow or hostile
    # file never holds up the daemon's firing of other jobs. Children forked from here
    # (the command line) also build the rows of what they parsed, should it be added.
    prepare = when if start == "fork" and not dry_run else None
    load = functools.partial(
        load_desired,
        jobs_dir,
        cache,
        workers=workers,
        start=start,
        limits=limits,
        prepare=prepare,
    )
    loaded = load()
    with guard():
        with store.engine.connect() as conn, gc_paused():
            stored = store.stored_jobs(conn, files_only=True, specs=False)
            stored_t = stored_templates(store, conn)
        # A job known only by fingerprint that the store does not hold as such (a store
        # edited behind our back): parse its file after all, to have its spec.
        stale = frozenset(
            job.source.path
            for job in loaded.jobs.values()
            if job.from_cache
            and (job.id not in stored or stored[job.id].fingerprint != job.fingerprint)
        ) | frozenset(
            found.source.path
            for found in loaded.templates.values()
            if found.from_cache
            and (
                found.name not in stored_t or stored_t[found.name].fingerprint != found.fingerprint
            )
        )
        if stale:
            loaded = load(reparse=stale)
        if not loaded.jobs and stored and not allow_empty:
            raise EmptyJobsDir(jobs_dir, len(stored))
        changed_ids = [
            job.id
            for job in loaded.jobs.values()
            if job.id in stored and stored[job.id].fingerprint != job.fingerprint
        ]
        if changed_ids:  # only these are compared field by field
            with store.engine.connect() as conn:
                stored = store.with_specs(conn, stored, changed_ids)
        result_plan = plan(loaded.jobs, stored)
        shift = plan_templates(store, loaded.templates, stored_t, result_plan, allow_orphan_delete)
        cache_changed = bool(loaded.cache.put or loaded.cache.drop)
        applied = False
        changed = result_plan.has_changes or result_plan.moved or cache_changed
        if not dry_run and (changed or shift.has_changes):
            with gc_paused():  # ~20 short-lived objects per job written, none in cycles
                write = functools.partial(shift.write, store, when)
                apply_plan(store, result_plan, loaded.cache, when, cache_version(), write)
            applied = True
    seconds = time.perf_counter() - started
    return ReconcileResult(result_plan, applied, loaded.parsed_files, seconds, shift.rerendered)


__all__ = ["EmptyJobsDir", "InvalidJobFiles", "ReconcileResult", "load_desired", "reconcile"]
