"""``scheduler --url ... plan``: the LOCAL job files planned against a daemon's live store
(like ``kubectl diff -f``), so a CI drift check sees the checkout it runs in.

The files are loaded and validated here (their ``file:line:col`` errors never leave this
machine); the daemon only serves what the store holds: every job's fingerprint and source,
then the stored specs of the jobs whose fingerprint differs. The pure ``plan()`` runs here on
that, so ``--url`` prints exactly what ``--db`` prints. Requests stay small whatever the
number of jobs (ids only, in chunks), far under the API's 1 MiB body limit. Callers:
``service.plan_for`` (client side) and ``api`` (the two read-only endpoints).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from scheduler.client import ApiError, call
from scheduler.plan import Stored, plan
from scheduler.reconciler import EmptyJobsDir, load_desired
from scheduler.render import plan_details
from scheduler.settings import Settings
from scheduler.store import Store

SPECS_PER_REQUEST = 1000  # ids of at most 100 characters: ~100 KiB per request at worst
WORKERS = min(4, os.cpu_count() or 1)


def stored_index(store: Store) -> dict[str, dict[str, Any]]:
    """What planning needs of every job the files declared but its spec (the daemon's side;
    instances of templates are not the files' to plan)."""
    return {
        job_id: {
            "fingerprint": job.fingerprint,
            "source": job.source,
            "operator_paused": job.operator_paused,
        }
        for job_id, job in store.stored_jobs(files_only=True).items()
    }


def stored_specs(store: Store, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored specs of ``ids`` (unknown ids are left out; the daemon's side)."""
    wanted = set(ids)
    stored = store.stored_jobs()
    return {job_id: job.canonical for job_id, job in stored.items() if job_id in wanted}


def plan_remote(settings: Settings, *, allow_empty: bool = False) -> dict[str, Any]:
    """Plan the local jobs dir against the store behind ``settings.api_url``; changes nothing."""
    assert settings.api_url is not None
    desired = load_desired(settings.jobs_dir, {}, workers=WORKERS).jobs  # raises InvalidJobFiles
    index = _stored_index(settings.api_url)
    if not desired and index and not allow_empty:
        raise EmptyJobsDir(settings.jobs_dir, len(index))
    changed = sorted(
        job_id
        for job_id, job in desired.items()
        if job_id in index and index[job_id]["fingerprint"] != job.fingerprint
    )
    specs: dict[str, dict[str, Any]] = {}
    for at in range(0, len(changed), SPECS_PER_REQUEST):
        chunk = changed[at : at + SPECS_PER_REQUEST]
        specs.update(call(settings.api_url, "POST", "/store/specs", json={"ids": chunk})["specs"])
    stored = {
        job_id: Stored(
            job_id,
            specs.get(job_id, {}),
            entry["fingerprint"],
            entry["source"],
            bool(entry.get("operator_paused")),
        )
        for job_id, entry in index.items()
    }
    return plan_details(plan(desired, stored))


def _stored_index(url: str) -> dict[str, dict[str, Any]]:
    try:
        index: dict[str, dict[str, Any]] = call(url, "GET", "/store/jobs")["jobs"]
    except ApiError as exc:
        if "HTTP 404" not in str(exc):
            raise
        raise ApiError(
            f"the daemon at {url} cannot plan your files (it has no GET /store/jobs: an older "
            "release): upgrade it, or run `scheduler --db URL plan` against its store"
        ) from None
    return index
