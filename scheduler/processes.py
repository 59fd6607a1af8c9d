"""A run's process tree, found and ended as a whole. Every process a run starts carries
``SCHEDULER_RUN_MARK=<random token>`` in its environment: that mark survives ``setsid``,
double forks and being orphaned (when the parent chain, the process group and the session
are all lost), and no other process carries it (one token per command started, so a
notifier never ends another notifier of the same run). Processes that shed their
environment (``env -i``) are still found while they descend from a marked process or stay in
the run's process group. The daemon is a child subreaper, so orphans come back to it and
are reaped instead of lingering as zombies. Callers: the command handler (end of a run) and
``leftovers`` (runs whose daemon was killed). Linux (/proc); elsewhere only the group.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    import asyncio

PROC = Path("/proc")
MARK_VAR = "SCHEDULER_RUN_MARK"
PR_SET_CHILD_SUBREAPER = 36
POLL = 0.05
KILL_WAIT = 5.0  # after SIGKILL: only a process stuck in the kernel takes longer


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux 3.4+), so they can be found and reaped."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Proc(NamedTuple):
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int  # clock ticks after boot: with the pid, names one process for good


def stat(pid: int) -> Proc | None:
    """The process from ``/proc/PID/stat``, or None when it is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)  # one read: the kernel fills it whole
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = data[data.rfind(b")") + 2 :].split(None, 20)
    try:
        return Proc(
            pid, int(fields[1]), int(fields[2]), int(fields[3]), chr(fields[0][0]), int(fields[19])
        )
    except (IndexError, ValueError):
        return None


def _read(path: str, limit: int = 4096) -> bytes:
    # os.read, not Path.read_*: a look at every process is a few hundred of these, and
    # the buffered file objects cost four times as much.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while limit > 0 and (chunk := os.read(fd, min(limit, 65536))):
            chunks.append(chunk)
            limit -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _all() -> dict[int, Proc]:
    found = {}
    try:
        names = os.listdir(PROC)
    except OSError:
        return {}
    for name in names:
        if name.isdigit() and (proc := stat(int(name))) is not None:
            found[proc.pid] = proc
    return found


@dataclass
class _Look:
    """One look at every process, shared by the runs that end around the same time (a
    burst of 200 runs would otherwise read /proc 200 times). Valid for a run whose main
    process had exited when the look began."""

    began: float
    procs: dict[int, Proc]
    environ: dict[int, list[bytes]]

    def marked(self, pid: int, mark: bytes) -> bool:
        if pid not in self.environ:
            try:
                self.environ[pid] = _read(f"{PROC}/{pid}/environ", 1 << 20).split(b"\0")
            except OSError:  # gone, or another user's
                self.environ[pid] = []
        return mark in self.environ[pid]


_last: _Look | None = None


def _look(after: float | None) -> _Look:
    """The last look if it began after ``after``, else a new one (None: always new)."""
    global _last
    if _last is None or after is None or _last.began < after:
        began = time.monotonic()
        _last = _Look(began, _all(), {})
    return _last


def new_mark() -> str:
    return secrets.token_hex(16)


def members(
    mark: str, pgid: int | None = None, since: int = 0, after: float | None = None
) -> dict[int, Proc]:
    """The run's processes: those carrying its mark, those in its process group, and
    every descendant of those. The daemon itself is never one. ``since`` (the main
    process's start) skips reading the environment of every older process: most of the
    cost of a look."""
    look = _look(after)
    procs = look.procs
    marked = f"{MARK_VAR}={mark}".encode()
    own = os.getpid()
    # Cheap to rule out, and most of a burst of runs: another run's own process group.
    others = _mains - {pgid}
    found = {
        pid
        for pid, proc in procs.items()
        if pid != own
        and (
            (pgid is not None and proc.pgid == pgid)
            or (proc.start >= since and proc.pgid not in others and look.marked(pid, marked))
        )
    }
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child != own:
                found.add(child)
                todo.append(child)
    return {pid: procs[pid] for pid in found}


def _alive(procs: dict[int, Proc]) -> dict[int, Proc]:
    return {pid: p for pid, p in procs.items() if p.state not in ("Z", "X")}


