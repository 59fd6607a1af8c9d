"""What every child process of the daemon needs: to die with its parent, and to start
without re-running the host program's ``__main__``. Callers: ``parsepool`` (the parse
children), ``handlers.celery`` (the Celery sender). Imports nothing of the scheduler, so a
child starts light.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None) -> None:
    """Have the kernel kill this process when its parent dies (Linux), and exit now if the
    parent is already gone: an orphaned worker would wait for work forever."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


_MAIN = threading.Lock()


@contextmanager
def host_main_left_behind() -> Iterator[None]:
    """Children started inside do not re-import the host program's ``__main__``.

    A "forkserver" or "spawn" child runs the parent's main script (or ``-m`` module) again
    as ``__mp_main__`` before it takes work (``multiprocessing.spawn.get_preparation_data``
    names it by ``__main__.__spec__`` or ``__file__``). A child of ours needs nothing of it,
    and an embedding app's script without an ``if __name__ == "__main__"`` guard would
    start its whole app in each child, and ``python -`` has no file to run: the children
    died, and with them every parse or send. Hidden while a child starts; the lock keeps
    two pools from restoring each other's half."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _MAIN:
        saved: dict[str, Any] = {
            name: vars(main)[name] for name in ("__file__", "__spec__") if name in vars(main)
        }
        vars(main).pop("__file__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            vars(main).pop("__spec__", None)
            vars(main).update(saved)
