"""A `kill -9` in the middle of an apply leaves the store before or after it, never
between, and the next reconcile converges. Real process, real SQLite file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from jobgen import write_jobs

JOBS, FILES = 4000, 20


def reconcile_proc(jobs_dir: Path, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler",
            "--jobs-dir",
            str(jobs_dir),
            "--db",
            f"sqlite:///{db}",
            "reconcile",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "XDG_RUNTIME_DIR": str(db.parent)},
    )


def tables_exist(db: Path) -> bool:
    try:
        with sqlite3.connect(db, timeout=0) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return "scheduler_files" in names
    except sqlite3.OperationalError:
        return False


def writer_active(db: Path) -> bool:
    """True while another connection holds the write lock (an open write transaction)."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def kill_mid_transaction(jobs_dir: Path, db: Path) -> None:
    proc = reconcile_proc(jobs_dir, db)
    deadline = time.monotonic() + 30
    while not tables_exist(db):
        assert proc.poll() is None and time.monotonic() < deadline, "reconcile never started"
        time.sleep(0.005)
    while not writer_active(db):
        assert proc.poll() is None, "the apply finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    assert proc.stderr is not None
    proc.stderr.close()


def counts(db: Path) -> tuple[int, int, set[str]]:
    with sqlite3.connect(db) as conn:
        aps = conn.execute("SELECT count(*) FROM apscheduler_jobs").fetchone()[0]
        ours = conn.execute("SELECT count(*) FROM scheduler_jobs").fetchone()[0]
        descriptions = {
            row[0].split('"description":')[1].split(",")[0]
            for row in conn.execute("SELECT spec FROM scheduler_jobs")
        }
    return aps, ours, descriptions


def finish(jobs_dir: Path, db: Path) -> str:
    proc = reconcile_proc(jobs_dir, db)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return err.decode()


@pytest.mark.timeout(120)
def test_kill_during_apply_leaves_the_store_before_or_after(tmp_path: Path) -> None:
    jobs_dir, db = tmp_path / "jobs.d", tmp_path / "store.db"
    write_jobs(jobs_dir, JOBS, FILES)

    kill_mid_transaction(jobs_dir, db)  # the cold apply: nothing may be left behind
    assert counts(db)[:2] == (0, 0)
    finish(jobs_dir, db)
    aps, ours, descriptions = counts(db)
    assert (aps, ours) == (JOBS, JOBS)
    assert all(d.endswith('variant 0"') for d in descriptions)

    write_jobs(jobs_dir, JOBS, FILES, variant=1)  # every job changes
    kill_mid_transaction(jobs_dir, db)
    aps, ours, descriptions = counts(db)
    assert (aps, ours) == (JOBS, JOBS)
    assert all(d.endswith('variant 0"') for d in descriptions)  # all old, none new

    finish(jobs_dir, db)  # the next run converges
    aps, ours, descriptions = counts(db)
    assert (aps, ours) == (JOBS, JOBS)
    assert all(d.endswith('variant 1"') for d in descriptions)
