"""The no-op reconcile, told apart without the job-file models.

When every job file's content hash matches the store's parse cache, and every cached job
is stored with the same fingerprint and the same ``file:line``, a reconcile would change
nothing. That is known from the files' bytes and one read of two tables, before pydantic,
the handler types or the write path are imported (they were four fifths of a no-op of
10,000 jobs). Anything else (a changed, new, removed or unreadable file, a parse cache of
another scheduler version or handler set, a job edited in the store, installed plugins)
answers None, and the full reconcile decides. Callers: ``service`` (the command line).
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import entry_points
from pathlib import Path

from sqlalchemy import Connection, select

from scheduler import __version__, schema
from scheduler.jobfiles import job_file_names, read_job_file

# ``handlers.builtin_handlers()`` and ``handlers.ENTRY_POINT_GROUP``, without importing
# the handlers (tests/test_noop_reconcile_is_told_apart_early.py pins that they agree).
BUILTIN_TYPES = ("celery", "cleanup", "command", "http", "python")
ENTRY_POINT_GROUP = "scheduler.handlers"


def cache_key(type_names: list[str] | tuple[str, ...]) -> str:
    """The parse cache's version: cached parses hold only for the same scheduler release
    and the same handler types (``reconciler.cache_version``)."""
    key = f"{__version__}|{','.join(sorted(type_names))}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def builtin_cache_key() -> str | None:
    """``cache_key`` of the built-in types; None when plugins are installed (their type
    names are known only by loading them)."""
    if entry_points(group=ENTRY_POINT_GROUP):
        return None
    return cache_key(BUILTIN_TYPES)


def unchanged_jobs(conn: Connection, jobs_dir: Path) -> list[str] | None:
    """The ids of the declared jobs, sorted, when the files and the store agree exactly
    (nothing to add, update, move or remove, and no cache entry to write); else None."""
    version = builtin_cache_key()
    paths = job_file_names(jobs_dir) if jobs_dir.exists() else []
    if version is None or not paths:  # no files at all: the reconciler refuses or removes
        return None
    files = schema.files
    # Rows unpacked as tuples: reading 10,000 rows' columns by name cost a tenth of the check.
    query = select(files.c.path, files.c.digest, files.c.version, files.c.jobs)
    cached = {
        path: (digest, cached_as, jobs) for path, digest, cached_as, jobs in conn.execute(query)
    }
    if set(cached) != set(paths):
        return None
    for path in paths:  # every file first: a changed one ends this before any JSON is read
        digest, cached_as, _ = cached[path]
        raw = read_job_file(path)
        if not isinstance(raw, bytes) or cached_as != version:
            return None
        if hashlib.sha256(raw).hexdigest() != digest:
            return None
    declared: dict[str, tuple[str, str]] = {}  # id -> (fingerprint, file:line)
    entries = 0
    # Every file's cached entries in one JSON text: one decode, not one per file.
    per_file = json.loads("[" + ",".join(cached[path][2] for path in paths) + "]")
    for path, file_entries in zip(paths, per_file, strict=True):
        for entry in file_entries:
            if "id" not in entry:  # not a job (a template, say): the full reconcile decides
                return None
            line = entry["line"]
            declared[entry["id"]] = (entry["fingerprint"], f"{path}:{line}" if line else str(path))
            entries += 1
    if entries != len(declared):  # an id twice: let the loader say where
        return None
    jobs = schema.jobs
    stored = {
        job_id: (fingerprint, source)
        for job_id, fingerprint, source in conn.execute(
            select(jobs.c.id, jobs.c.fingerprint, jobs.c.source)
        )
    }
    return sorted(declared) if stored == declared else None
