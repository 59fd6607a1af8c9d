"""Issue 10's targets for ``celery`` runs, with a real daemon and two real Celery worker
processes (``--pool solo``) on Redis (broker and result backend):

1. Dispatch lag of 1,000 celery jobs due in the same second: from the due time to the
   moment Celery's client has published the task (``after_task_publish`` in the daemon,
   see ``celery_stamps.py``): p50, p99, max. Target: p99 < 200 ms.
2. The daemon's resident size, CPU use and thread count while all 1,000 runs are pending
   (the tasks hold the workers until a release time ``--hold`` seconds after the due
   time), against the same daemon idle before the due time. Target: no thread per pending
   result.
3. Time until all 1,000 outcomes are in the run history: from the due time, and from the
   release.

Targets are reported as PASS/MISS and never fail the run. ``--db`` runs the daemon on a
PostgreSQL store instead of a SQLite file: it then leads under a lease and every run start
is a fenced claim (its tables are dropped first: give it a database of its own).

    python bench/bench_celery.py [--jobs 1000 --lead 15 --hold 10 --db postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

from bench_runs import due_second, iso, machine, ms, percentile, verdict, wait_for  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from tests.celery_helpers import celery_worker  # noqa: E402

DISPATCH_P99_TARGET = 0.2
JOBS_PER_FILE = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")


def write_jobs(root: Path, n: int, due: float, release: float, queue: str, broker: str,
               backend: str) -> None:  # fmt: skip
    root.mkdir(parents=True)
    run = (
        f"{{type: celery, task: sd.until, kwargs: {{release: {release}}}, queue: {queue}, "
        f"broker: '{broker}', backend: '{backend}'}}"
    )
    for start in range(0, n, JOBS_PER_FILE):
        body = "".join(
            f"  due-{i:05d}:\n    schedule: {{at: '{iso(due)}'}}\n    run: {run}\n"
            "    misfire_grace: 1m\n"
            for i in range(start, min(n, start + JOBS_PER_FILE))
        )
        (root / f"due-{start // JOBS_PER_FILE:03d}.yaml").write_text("jobs:\n" + body)


def rows_of(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` in the store, or none while its tables do not exist yet."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def drop_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def proc_sample(pid: int) -> tuple[int, int, float]:
    """(VmRSS kB, threads, CPU seconds so far) of a process."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return int(status["VmRSS"].split()[0]), int(status["Threads"]), cpu


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


@dataclass
class Sample:
    """The daemon, and its child processes (the Celery sender; multiprocessing's resource
    tracker) summed: the sends' CPU is spent there."""

    rss: int = 0  # kB
    threads: int = 0
    cpu: float = 0.0  # seconds so far
    child_rss: int = 0
    child_cpu: float = 0.0
    children: int = 0

    @classmethod
    def of(cls, pid: int) -> Sample:
        sample = cls(*proc_sample(pid))
        for child in children_of(pid):
            with contextlib.suppress(OSError):
                rss, _, cpu = proc_sample(child)
                sample.child_rss, sample.child_cpu = sample.child_rss + rss, sample.child_cpu + cpu
                sample.children += 1
        return sample


@dataclass
class Window:
    start: Sample
    end: Sample
    rss: int  # the most seen, kB
    child_rss: int
    threads: int
    seconds: float

    def cpu_share(self) -> float:
        return (self.end.cpu - self.start.cpu) / self.seconds

    def child_cpu_share(self) -> float:
        return (self.end.child_cpu - self.start.child_cpu) / self.seconds


