"""Issue 12, the run-history and idle-daemon half: a SQLite store holding 1,000,000 runs
(written through the daemon's own ``HistoryWriter``), then

1. the first page of ``scheduler history``, ``history JOB``, ``GET /runs``, ``GET
   /jobs/{id}/runs`` (<= 50 ms server-side) and the status page ``GET /`` (<= 200 ms), with a
   deep page by cursor against the same page by OFFSET (the naive way) in the same run;
2. the built-in cleanup pruning 900,000 expired runs while five jobs fire every second: their
   start lag p99 during it within 2x of idle, and the longest time another writer waited
   for the write lock (<= 200 ms); the naive single ``DELETE`` measured on a copy;
3. the store's growth per 1,000 runs;
4. a daemon idle with 10,000 jobs (``jobgen``), first start: CPU over 60 s (<= 1% of a core)
   and RSS (<= 120 MB), from /proc.

The 1M-row store is built once into ``$BENCH_CACHE`` (default ``~/.cache/scheduler-bench``)
and copied for each run. With ``SCHEDULER_BENCH_PG_URL`` the history queries are also timed
on PostgreSQL (new against the old queries, same rows).

    python bench/bench_history.py [--quick]

``rows(quick)`` returns the table for ``bench/round_two.py``: (measure, target, figure, met).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from jobgen import write_jobs  # noqa: E402

from scheduler import schema  # noqa: E402
from scheduler.history import HistoryWriter, RunRecord  # noqa: E402
from scheduler.store import Store  # noqa: E402

Row = tuple[str, str, str, str]
DAY = 86400.0
JOBS = 1000  # jobs the history belongs to (all on the status page)
SPAN_DAYS = 70.0  # runs spread evenly over this many days: 90% older than 7 days
FREQUENT = 5  # jobs firing every second during the cleanup
TAIL = "line one of the output\nline two: 42 rows written\ndone in 0.8 s\n"
READY_LINE = "scheduler running"


def cache_dir() -> Path:
    root = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "scheduler-bench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def yes(ok: bool) -> str:
    return "yes" if ok else "no"


def wait_for(probe: Callable[[], Any], what: str, timeout: float) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


# -- the store -------------------------------------------------------------------------
def job_ids() -> list[str]:
    return [f"job-{n:04d}" for n in range(JOBS)]


def history_jobs_text() -> str:
    """The jobs the history belongs to: daily, so none fires during the bench."""
    return "jobs:\n" + "".join(
        f'  {job}:\n    schedule: {{interval: 1d}}\n    run: {{type: command, command: ["true"]}}\n'
        for job in job_ids()
    )


def write_history(store: Store, runs: int, now: float) -> None:
    """``runs`` finished runs through the daemon's history writer, in batches: one start and
    one finish per run, as the runner writes them, spread over ``SPAN_DAYS`` up to ``now``."""
    ids = job_ids()
    outcomes = ["success"] * 95 + ["failure"] * 4 + ["timeout"]
    step = SPAN_DAYS * DAY / runs

    async def go() -> None:
        writer = HistoryWriter(store)
        batch = 20_000
        for first in range(0, runs, batch):
            for n in range(first, min(runs, first + batch)):
                started = now - SPAN_DAYS * DAY + n * step
                record = RunRecord(uuid.uuid4().hex, ids[n % JOBS], started, started)
                writer.started(record)
                record.outcome = outcomes[n % 100]
                record.finished_at = started + 0.8
                record.exit_code = 0 if record.outcome == "success" else 1
                record.output_tail = TAIL
                writer.finished(record)
            await writer.flush()

    asyncio.run(go())


def built_store(runs: int) -> tuple[Path, Path, float]:
    """(jobs dir, store file, when its newest run started): built once, then reused."""
    root = cache_dir() / f"history-{runs}-{schema.HEAD}"
    jobs_dir, db, stamp = root / "jobs.d", root / "store.db", root / "built-at"
    if stamp.exists():
        return jobs_dir, db, float(stamp.read_text())
    shutil.rmtree(root, ignore_errors=True)
    jobs_dir.mkdir(parents=True)
    (jobs_dir / "history.yaml").write_text(history_jobs_text())
    subprocess.run(
        [*scheduler_cmd(), "--jobs-dir", str(jobs_dir), "--db", f"sqlite:///{db}", "reconcile"],
        check=True,
        capture_output=True,
    )
    now = time.time()
    store = Store(f"sqlite:///{db}")
    try:
        write_history(store, runs, now)
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stamp.write_text(repr(now))
    return jobs_dir, db, now


def copy_store(db: Path, into: Path) -> Path:
    target = into / "store.db"
    shutil.copyfile(db, target)
    return target


# -- the daemon ------------------------------------------------------------------------
def scheduler_cmd() -> list[str]:
    script = Path(sys.executable).parent / "scheduler"
    return [str(script)] if script.exists() else [sys.executable, "-m", "scheduler"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Daemon:
    """``scheduler run`` on a SQLite file, optionally with its HTTP API."""

    def __init__(self, tmp: Path, jobs_dir: Path, db: Path, http: bool = False) -> None:
        self.log_path = tmp / "daemon.log"
        self.port = free_port() if http else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        env["XDG_RUNTIME_DIR"] = str(tmp)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH), env.get("PYTHONPATH")]))
        argv = [*scheduler_cmd(), "--jobs-dir", str(jobs_dir), "--db", f"sqlite:///{db}", "run"]
        if http:
            argv += ["--http", f"127.0.0.1:{self.port}"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=tmp
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        def probe() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited ({self.proc.returncode}):\n{self.log()}")
            return READY_LINE in self.log()

        wait_for(probe, f"'{READY_LINE}' in the daemon log", timeout)

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def cpu_seconds(self) -> float:
        """User + system time of every thread so far (``/proc/PID/stat`` fields 14, 15)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def daemon(tmp: Path, jobs_dir: Path, db: Path, http: bool = False) -> Iterator[Daemon]:
    d = Daemon(tmp, jobs_dir, db, http)
    try:
        yield d
    finally:
        d.stop()


