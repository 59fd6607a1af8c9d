"""One writer per store: the lock the daemon holds for its lifetime, and the local socket
through which the command line asks a running daemon to act instead of racing it.

The lock is an advisory ``flock`` on a file named after the store, in a private runtime
dir (``$XDG_RUNTIME_DIR``, else ``scheduler-UID`` in the temp dir), so it guards one host;
the socket sits beside it. The dir must be this user's and closed to others, and files in it
are opened without following symlinks: another local user can neither hold the lock, nor
plant a symlink, nor serve a fake socket. Messages are one JSON object per line.
Callers: ``daemon`` (serves), ``cli`` (asks).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import socket
import stat
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import make_url

from scheduler.errors import SchedulerError

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class StoreBusy(SchedulerError):
    """Another writer holds the store and cannot be asked to act."""


class UnsafeRuntimeDir(SchedulerError):
    """The runtime dir (lock, socket) could be reached by another user."""


@dataclass(frozen=True)
class RuntimePaths:
    lock: Path
    socket: Path


def runtime_paths(db_url: str) -> RuntimePaths:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        key = f"sqlite:{Path(str(url.database)).resolve()}"
    else:
        key = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    base = runtime_dir()
    return RuntimePaths(base / f"scheduler-{digest}.lock", base / f"scheduler-{digest}.sock")


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR``, else ``<temp dir>/scheduler-<uid>`` (created 0700); either
    way checked to be a real directory of this user that nobody else can enter."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:  # the user's choice: a symlink to their own private dir is fine
        return _checked(Path(xdg).resolve(), "XDG_RUNTIME_DIR")
    path = Path(tempfile.gettempdir()) / f"scheduler-{os.geteuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UnsafeRuntimeDir(
            f"cannot create the runtime dir {path}: {exc.strerror}: set XDG_RUNTIME_DIR to a "
            "private directory (mode 0700) of this user"
        ) from None
    return _checked(path, "the runtime dir")


def _checked(path: Path, what: str) -> Path:
    try:
        info = path.lstat()
    except OSError as exc:
        raise UnsafeRuntimeDir(
            f"{what} {path}: {exc.strerror}: create it (mode 0700) or point XDG_RUNTIME_DIR "
            "at a private directory of this user"
        ) from None
    fix = "remove it, or set XDG_RUNTIME_DIR to a private directory (mode 0700) of this user"
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRuntimeDir(f"{what} {path} is not a directory (a symlink?): {fix}")
    if info.st_uid != os.geteuid():
        raise UnsafeRuntimeDir(
            f"{what} {path} belongs to uid {info.st_uid}, not to this user "
            f"(uid {os.geteuid()}), who could then hold its lock or fake its socket: {fix}"
        )
    if info.st_mode & 0o077:
        raise UnsafeRuntimeDir(
            f"{what} {path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"`chmod 700 {path}`, or {fix}"
        )
    return path


def _open_private(path: Path) -> int:
    """Open (or create, 0600) a file in the runtime dir, never through a symlink."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UnsafeRuntimeDir(
            f"cannot open {path}: {exc.strerror} (a symlink is never followed there): remove "
            "it and start again"
        ) from None


class WriterLock:
    """An exclusive advisory lock on the store, released when the process ends (even by
    ``kill -9``: the kernel drops ``flock`` locks with the file descriptor)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, *, blocking: bool = False) -> bool:
        handle = os.fdopen(_open_private(self.path), "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return "unknown"
        with os.fdopen(fd) as handle:
            return handle.read(64).strip() or "unknown"

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Answer one JSON request per line on a Unix socket (mode 0600: this user only)."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            request = json.loads(line) if line else {}
            reply = await handler(request)
        except Exception as exc:  # a bad request must not take the daemon down
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "exit_code": 1}
        writer.write(json.dumps(reply, default=str).encode() + b"\n")
        try:
            await writer.drain()
        finally:
            writer.close()

    path.unlink(missing_ok=True)
    old_mask = os.umask(0o177)  # created 0600: no moment where others could connect
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path))
    finally:
        os.umask(old_mask)
    return server


def ask(path: Path, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any] | None:
    """Send one request to the daemon; ``None`` when no daemon listens there."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid():
        raise UnsafeRuntimeDir(
            f"{path} is not a socket of this user (uid {info.st_uid}): it cannot be the daemon's;"
            " remove it and start the daemon again"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return None  # a stale socket left by a killed daemon
        conn.sendall(json.dumps(request).encode() + b"\n")
        chunks: list[bytes] = []
        while not chunks or not chunks[-1].endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise StoreBusy("the daemon closed the connection without answering: see its log")
    reply: dict[str, Any] = json.loads(data)
    return reply