def _reap(pids: Iterable[int]) -> None:
    """Reap the ones the daemon has adopted (as a subreaper, or PID 1): nobody else will.
    Never the run's main process: asyncio waits for that one itself."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@dataclass
class Ended:
    """What ``end_tree`` found and stopped."""

    pids: list[int]


async def end_tree(
    mark: str,
    pgid: int | None,
    *,
    grace: float,
    main: int | None = None,
    main_exited: asyncio.Future[None] | None = None,
    since: int = 0,
    exited_at: float | None = None,
) -> Ended:
    """SIGTERM every process of the run, SIGKILL what is left after ``grace``, and reap
    the adopted ones. Processes forked while it runs are found on the next look.
    ``exited_at``: when the main process was seen to exit (a look begun later will do)."""
    import asyncio

    ended: set[int] = set()
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)):
        deadline = time.monotonic() + wait
        sent: set[int] = set()
        while True:
            found = members(mark, pgid, since, exited_at)
            exited_at = None  # from now on, only a fresh look will do
            _reap(pid for pid, p in found.items() if p.state == "Z" and pid != main)
            alive = _alive(found)
            last = sig == signal.SIGKILL and time.monotonic() >= deadline
            if not alive and (found.keys() <= {main} or last):
                return await _finish(ended, main_exited)
            # Zombies left are another parent's to reap (init's, without a subreaper):
            # wait for that too, within the deadline, so nothing of the run is left.
            for pid in alive.keys() - sent:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
                sent.add(pid)
                ended.add(pid)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL)
    return await _finish(ended, main_exited)


async def _finish(ended: set[int], main_exited: asyncio.Future[None] | None) -> Ended:
    import asyncio

    if main_exited is not None:
        await asyncio.wait([main_exited], timeout=KILL_WAIT)
    reap_adopted()
    return Ended(sorted(ended))


# Main processes of runs (asyncio reaps those itself) and starts in flight (whose pid is
# not known yet): ``reap_adopted`` must leave both alone.
_mains: set[int] = set()
_starting = 0


@contextlib.contextmanager
def starting() -> Iterator[None]:
    global _starting
    _starting += 1
    try:
        yield
    finally:
        _starting -= 1


@contextlib.contextmanager
def main_process(pid: int) -> Iterator[None]:
    _mains.add(pid)
    try:
        yield
    finally:
        _mains.discard(pid)


def reap_adopted() -> None:
    """Reap orphans that ended on their own after the daemon adopted them (a subreaper
    inherits them): found by no run any more, they would stay zombies for the daemon's
    lifetime. Only processes of another session (every run has its own), so the daemon's
    own helpers (parse workers) are never taken from their owners."""
    if _starting:
        return
    try:  # any child ended and not reaped? (WNOWAIT: look, but leave it)
        if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return
    except ChildProcessError:
        return
    own = os.getpid()
    session = os.getsid(0)
    for pid, proc in _all().items():
        if proc.ppid == own and proc.state == "Z" and proc.sid != session and pid not in _mains:
            _reap([pid])


def owner() -> list[int]:
    """This process as a record names it: pid and start time."""
    own = stat(os.getpid())
    return [os.getpid(), own.start if own is not None else 0]


def alive(pid_and_start: object) -> bool:
    """Is the process a record names (``owner()``) still running?"""
    if not isinstance(pid_and_start, list) or len(pid_and_start) != 2:
        return False
    pid, start = pid_and_start
    proc = stat(pid) if isinstance(pid, int) else None
    return proc is not None and proc.start == start and proc.state not in ("Z", "X")


class RunFiles:
    """While a command run is in progress, a small file in a private directory next to the
    store names it (run id, job, main pid and that pid's start time, so a reused pid is
    never mistaken for it). It outlives a ``kill -9`` of the daemon, unlike anything in
    memory, and needs no schema change; the next daemon reads it (``leftovers``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, record: dict[str, object]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{record['run_id']}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(path)

    def remove(self, run_id: str) -> None:
        (self.directory / f"{run_id}.json").unlink(missing_ok=True)

    def read(self) -> list[dict[str, Any]]:
        """Every record left; unreadable ones are dropped (half-written)."""
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                if isinstance(record, dict) and isinstance(record.get("run_id"), str):
                    found.append(record)
                    continue
            except (OSError, ValueError):
                pass
            path.unlink(missing_ok=True)
        for stale in self.directory.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        return found