# -- 1. reading history ------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_history(db: Path, *args: str) -> Callable[[], None]:
    """``scheduler history ...`` in this process (click, query, rendering; no start-up)."""
    from click.testing import CliRunner

    from scheduler.cli import cli

    runner = CliRunner()
    argv = ["--db", f"sqlite:///{db}", "history", *args]

    def call() -> None:
        result = runner.invoke(cli, argv, env={"SCHEDULER_URL": ""})
        assert result.exit_code == 0, result.output

    return call


def offset_page(db: Path, page: int, size: int = 20) -> Callable[[], None]:
    """The naive deep page: ORDER BY ... LIMIT/OFFSET."""
    sql = "SELECT * FROM scheduler_runs ORDER BY started_at DESC, attempt DESC LIMIT ? OFFSET ?"

    def call() -> None:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert len(conn.execute(sql, (size, page * size)).fetchall()) == size

    return call


def cursor_page(client: httpx.Client, page: int) -> tuple[str, Callable[[], None]]:
    """The URL of page ``page`` of ``GET /runs`` found by following ``next`` links."""
    url = "/runs?limit=1000"
    for _ in range(page * 20 // 1000):
        url = client.get(url).links["next"]["url"]
    url = url.replace("limit=1000", "limit=20")

    def call() -> None:
        assert len(client.get(url).json()) == 20

    return url, call


def reading(db: Path, jobs_dir: Path, tmp: Path, quick: bool) -> list[Row]:
    repeat = 5 if quick else 21
    rows: list[Row] = []
    job = job_ids()[7]
    for label, fn in (
        ("`scheduler history` first page (in process)", cli_history(db)),
        ("`scheduler history JOB` first page (in process)", cli_history(db, job)),
    ):
        rows.append((label, "<= 50 ms", ms(t := timed(fn, repeat)), yes(t <= 0.05)))
    with daemon(tmp, jobs_dir, db, http=True) as d:
        d.wait_ready(120)
        with httpx.Client(base_url=d.url, timeout=60) as client:
            for label, path, target in (
                ("GET /runs first page", "/runs", 0.05),
                ("GET /jobs/{id}/runs first page", f"/jobs/{job}/runs", 0.05),
                (f"GET /jobs ({JOBS} jobs with their last run)", "/jobs", 0.2),
                (f"status page GET / ({JOBS} jobs)", "/", 0.2),
            ):
                t = timed(lambda p=path: client.get(p).raise_for_status(), repeat)
                rows.append((label, f"<= {target * 1000:.0f} ms", ms(t), yes(t <= target)))
            page = 5000 if not quick else 500
            _url, deep = cursor_page(client, page)
            t = timed(deep, repeat)
            naive = timed(offset_page(db, page), max(3, repeat // 4))
            rows.append(
                (
                    f"GET /runs page {page} by cursor (OFFSET: {ms(naive)})",
                    "<= 50 ms",
                    f"{ms(t)} ({naive / t:.0f}x)",
                    yes(t <= 0.05),
                )
            )
    return rows


# -- 2. cleanup while jobs fire ---------------------------------------------------------
def frequent_jobs_text(retention_s: int) -> str:
    frequent = "".join(
        f"  tick-{n}:\n    schedule: {{interval: 1s}}\n"
        f"    run: {{type: python, function: 'noop:noop'}}\n"
        for n in range(FREQUENT)
    )
    return (
        f"jobs:\n{frequent}"
        f"  housekeeping:\n    schedule: {{interval: 52w}}\n"
        f"    run: {{type: cleanup, retention: {retention_s}s}}\n"
    )


class LockProbe(threading.Thread):
    """Another writer: takes the write lock (BEGIN IMMEDIATE) every 20 ms and records how
    long it waited for it, i.e. how long someone else held it."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.waits: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.db, timeout=60, isolation_level=None)
        try:
            while not self.stop.is_set():
                start = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                self.waits.append(time.perf_counter() - start)
                conn.execute("ROLLBACK")
                time.sleep(0.02)
        finally:
            conn.close()


def lags(db: Path, since: float, until: float) -> list[float]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT started_at - scheduled_time FROM scheduler_runs WHERE job_id LIKE 'tick-%' "
            "AND started_at >= ? AND started_at < ?",
            (since, until),
        ).fetchall()
    return [float(r[0]) for r in rows]


def cleanup_finished(db: Path) -> tuple[float, str] | None:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        row = conn.execute(
            "SELECT finished_at, output_tail FROM scheduler_runs WHERE job_id = 'housekeeping' "
            "AND finished_at IS NOT NULL"
        ).fetchone()
    return (float(row[0]), str(row[1])) if row else None


def naive_delete(db: Path, cutoff: float) -> float:
    """The cleanup before issue 12: one DELETE, one transaction, the lock held throughout."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "DELETE FROM scheduler_runs WHERE started_at < ? AND outcome != 'running'", (cutoff,)
        )
        conn.execute("COMMIT")
        return time.perf_counter() - start


def cleanup(db: Path, built: float, runs: int, tmp: Path, quick: bool) -> list[Row]:
    expire = runs * 9 // 10 if not quick else runs // 5
    cutoff = built - SPAN_DAYS * DAY + expire * (SPAN_DAYS * DAY / runs)  # the expire-th run
    jobs_dir = tmp / "jobs.d"
    jobs_dir.mkdir()
    (jobs_dir / "history.yaml").write_text(history_jobs_text())
    (jobs_dir / "frequent.yaml").write_text(frequent_jobs_text(math.ceil(time.time() - cutoff)))
    idle_window = 8.0 if quick else 30.0
    with daemon(tmp, jobs_dir, db, http=True) as d:
        d.wait_ready(120)
        time.sleep(3)  # the first ticks, and the start-up's own writes, settle
        idle_from = time.time()
        time.sleep(idle_window)
        probe = LockProbe(db)
        probe.start()
        triggered = time.time()
        reply = httpx.post(
            f"{d.url}/jobs/housekeeping/trigger",
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        reply.raise_for_status()
        finished, output = wait_for(lambda: cleanup_finished(db), "the cleanup", 1800)
        probe.stop.set()
        probe.join()
        idle, during = lags(db, idle_from, triggered), lags(db, triggered, finished)
        cpu = d.cpu_seconds()
    naive_copy = tmp / "naive.db"
    shutil.copyfile(BUILT_DB[0], naive_copy)
    naive = naive_delete(naive_copy, cutoff)
    naive_copy.unlink()
    removed = int(output.split()[1]) if output.startswith("removed") else -1
    p99_idle, p99_during = percentile(idle, 99), percentile(during, 99)
    longest = max(probe.waits)
    return [
        (
            f"cleanup of {removed:,} expired runs: took",
            "",
            f"{finished - triggered:.1f} s (naive one DELETE: {naive:.1f} s), daemon CPU "
            f"{cpu:.0f} s in all",
            "yes",
        ),
        (
            f"fire lag p99 of {FREQUENT} jobs every 1 s, during cleanup vs idle",
            "<= 2x idle",
            f"{ms(p99_during)} vs {ms(p99_idle)} ({len(during)} / {len(idle)} runs; "
            f"max {ms(max(during))})",
            yes(p99_during <= 2 * p99_idle),
        ),
        (
            "longest write-lock wait of another writer during cleanup",
            "<= 200 ms",
            f"{ms(longest)} (p99 {ms(percentile(probe.waits, 99))}; naive: {ms(naive)})",
            yes(longest <= 0.2),
        ),
    ]


def growth(tmp: Path) -> list[Row]:
    """File size (after a checkpoint) per 1,000 runs added through the history writer."""
    db = tmp / "growth.db"
    store = Store(f"sqlite:///{db}")
    try:
        write_history(store, 2000, time.time())  # the schema and first pages
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = db.stat().st_size
        write_history(store, 20_000, time.time())
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = db.stat().st_size
    finally:
        store.close()
    per_1000 = (after - before) / 20
    return [
        (
            f"store growth per 1,000 runs ({len(TAIL)}-byte output each)",
            "",
            f"{per_1000 / 1024:.0f} KiB",
            "yes",
        )
    ]


# -- 3. the idle daemon ------------------------------------------------------------------
def idle_daemon(tmp: Path, quick: bool) -> list[Row]:
    jobs_dir, db = tmp / "idle.d", tmp / "idle.db"
    write_jobs(jobs_dir, 10_000, 100)
    window = 15.0 if quick else 60.0
    with daemon(tmp, jobs_dir, db) as d:
        d.wait_ready(300)
        time.sleep(3)
        rss = d.status_kb("VmRSS") / 1024
        # The generated cron jobs fire at :00, :15, :30 and :45: measure between those.
        to_quarter = 900 - time.time() % 900
        if to_quarter < window + 5:
            time.sleep(to_quarter + 20)  # past it, once the ~1,700 runs it starts are done
        before, start = d.cpu_seconds(), time.monotonic()
        time.sleep(window)
        share = (d.cpu_seconds() - before) / (time.monotonic() - start)
    return [
        (
            f"daemon idle, 10,000 jobs: CPU over {window:.0f} s",
            "<= 1% of a core",
            f"{share * 100:.2f}%",
            yes(share <= 0.01),
        ),
        (
            "daemon idle, 10,000 jobs: RSS after a first start",
            "<= 120 MB",
            f"{rss:.0f} MB",
            yes(rss <= 120),
        ),
    ]


# -- 4. the same history on PostgreSQL: the new queries against the ones they replaced ----
OLD_LAST_RUNS = """
SELECT r.job_id, r.outcome, r.started_at FROM scheduler_runs r
JOIN (SELECT job_id, max(started_at) AS started FROM scheduler_runs GROUP BY job_id) latest
  ON r.job_id = latest.job_id AND r.started_at = latest.started
"""


def postgres(url: str, quick: bool) -> list[Row]:
    """Builds ``runs`` rows in the database at ``url`` (kept for the next run: its tables
    are reused when they already hold them), then times what the SQLite rows time."""
    from sqlalchemy import text

    from scheduler.history import last_runs, runs_page

    runs = 200_000 if quick else 1_000_000
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM scheduler_runs")).scalar()
            jobs = conn.execute(text("SELECT count(*) FROM scheduler_jobs")).scalar()
        if have != runs or jobs != JOBS:
            with store.write() as conn:
                conn.execute(text("DELETE FROM scheduler_runs"))
                conn.execute(text("DELETE FROM scheduler_jobs"))
                conn.execute(
                    store.jobs.insert(),
                    [
                        {
                            "id": j,
                            "spec": "{}",
                            "fingerprint": "",
                            "source": "bench:1",
                            "updated_at": 0.0,
                            "summary": "{}",
                        }
                        for j in job_ids()
                    ],
                )
            write_history(store, runs, time.time())
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM ANALYZE scheduler_runs")
                )
        repeat = 5 if quick else 21
        job = job_ids()[7]

        def old_last_runs() -> None:
            with store.engine.connect() as conn:
                conn.execute(text(OLD_LAST_RUNS)).all()

        def deep(cursor: str) -> Callable[[], None]:
            return lambda: runs_page(store, None, 20, cursor)

        cursor = None
        for _ in range(50):
            cursor = runs_page(store, None, 1000, cursor)[1]
        assert cursor is not None

        def offset() -> None:
            with store.engine.connect() as conn:
                conn.execute(
                    text(
                        "SELECT * FROM scheduler_runs ORDER BY started_at DESC, attempt DESC "
                        "LIMIT 20 OFFSET 50000"
                    )
                ).all()

        first = timed(lambda: runs_page(store, None, 20), repeat)
        first_job = timed(lambda: runs_page(store, job, 20), repeat)
        new_last, old_last = timed(lambda: last_runs(store), repeat), timed(old_last_runs, 3)
        by_cursor, by_offset = timed(deep(cursor), repeat), timed(offset, repeat)
    finally:
        store.close()
    label = f"PostgreSQL, {runs:,} runs:"
    return [
        (
            f"{label} first page, all / one job",
            "<= 50 ms",
            f"{ms(first)} / {ms(first_job)}",
            yes(max(first, first_job) <= 0.05),
        ),
        (
            f"{label} last run of {JOBS} jobs (old GROUP BY: {ms(old_last)})",
            "no regression",
            f"{ms(new_last)} ({old_last / new_last:.1f}x)",
            yes(new_last <= old_last),
        ),
        (
            f"{label} page 2,501 by cursor (OFFSET: {ms(by_offset)})",
            "<= 50 ms",
            f"{ms(by_cursor)} ({by_offset / by_cursor:.1f}x)",
            yes(by_cursor <= 0.05),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter windows")
    parser.add_argument(
        "--only",
        choices=["read", "cleanup", "growth", "idle", "postgres"],
        help="one part of the bench",
    )
    args = parser.parse_args()
    table = rows(args.quick, args.only)
    head = ("measure", "target", "figure", "met")
    widths = [max(len(r[i]) for r in (head, *table)) for i in range(4)]
    for line in (head, *table):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


BUILT_DB: list[Path] = []


def rows(quick: bool, only: str | None = None) -> list[Row]:
    """The table for ``bench/round_two.py``: (measure, target, figure, met)."""
    runs = 1_000_000
    jobs_dir, db, built = built_store(runs)
    BUILT_DB[:] = [db]
    table: list[Row] = []
    parts: list[tuple[str, Callable[[Path], list[Row]]]] = [
        ("read", lambda tmp: reading(copy_store(db, tmp), jobs_dir, tmp, quick)),
        ("cleanup", lambda tmp: cleanup(copy_store(db, tmp), built, runs, tmp, quick)),
        ("growth", growth),
        ("idle", lambda tmp: idle_daemon(tmp, quick)),
    ]
    pg_url = os.environ.get("SCHEDULER_BENCH_PG_URL")
    if pg_url:
        parts.append(("postgres", lambda _tmp: postgres(pg_url, quick)))
    for name, part in parts:
        if only in (None, name):
            with tempfile.TemporaryDirectory(prefix=f"bench-history-{name}-") as tmp_name:
                table += part(Path(tmp_name))
    return table


if __name__ == "__main__":
    main()
