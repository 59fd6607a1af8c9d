"""Job files parsed in child processes: in parallel when there are many, under a CPU and
memory limit when the daemon asks (no file can take the daemon down with it), and always
dying with their parent (a kill -9 of ``scheduler reconcile`` leaves nothing behind).
Callers: the reconciler. Imports only the loader, so a child starts light.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

from scheduler.children import die_with_parent, host_main_left_behind
from scheduler.errors import SpecProblem
from scheduler.loader import FileResult, load_text

PARALLEL_MIN_FILES = 16


@dataclass(frozen=True)
class ChildLimits:
    """What one parse child may use. Far above a valid 16 MiB file of jobs (about 5 s and
    600 MiB): the parser's own limits refuse hostile files long before these."""

    cpu_seconds: int = 60
    memory_mib: int = 2048

    @classmethod
    def from_env(cls) -> ChildLimits:
        """``SCHEDULER_PARSE_CPU_SECONDS`` and ``SCHEDULER_PARSE_MEMORY_MIB`` override."""
        default = cls()
        return cls(
            _env_int("SCHEDULER_PARSE_CPU_SECONDS", default.cpu_seconds),
            _env_int("SCHEDULER_PARSE_MEMORY_MIB", default.memory_mib),
        )

    def refused(self, path: str) -> SpecProblem:
        return SpecProblem(
            path,
            1,
            1,
            f"parsing this file went past the parse limit ({self.cpu_seconds} s of CPU, "
            f"{self.memory_mib} MiB of memory) and was stopped: make the file smaller or "
            "split it (limits: SCHEDULER_PARSE_CPU_SECONDS, SCHEDULER_PARSE_MEMORY_MIB)",
        )


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _init_child(parent: int | None, limits: ChildLimits | None) -> None:
    die_with_parent(parent)
    # A child only parses: its objects form no cycles, and the collector's full passes over
    # them cost a third of a large parse (the daemon's forkserver children had it on).
    gc.disable()
    if limits is not None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        memory = limits.memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _submit(
    executor: ProcessPoolExecutor, batch: list[tuple[str, str]], prepare: datetime | None = None
) -> Future[list[FileResult]]:
    """A batch for a child; children start on submit (not under "fork"), so here."""
    with host_main_left_behind():
        return executor.submit(load_lean, batch, prepare)


def load_lean(batch: list[tuple[str, str]], prepare: datetime | None = None) -> list[FileResult]:
    """``load_text`` in a child: the pydantic models stay behind (the parent rebuilds those
    it needs from the canonical dicts, cheaper than pickling them). ``prepare``: also build
    each job's rows for adding it at that time (``rows.prepare``)."""
    results = [load_text(path, text, lean=True) for path, text in batch]
    if prepare is not None:
        from scheduler.rows import prepare as prepare_rows  # inherited under "fork"

        prepare_rows((job for result in results for job in result.jobs), prepare)
    return results


def parse_files(
    pending: list[tuple[str, str]],
    workers: int,
    start: str,
    limits: ChildLimits | None = None,
    prepare: datetime | None = None,
) -> list[FileResult]:
    """Parse and validate ``(path, text)`` pairs, in file order.

    Without ``limits``: in this process unless there are many files (a cold start of
    10,000 jobs is mostly parsing, and what it allocates stays with the children). With
    ``limits``: always in children; a file whose child hits a limit becomes a problem
    naming it. ``start``: "fork" (the command line: the parent's imports for free) or
    "forkserver"/"spawn" (the daemon, whose other threads make forking unsafe). ``prepare``:
    children also build each job's rows for adding it then (``rows.prepare``)."""
    many = workers >= 2 and len(pending) >= PARALLEL_MIN_FILES
    if not pending or sys.platform == "win32" or (limits is None and not many):
        return [load_text(path, text) for path, text in pending]
    context = multiprocessing.get_context(start)
    if start == "forkserver":
        context.set_forkserver_preload([__name__])
    parent = os.getpid() if start != "forkserver" else None
    count = max(1, min(workers, len(pending)))
    size = max(1, len(pending) // (count * 4))
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]

    def pool(processes: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            processes, mp_context=context, initializer=_init_child, initargs=(parent, limits)
        )

    done: dict[str, FileResult] = {}
    failed: list[tuple[str, str]] = []
    with pool(count) as executor:
        futures = [(batch, _submit(executor, batch, prepare)) for batch in batches]
        for batch, future in futures:
            results = _outcome(future)
            if results is None:
                failed.extend(batch)
            else:
                done.update((r.path, r) for r in results)
    if len(pending) == 1:
        failed = []
        done.setdefault(pending[0][0], _refused(limits, pending[0][0]))
    for path, text in failed:  # which file was it? One child each, so the others still load
        with pool(1) as executor:
            results = _outcome(_submit(executor, [(path, text)]))
        done[path] = results[0] if results else _refused(limits, path)
    return [done[path] for path, _ in pending]


def _outcome(future: Future[list[FileResult]]) -> list[FileResult] | None:
    """The child's results; None when a limit stopped it (killed, or out of memory)."""
    try:
        return future.result()
    except (BrokenProcessPool, MemoryError):
        return None


def _refused(limits: ChildLimits | None, path: str) -> FileResult:
    problem = (limits or ChildLimits()).refused(path)
    return FileResult(path, "", (), (problem,))
