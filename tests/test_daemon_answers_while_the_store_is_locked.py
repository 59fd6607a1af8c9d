"""Regression test for issue 16 item 7: another connection holding the SQLite write lock
blocked the daemon's event loop for the busy timeout (5 s) in every scheduler pass, and
``/healthz`` said ok. Now store I/O is off the loop: ``/healthz`` answers all along, with a
503 that says the store is locked, and turns ok again once the lock is released."""

from __future__ import annotations

import sqlite3
import threading

import httpx

from tests.api_helpers import StartApi
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for

JOBS = """\
jobs:
  tick:
    schedule: {interval: 1s}
    run: {type: command, command: ["true"]}
    misfire_grace: 1m
"""

# Below the 5 s busy timeout: a loop held by a blocked store write misses it.
ANSWER_TIMEOUT = 2.5


def test_healthz_answers_and_says_the_store_is_locked(
    start_api: StartApi, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(30)
        conn.execute("COMMIT")
        conn.close()

    with httpx.Client(base_url=daemon.base_url, timeout=ANSWER_TIMEOUT) as api:
        wait_for(lambda: api.get("/healthz").status_code == 200, "a healthy daemon")
        holder = threading.Thread(target=hold_lock)
        holder.start()
        try:
            assert locked.wait(10)

            def says_locked() -> bool:
                answer = api.get("/healthz")  # raises ReadTimeout if the loop is held
                return answer.status_code == 503 and "locked" in answer.json()["detail"]

            wait_for(says_locked, "/healthz to say the store is locked", timeout=15)
            assert daemon.proc.poll() is None
        finally:
            release.set()
            holder.join()
        wait_for(lambda: api.get("/healthz").status_code == 200, "healthy again", timeout=15)
