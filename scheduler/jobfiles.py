"""Finding and reading job files: which entries of a jobs dir are job files, and their
bytes or the problem that keeps them from being read (never skipped: that would remove
their jobs). Callers: ``loader``, ``reconciler``. Never imports apscheduler.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from scheduler.errors import SpecProblem
from scheduler.yamldoc import LIMITS, MiB

JOB_FILE_SUFFIXES = (".yaml", ".yml")


def job_files(root: Path) -> list[Path]:
    """Job files under ``root``, sorted: every ``*.yaml``/``*.yml`` entry, including those
    that cannot be read (a dangling symlink, a directory named ``x.yaml``), which
    ``read_job_file`` then reports: skipping them would remove their jobs. Hidden entries
    (editor temp files, ConfigMap ``..data`` internals) are ignored; symlinks to files are
    followed."""
    return [Path(path) for path in job_file_names(root)]


def job_file_names(root: Path) -> list[str]:
    """``job_files`` as the paths' text, without building a Path for each (the no-op
    check, ``unchanged``, needs only their text and bytes)."""
    text = str(root)
    if root.is_file():
        return [text]
    prefix = "" if text == "." else text if text.endswith(os.sep) else text + os.sep
    found: list[tuple[tuple[str, ...], str]] = []
    _scan(prefix, (), found)
    # Sorted by their parts below root: Path order, without Path.__lt__ (every path shares
    # root's parts), from os.scandir's names: rglob built and compared a Path per entry
    # (a third of a no-op of 10,000 files), and the no-op check needs no Path at all.
    found.sort()
    return [path for _, path in found]


def _scan(prefix: str, parts: tuple[str, ...], found: list[tuple[tuple[str, ...], str]]) -> None:
    """Every entry under directory ``prefix`` (``parts`` below root) as ``Path.rglob("*")``
    yields it: directory symlinks not followed, an unreadable directory skipped, hidden
    entries and all below them left out."""
    try:
        with os.scandir(prefix or ".") as entries:
            listed = list(entries)
    except PermissionError:
        return
    for item in listed:
        name = item.name
        if name.startswith("."):
            continue
        path = prefix + name
        here = (*parts, name)
        if name.endswith(JOB_FILE_SUFFIXES):
            found.append((here, path))
        try:
            is_dir = item.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            _scan(path + os.sep, here, found)


FIRST_READ = 64 * 1024


def read_job_file(path: Path | str) -> bytes | SpecProblem:
    """A job file's bytes, or the problem that keeps it from being read (never skipped)."""
    try:
        # The file descriptor itself, not a file object: a no-op reconcile reads every file,
        # and the buffered reader per file was almost half of reading 10,000 of them.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Most job files are small: a first read that comes back short is all of it (a
            # regular file reads short only at its end), with no stat before it (a third of
            # reading 10,000 one-job files). A larger file: its size, then the rest, up to
            # the limit (asking for the whole limit at once cost a 16 MiB buffer per read).
            raw = os.read(fd, FIRST_READ)
            if len(raw) == FIRST_READ:
                size = os.fstat(fd).st_size
                raw += os.read(fd, max(0, min(size, LIMITS.file_bytes) + 1 - len(raw)))
                # A file that grew since the stat is read on, up to the limit.
                while len(raw) != size and len(raw) <= LIMITS.file_bytes:
                    more = os.read(fd, LIMITS.file_bytes + 1 - len(raw))
                    if not more:
                        break
                    raw += more
        finally:
            os.close(fd)
    except OSError as exc:
        return SpecProblem(str(path), 1, 1, _unreadable(Path(path), exc))
    if len(raw) > LIMITS.file_bytes:
        return SpecProblem(str(path), 1, 1, too_big(os.stat(path).st_size))
    return raw


def _unreadable(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: fix or remove the link (its jobs are kept until then)"
    if path.is_symlink() and isinstance(exc, FileNotFoundError):
        target = os.readlink(path)
        return (
            f"symlink to {target} points at nothing (a broken mount?): fix or remove the link "
            "(its jobs are kept until then)"
        )
    if isinstance(exc, IsADirectoryError):
        return "a directory named like a job file: rename it (job files are files)"
    if isinstance(exc, PermissionError):
        return "cannot read job file: permission denied: let the scheduler's user read it"
    return f"cannot read job file: {exc.strerror or exc}: fix it or remove it"


def too_big(size: int) -> str:
    return (
        f"job file of {size} bytes is larger than the limit of {LIMITS.file_bytes} "
        f"({LIMITS.file_bytes // MiB} MiB): split it into several files"
    )
