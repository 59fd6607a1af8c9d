"""The firing pass: APScheduler's asyncio scheduler with each pass (read the due jobs, hand
them to the runner, write their next run times) in a thread of its own, off the event loop,
retried while the store is away. Caller: ``daemon`` (which wires it to the runner).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("scheduler.daemon")

STORE_RETRY_SECONDS = 1.0
SLOW_PASS_SECONDS = 2.0  # a scheduler pass this long waited for a locked store
PASS_STOP_SECONDS = 10.0  # how long a stop waits for the pass in flight


class ResilientScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """APScheduler's asyncio scheduler with each pass (read the due jobs, hand them to the
    runner, write their next run times) in a thread of its own, off the event loop: a locked
    SQLite store held the loop for the busy timeout, 5 s per pass, and with it the API and
    history. A pass that fails (a locked file, a restarting database) is retried instead of
    stopping the wake-ups for good; the runner ignores a due time it already started, so the
    retry cannot run a job twice. ``problem`` says why passes fail or crawl, for /healthz.

    ``may_fire`` is asked first: a leader frozen past its lease (SIGSTOP, a paused VM)
    must not touch the store when it wakes, before it has even noticed."""

    may_fire: Any = None

    def start(self, paused: bool = False) -> None:
        self._pass: asyncio.Future[float | None] | None = None
        self._pass_again = False
        self._stopping = False
        self.problem: str | None = None
        super().start(paused)

    def _off_loop(self, again: Callable[..., None], *args: Any) -> bool:
        """True when this call is not the loop's to act on: the scheduler stops or is not
        started, or the call came from another thread (APScheduler's own calls may), in
        which case ``again(*args)`` is scheduled on the loop."""
        loop = self._eventloop
        if loop is None or self._stopping:
            return True
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            loop.call_soon_threadsafe(again, *args)
        return not on_loop

    def wakeup(self) -> None:
        if self._off_loop(self.wakeup):
            return
        loop = self._eventloop
        self._stop_timer()
        if self._pass is not None:
            self._pass_again = True  # one more pass once this one ends
            return
        done: asyncio.Future[float | None] = loop.create_future()
        self._pass = done

        def run() -> None:
            wait_seconds: float | None = STORE_RETRY_SECONDS
            try:
                wait_seconds = self._one_pass()
            finally:
                with suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(_settle, done, wait_seconds)

        # A daemon thread: a pass stuck on a database that never answers cannot hold up
        # the daemon's exit (a pool's worker thread is joined at exit).
        threading.Thread(target=run, name="scheduler-pass", daemon=True).start()
        done.add_done_callback(self._pass_done)

    def wake_by(self, when: datetime) -> None:
        """Make sure a pass happens by ``when`` (a job just written to the store is due
        then): wakes the scheduler only if its timer would sleep past it. A create that
        woke it every time cost a store pass each, and the due jobs' fire lag with it."""
        if self._off_loop(self.wake_by, when):
            return
        loop = self._eventloop
        timer = self._timeout
        if self._pass is not None or timer is None:
            # A pass in flight may have read the store before the write: one more. No
            # timer: the scheduler sleeps until woken (no jobs, or a retry to come).
            self.wakeup()
            return
        due = loop.time() + (when - datetime.now(UTC)).total_seconds()
        if due < timer.when():
            self.wakeup()

    def _one_pass(self) -> float | None:
        if self.may_fire is not None and not self.may_fire():
            return STORE_RETRY_SECONDS
        started = time.monotonic()
        try:
            wait_seconds: float | None = self._process_jobs()
        except Exception as exc:
            log.warning("store unavailable (%s): retrying in %gs", exc, STORE_RETRY_SECONDS)
            self.problem = f"the scheduler cannot update its jobs in the store: {exc}"
            return STORE_RETRY_SECONDS
        took = time.monotonic() - started
        if took > SLOW_PASS_SECONDS:
            log.warning("a scheduler pass waited %.1fs for the store (locked?)", took)
            self.problem = f"the store is locked or slow: a scheduler pass took {took:.1f}s"
        else:
            self.problem = None
        return wait_seconds

    def _pass_done(self, future: asyncio.Future[float | None]) -> None:
        self._pass = None
        if self._stopping or self._eventloop is None:
            return
        if self._pass_again:
            self._pass_again = False
            self.wakeup()
        elif future.cancelled() or future.exception() is not None:
            self._start_timer(STORE_RETRY_SECONDS)
        else:
            self._start_timer(future.result())

    async def finish_pass(self) -> None:
        """Start no new pass and let the one in flight end (its runs reach the runner)."""
        self._stopping = True
        self._stop_timer()
        if self._pass is not None:
            await asyncio.wait([self._pass], timeout=PASS_STOP_SECONDS)
        await asyncio.sleep(0)  # the due jobs it handed over, queued on the loop


def _settle(future: asyncio.Future[float | None], value: float | None) -> None:
    if not future.done():
        future.set_result(value)