def window(pid: int, start: float, end: float) -> Window:
    """What the daemon (and its children) used between two times."""
    time.sleep(max(0.0, start - time.time()))
    first = Sample.of(pid)
    t0 = time.time()
    rss, child_rss, threads = first.rss, first.child_rss, first.threads
    while time.time() < end:
        time.sleep(0.2)
        now = Sample.of(pid)
        rss, child_rss = max(rss, now.rss), max(child_rss, now.child_rss)
        threads = max(threads, now.threads)
    return Window(first, Sample.of(pid), rss, child_rss, threads, time.time() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--lead", type=float, default=15.0, help="seconds until the due time")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds tasks stay pending")
    parser.add_argument("--db", help="a PostgreSQL URL (default: a SQLite file)")
    opts = parser.parse_args()
    n = opts.jobs
    print("\n".join(machine()))
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp_name:
        tmp = Path(tmp_name)
        with (
            celery_worker("redis", tmp, ["bench"], concurrency=1, pool="solo") as one,
            celery_worker("redis", tmp, ["bench"], 1, "solo", token=one.token),
        ):
            due = due_second(opts.lead)
            release = due + opts.hold
            jobs_dir = tmp / "jobs.d"
            url = opts.db or f"sqlite:///{tmp / 'store.db'}"
            if opts.db:
                drop_tables(opts.db)
            write_jobs(jobs_dir, n, due, release, one.queues["bench"], one.broker, one.backend)
            stamps_file = tmp / "stamps.json"
            env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
            env |= {"XDG_RUNTIME_DIR": str(tmp), "BENCH_STAMPS": str(stamps_file)}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), str(ROOT)]))
            code = "import celery_stamps; from scheduler.cli import main; main()"
            argv = [sys.executable, "-c", code, "--jobs-dir", str(jobs_dir)]
            argv += ["--db", url, "run"]
            with (tmp / "daemon.log").open("wb") as log:
                daemon = subprocess.Popen(argv, stdout=log, stderr=log, env=env, cwd=tmp)
            try:
                wait_for(
                    lambda: "scheduler running" in (tmp / "daemon.log").read_text() or None,
                    "the daemon to start",
                    timeout=opts.lead,
                )
                idle = window(daemon.pid, time.time(), due - 1)
                pending = window(daemon.pid, due + 2, release - 0.5)
                load = os.getloadavg()
                done_sql = "SELECT count(*) FROM scheduler_runs WHERE outcome != 'running'"
                wait_for(
                    lambda: (rows_of(url, done_sql) or [(0,)])[0][0] >= n or None,
                    "all outcomes",
                    120,
                )
                all_in = time.time()
            finally:
                daemon.terminate()
                daemon.wait(60)
            sql = "SELECT run_id, scheduled_time, outcome, started_at FROM scheduler_runs"
            rows = rows_of(url, sql)
            errors = Counter(
                str(error).splitlines()[0]
                for (error,) in rows_of(url, "SELECT error FROM scheduler_runs")
                if error
            )
            stamps = dict(json.loads(stamps_file.read_text()))
    scheduled = {run_id: at for run_id, at, _, _ in rows}
    starts = [started - at for _, at, _, started in rows]
    lags = [stamps[run_id] - scheduled[run_id] for run_id in scheduled if run_id in stamps]
    outcomes = Counter(outcome for _, _, outcome, _ in rows)
    store = "PostgreSQL (lease, fenced claims)" if opts.db else "SQLite"
    print(f"\n{n} celery jobs due at once, 2 solo workers on Redis (broker and backend), {store}")
    print(f"  runs: {len(rows)} ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))})")
    for error, count in errors.most_common(3):  # why runs failed, if any did
        print(f"    {count} x {error}")
    print(
        f"  dispatch lag (due -> published)  p50 {ms(percentile(lags, 50))}   "
        f"p99 {ms(percentile(lags, 99))}   max {ms(max(lags))}   ({len(lags)} sent)"
    )
    print(
        f"  start lag (due -> run started)   p50 {ms(percentile(starts, 50))}   "
        f"p99 {ms(percentile(starts, 99))}   max {ms(max(starts))}"
    )
    p99 = percentile(lags, 99)
    target = f"{DISPATCH_P99_TARGET * 1000:.0f} ms"
    print(f"  target p99 < {target}: {verdict(p99 < DISPATCH_P99_TARGET)}")
    print(
        f"  CPU from 1 s before to 2 s after the due time: daemon "
        f"{pending.start.cpu - idle.end.cpu:.2f} s, its sender "
        f"{pending.start.child_cpu - idle.end.child_cpu:.2f} s "
        f"(load average then {load[0]:.2f}, {os.cpu_count()} CPUs)"
    )
    for name, seen in (("idle before due", idle), ("1,000 pending", pending)):
        print(
            f"  daemon {name:16} RSS {seen.rss / 1024:6.1f} MB  threads {seen.threads:3}  "
            f"CPU {seen.cpu_share():6.1%}   + {seen.end.children} child processes "
            f"RSS {seen.child_rss / 1024:6.1f} MB  CPU {seen.child_cpu_share():6.1%}"
        )
    print(f"  no thread per pending result: {verdict(pending.threads < idle.threads + 20)}")
    print(
        f"  all outcomes in history: {all_in - due:6.2f} s after the due time, "
        f"{all_in - release:6.2f} s after the release"
    )


if __name__ == "__main__":
    main()
