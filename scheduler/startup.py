"""The daemon's first reconcile, in a child process when it has much to do.

A first start on 10,000 jobs parsed, planned and wrote them inside the daemon. Afterwards
only ~11,000 more objects were alive than before, but they were scattered over the
allocator's arenas and pinned them: the idle daemon sat at 129 MB, where a restart on the
same store (whose reconcile changes nothing) sits at 91 MB. In a child, what the reconcile
allocates goes away with it. A reconcile that changes nothing (told apart cheaply by
``unchanged``) or small job files stay in the daemon: a child costs a few tenths of a
second. Caller: the daemon.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from scheduler.children import die_with_parent, host_main_left_behind
from scheduler.errors import SchedulerError
from scheduler.jobfiles import job_file_names
from scheduler.parsepool import ChildLimits
from scheduler.unchanged import unchanged_jobs

CHILD_BYTES = 1024 * 1024  # job files at least this large are reconciled in a child


@dataclass(frozen=True)
class Outcome:
    """What the daemon logs and shows of a reconcile (``render.plan_details``, JSON-safe),
    or why it failed."""

    details: dict[str, Any]
    parsed_files: int = 0
    seconds: float = 0.0
    error: str | None = None
    refused: bool = False  # ``error`` is the files' (or the store's) fault, not a bug


class ReconcileFailed(SchedulerError):
    """The child's reconcile refused the files, or failed: the message says which."""


def worth_a_child(engine: Engine, jobs_dir: Path) -> bool:
    """Whether the job files are large and differ from what the store holds."""
    total = 0
    for path in job_file_names(jobs_dir) if jobs_dir.exists() else []:
        try:
            total += os.stat(path).st_size
        except OSError:
            continue  # the reconcile reports it
    if total < CHILD_BYTES:
        return False
    with engine.connect() as conn:
        return unchanged_jobs(conn, jobs_dir) is None


def reconcile_in_child(
    store_url: str, jobs_dir: Path, allow_empty: bool, workers: int, limits: ChildLimits
) -> Outcome:
    """``reconciler.reconcile`` in a child; raises ``ReconcileFailed`` as it would raise.
    The child parses in children of its own under ``limits``: a hostile file stops its
    parse child, as in the daemon."""
    context = multiprocessing.get_context("forkserver")  # the daemon has threads
    context.set_forkserver_preload(["scheduler.parsepool"])
    with ProcessPoolExecutor(
        1, mp_context=context, initializer=die_with_parent, initargs=(None,)
    ) as pool:
        with host_main_left_behind():
            future = pool.submit(_reconcile, store_url, str(jobs_dir), allow_empty, workers, limits)
        try:
            outcome = future.result()
        except BrokenProcessPool as exc:
            raise ReconcileFailed(
                f"the start-up reconcile's process died ({exc}): the store keeps its jobs; "
                "see the system log (out of memory?) and send SIGHUP to try again"
            ) from None
    if outcome.error is not None:
        raise ReconcileFailed(outcome.error) if outcome.refused else RuntimeError(outcome.error)
    return outcome


def _reconcile(
    store_url: str, jobs_dir: str, allow_empty: bool, workers: int, limits: ChildLimits
) -> Outcome:
    """In the child: single-threaded, so its parse children may fork."""
    from scheduler.reconciler import reconcile
    from scheduler.render import plan_details
    from scheduler.store import Store

    try:
        store = Store(store_url)
    except Exception as exc:
        return Outcome({}, error=str(exc), refused=True)
    try:
        result = reconcile(
            store,
            Path(jobs_dir),
            allow_empty=allow_empty,
            workers=workers,
            start="fork",
            limits=limits,
        )
    except SchedulerError as exc:
        return Outcome({}, error=str(exc), refused=True)
    except Exception:
        return Outcome({}, error=traceback.format_exc())
    finally:
        store.engine.dispose()
    details = plan_details(result.plan, result.applied, result.instance_lines)
    return Outcome(details, result.parsed_files, result.seconds)
