"""Replicas on one PostgreSQL (or MariaDB/MySQL) store (issue 8), measured with real daemons:

1. Fail-over time: kill -9 the leader N times (a new replica joins each time) and freeze it
   with SIGSTOP M times (thawed after the take-over); from the signal to the moment the
   lease row names a new holder with a higher epoch (polled every 20 ms): p50 and max.
2. The lease's cost when idle: transactions per second in ``pg_stat_database`` over a
   window, with 1 replica (a leader) and with 3 (a leader and two standbys), no jobs.
3. Fire lag of 1,000 ``python`` no-op jobs due in the same second: ``started_at -
   scheduled_time`` from the history, p50 / p99, with 1 replica and with 3 (every start is
   then a fenced claim). Target: 3 replicas' p99 <= 1.2 x one's.

Each scenario gets its own database (``replicas_bench_*``, dropped after). On MariaDB
(``SCHEDULER_BENCH_URL=mysql+pymysql://root@127.0.0.1/x``) the idle cost is not measured:
the server counts transactions for all its databases together.

    python bench/bench_replicas.py [--lease 2 --kills 20 --freezes 10 --jobs 1000]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, make_url, text

from scheduler.leadership import db_now
from scheduler.store import make_engine

T = TypeVar("T")
BENCH = Path(__file__).resolve().parent
BASE = os.environ.get(
    "SCHEDULER_BENCH_URL",
    os.environ.get("SCHEDULER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/x"),
)
MYSQL = make_url(BASE).get_backend_name() in ("mysql", "mariadb")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 120) -> T:
    end = time.monotonic() + timeout
    while (value := probe()) is None:
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@contextmanager
def database(name: str) -> Iterator[str]:
    if MYSQL:
        with mysql_database(name) as url:
            yield url
        return
    admin = create_engine(make_url(BASE).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(BASE).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def mysql_database(name: str) -> Iterator[str]:
    admin = create_engine(make_url(BASE).set(database=""))
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    try:
        yield make_url(BASE).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


class Group:
    def __init__(self, url: str, jobs_dir: Path, lease: float) -> None:
        self.url, self.jobs_dir, self.lease = url, jobs_dir, lease
        self.procs: list[subprocess.Popen[bytes]] = []
        self.engine = make_engine(url)  # a MySQL session in UTC, as db_now needs

    def start(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="br-")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "scheduler", "--jobs-dir", str(self.jobs_dir)]
        argv += ["--db", self.url, "run", "--lease", f"{self.lease:g}s", "--log-level", "WARNING"]
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def lease_row(self) -> Any:
        with self.engine.connect() as conn:
            try:
                return conn.execute(
                    text(
                        f"SELECT holder, epoch, expires_at - {db_now(self.engine)} AS remaining "
                        "FROM scheduler_lease"
                    )
                ).first()
            except Exception:
                return None

    def leader(self) -> tuple[subprocess.Popen[bytes], int]:
        def probe() -> tuple[subprocess.Popen[bytes], int] | None:
            row = self.lease_row()
            if row is None or row.remaining <= 0:
                return None
            pid = int(row.holder.split(":")[1])
            found = [p for p in self.procs if p.pid == pid and p.poll() is None]
            return (found[0], int(row.epoch)) if found else None

        return wait_for(probe, "a leader")

    def new_epoch(self, old: int) -> float:
        def probe() -> float | None:
            row = self.lease_row()
            ok = row is not None and row.epoch > old and row.remaining > 0
            return time.monotonic() if ok else None

        return wait_for(probe, "a take-over")

    def sql(self, statement: str) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(statement)))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.engine.dispose()


@contextmanager
def group(name: str, lease: float, jobs: str = "") -> Iterator[Group]:
    with database(name) as url:
        jobs_dir = Path(tempfile.mkdtemp(prefix="bj-"))
        if jobs:
            (jobs_dir / "jobs.yaml").write_text(jobs)
        g = Group(url, jobs_dir, lease)
        try:
            yield g
        finally:
            g.stop()


def fail_over(lease: float, kills: int, freezes: int) -> tuple[list[float], list[float]]:
    killed, frozen = [], []
    with group("replicas_bench_failover", lease) as g:
        for _ in range(3):
            g.start()
        for _ in range(kills):
            proc, epoch = g.leader()
            t0 = time.monotonic()
            proc.kill()
            killed.append(g.new_epoch(epoch) - t0)
            proc.wait()
            g.start()
        for _ in range(freezes):
            proc, epoch = g.leader()
            t0 = time.monotonic()
            proc.send_signal(signal.SIGSTOP)
            frozen.append(g.new_epoch(epoch) - t0)
            proc.send_signal(signal.SIGCONT)
            time.sleep(lease / 2)
    return killed, frozen


def idle_cost(lease: float, replicas: int, window: float) -> float:
    with group(f"replicas_bench_idle_{replicas}", lease) as g:
        for _ in range(replicas):
            g.start()
        g.leader()
        time.sleep(lease)  # past start-up

        def commits() -> int:
            (row,) = g.sql(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
            return int(row[0])

        before = commits()
        time.sleep(window)
        after = commits()
    return (after - before - 2) / window  # less this probe's own two transactions


def fire_lag(lease: float, replicas: int, n: int, lead: float) -> list[float]:
    due = datetime.fromtimestamp(int(time.time() + lead), UTC).isoformat()
    jobs = "jobs:\n" + "".join(
        f"  due-{i:05d}:\n    schedule: {{at: '{due}'}}\n"
        "    run: {type: python, function: 'noop:anoop'}\n"
        for i in range(n)
    )
    with group(f"replicas_bench_lag_{replicas}", lease, jobs) as g:
        for _ in range(replicas):
            g.start()

        g.leader()  # the schema exists from here on

        def done() -> list[float] | None:
            rows = g.sql(
                "SELECT started_at - scheduled_time FROM scheduler_runs WHERE outcome = 'success'"
            )
            return [float(r[0]) for r in rows] if len(rows) >= n else None

        return wait_for(done, f"{n} runs", timeout=lead + 120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--freezes", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--lead", type=float, default=25.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--parts", default="failover,idle,lag", help="which measures to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"machine: {platform.node()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"lease {args.lease:g} s\n")

    if "failover" in parts:
        failover(args)
    if "idle" in parts and not MYSQL:
        idle(args)
    if "lag" in parts:
        lag(args)


def failover(args: argparse.Namespace) -> None:
    killed, frozen = fail_over(args.lease, args.kills, args.freezes)
    print(
        f"1. fail-over after kill -9 ({len(killed)}): p50 {pct(killed, 50):.2f} s, "
        f"max {max(killed):.2f} s (lease + 2 s = {args.lease + 2:g} s)"
    )
    print(
        f"   fail-over after SIGSTOP ({len(frozen)}): p50 {pct(frozen, 50):.2f} s, "
        f"max {max(frozen):.2f} s"
    )


def idle(args: argparse.Namespace) -> None:
    one = idle_cost(args.lease, 1, args.window)
    three = idle_cost(args.lease, 3, args.window)
    print(
        f"2. idle transactions/s: 1 replica (leader) {one:.2f}; 3 replicas {three:.2f} "
        f"(each standby ~{(three - one) / 2:.2f})"
    )


def lag(args: argparse.Namespace) -> None:
    lag1 = fire_lag(args.lease, 1, args.jobs, args.lead)
    lag3 = fire_lag(args.lease, 3, args.jobs, args.lead)
    ratio = pct(lag3, 99) / pct(lag1, 99)
    print(
        f"3. fire lag, {args.jobs} jobs due at once: 1 replica p50 {pct(lag1, 50) * 1000:.0f} "
        f"ms / p99 {pct(lag1, 99) * 1000:.0f} ms; 3 replicas p50 {pct(lag3, 50) * 1000:.0f} ms "
        f"/ p99 {pct(lag3, 99) * 1000:.0f} ms ({ratio:.2f}x; target <= 1.2x)"
    )


if __name__ == "__main__":
    main()
