"""The daemon's heap between bursts. Caller: the daemon (after its start-up reconcile) and
the warm-up (after it has parsed and prepared the runs due soon).

A full collection walks every tracked object. In a daemon that holds 10,000 jobs, their
specs and the imports of Celery, Pydantic and SQLAlchemy, one took 86 ms, and a burst of
1,000 runs due at once allocates enough to trigger one: it held the interpreter lock, and
with it the loop and the sends, in the middle of the burst. What is alive after start-up
or a warm-up stays alive, so it is collected once and then frozen (``gc.freeze``): later
collections walk only what came after. Garbage is still freed as its last reference goes;
only a reference cycle among frozen objects would stay.
"""

from __future__ import annotations

import ctypes
import gc
from contextlib import suppress


def freeze_long_lived() -> None:
    """Collect, then keep what survived out of every later collection's walk."""
    gc.collect()
    gc.freeze()


def release_memory() -> None:
    """``freeze_long_lived``, then hand freed heap back to the OS (glibc only; a no-op
    elsewhere): a first parse of 10,000 jobs leaves ~70 MB of freed heap."""
    freeze_long_lived()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
