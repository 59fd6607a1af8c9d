"""Issue targets for reconciling 10,000 jobs in 100 files into the SQLite store, measured
against what teams do today in the same run: a script that parses every file and calls
APScheduler's ``add_job(..., replace_existing=True)`` for every job, every time.

Whole-process wall times (interpreter start included), median of ``--repeat`` runs:

- cold: into an empty store; no-op: the same files again; one file: one of the files
  rewritten (``jobgen`` variant 1: every job's description changes, no schedule does).
- targets naive/ours: cold >= 5x, no-op >= 20x, one file >= 20x (reported, never fatal).

Correctness (asserted): the no-op reconcile changes no row of ``apscheduler_jobs`` or
``scheduler_jobs`` (row hashes before/after) and writes none (SQLite triggers the benchmark
adds after the cold run log every row written, identical rewrites included; ``PRAGMA
data_version`` on a connection held open across the run is reported too), and the one-file
change alters exactly that file's ``scheduler_jobs`` rows and no ``apscheduler_jobs`` row
whose schedule did not change.

Then the daemon (``scheduler run``) on the same 10,000 jobs: its idle RSS after start-up,
and the latency from a new job file appearing until its job is in the store, observed by
polling ``scheduler jobs -o json`` and, separately, by polling ``scheduler_jobs`` in SQL.

    python bench/bench_reconcile.py [--jobs 10000 --files 100 --repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from jobgen import job_text, write_jobs

from scheduler.loader import load_paths
from scheduler.spec import Schedule
from scheduler.triggers import fire_times

TARGETS = {"cold": 5.0, "no-op": 20.0, "one file": 20.0}
SCENARIOS = ("cold", "no-op", "one file")
TABLES = ("apscheduler_jobs", "scheduler_jobs", "scheduler_files")
LATENCY_SAMPLES = 5
DAEMON_PHASE_SECONDS = 75.0  # keep the daemon phase clear of the job set's own fire times

# What teams do today: parse every file, re-add every job. One transaction per add_job,
# because the scheduler is started (paused), so add_job goes straight to the store.
# func is "builtins:dict" rather than "os:getpid": APScheduler checks the callable's
# signature against kwargs, and getpid() takes none; the textual reference costs the same.
NAIVE_SCRIPT = """
import re
import sys
from datetime import timezone
from pathlib import Path

import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value):
    if isinstance(value, int):
        return value
    return sum(int(n) * UNITS[u] for n, u in re.findall(r"(\\d+)([smhd])", value))


def trigger(schedule):
    tz = schedule.get("timezone", "UTC")
    if "cron" in schedule:
        cron = schedule["cron"]
        return CronTrigger.from_crontab(MACROS.get(cron, cron), timezone=tz)
    return IntervalTrigger(seconds=seconds(schedule["interval"]), timezone=tz)


jobs_dir, url = sys.argv[1], sys.argv[2]
scheduler = BackgroundScheduler(
    jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone=timezone.utc
)
scheduler.start(paused=True)
count = 0
for path in sorted(Path(jobs_dir).glob("*.yaml")):
    doc = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    for job_id, job in doc["jobs"].items():
        scheduler.add_job(
            func="builtins:dict",
            trigger=trigger(job["schedule"]),
            id=job_id,
            replace_existing=True,
            kwargs={k: v for k, v in job.items() if k != "schedule"},
        )
        count += 1
scheduler.shutdown(wait=False)
print(f"naive: {count} job(s) added")
"""


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def filesystem_of(path: Path) -> str:
    best, fstype = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, kind, *_ = line.split()
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, fstype = mount, kind
    return f"{fstype} (mounted at {best or '?'})"


def print_machine(work: Path) -> None:
    from importlib.metadata import version

    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout
    packages = ", ".join(
        f"{name} {version(name)}" for name in ("APScheduler", "SQLAlchemy", "PyYAML", "pydantic")
    )
    print("Machine")
    print(f"  nproc:       {nproc.strip() or os.cpu_count()}")
    print(f"  CPU:         {cpu_model()}")
    print(f"  Python:      {platform.python_version()} ({sys.executable})")
    print(f"  SQLite:      {sqlite3.sqlite_version}")
    print(f"  packages:    {packages}, libyaml {yaml.__with_libyaml__}")
    print(f"  work dir:    {work} on {filesystem_of(work)}")


# --- processes -----------------------------------------------------------------------------


def scheduler_command() -> list[str]:
    script = Path(sys.executable).parent / "scheduler"
    if script.exists():
        return [str(script)]
    found = shutil.which("scheduler")
    return [found] if found else [sys.executable, "-m", "scheduler"]


def timed(cmd: Sequence[str], env: dict[str, str]) -> tuple[float, str]:
    """Whole-process wall time of ``cmd``; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- the store -----------------------------------------------------------------------------

Snapshot = dict[str, dict[str, str]]  # table -> key -> sha256 of the row


def snapshot(db: Path, tables: Sequence[str] = TABLES) -> Snapshot:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {
            table: {
                str(row[0]): hashlib.sha256(repr(row).encode()).hexdigest()
                for row in conn.execute(f"SELECT * FROM {table}")
            }
            for table in tables
        }


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Keys added, removed, or whose row bytes differ."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


class DataVersion:
    """``PRAGMA data_version`` on one connection held open across another process's run:
    it changes when any other connection commits a change to the database."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None)
        self.start = self.read()

    def read(self) -> int:
        value: int = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return value

    def moved(self) -> bool:
        moved = self.read() != self.start
        self.conn.close()
        return moved


# --- the job files -------------------------------------------------------------------------


@dataclass
class JobsDir:
    root: Path
    jobs: int
    files: int
    changed_file: int
    original: bytes = b""
    variant_text: str = ""
    ids_in_changed_file: set[str] = field(default_factory=set)
    declared: set[str] = field(default_factory=set)
    schedule_changes: int = 0

    @property
    def per_file(self) -> int:
        return self.jobs // self.files

    @property
    def path(self) -> Path:
        return self.root / f"jobs-{self.changed_file:03d}.yaml"

    def create(self) -> None:
        write_jobs(self.root, self.jobs, self.files)
        self.original = self.path.read_bytes()
        self.variant_text = "jobs:\n" + "".join(
            job_text(self.changed_file, j, 1) for j in range(self.per_file)
        )
        old = yaml.load(self.original, Loader=yaml.CSafeLoader)["jobs"]
        new = yaml.load(self.variant_text, Loader=yaml.CSafeLoader)["jobs"]
        self.ids_in_changed_file = set(new)
        self.schedule_changes = sum(old[i]["schedule"] != new[i]["schedule"] for i in new)
        for path in sorted(self.root.glob("*.yaml")):
            self.declared.update(yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)["jobs"])
        assert len(self.declared) == self.jobs, f"{len(self.declared)} ids, not {self.jobs}"

    def rewrite_one_file(self) -> None:
        """Regenerate only file k, with jobgen's variant 1."""
        self.path.write_text(self.variant_text)

    def restore(self) -> None:
        self.path.write_bytes(self.original)


# --- naive vs ours -------------------------------------------------------------------------


@dataclass
class Runs:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SCENARIOS})

    def median(self, scenario: str) -> float:
        return statistics.median(self.seconds[scenario])


@dataclass
class Checks:
    """Asserted checks; the same outcome in several runs is printed once."""

    runs: dict[str, list[int]] = field(default_factory=dict)

    def check(self, ok: bool, message: str, rep: int) -> None:
        self.runs.setdefault(f"[{'ok' if ok else 'FAIL'}] {message}", []).append(rep + 1)
        assert ok, message

    def info(self, message: str, rep: int) -> None:
        self.runs.setdefault(f"[info] {message}", []).append(rep + 1)

    def lines(self) -> list[str]:
        return [
            f"  {message} (run {', '.join(map(str, reps))})" for message, reps in self.runs.items()
        ]


def run_naive(jobs: JobsDir, work: Path, rep: int, env: dict[str, str], runs: Runs) -> int:
    """Returns how many rows this repetition's no-op run changed (re-adding rewrites)."""
    db = work / f"naive-{rep}.db"
    cmd = [sys.executable, str(work / "naive.py"), str(jobs.root), f"sqlite:///{db}"]
    jobs.restore()
    runs.seconds["cold"].append(timed(cmd, env)[0])
    before = snapshot(db, TABLES[:1])
    runs.seconds["no-op"].append(timed(cmd, env)[0])
    after = snapshot(db, TABLES[:1])
    jobs.rewrite_one_file()
    runs.seconds["one file"].append(timed(cmd, env)[0])
    return len(changed(before["apscheduler_jobs"], after["apscheduler_jobs"]))


AUDITED = ("apscheduler_jobs", "scheduler_jobs")


def install_write_audit(db: Path) -> None:
    """SQLite triggers that log every row a statement inserts, updates or deletes, so
    rewrites with identical bytes (invisible to row hashes) are counted too."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE bench_writes (tbl TEXT, op TEXT, id TEXT)")
        for table in AUDITED:
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                conn.execute(
                    f"CREATE TRIGGER bench_{table}_{op} AFTER {op} ON {table} BEGIN "
                    f"INSERT INTO bench_writes VALUES ('{table}', '{op}', {row}.id); END"
                )


def take_write_audit(db: Path) -> dict[str, int]:
    """Rows written since the last call, as {"table op": count}; clears the log."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        rows = conn.execute("SELECT tbl, op, COUNT(*) FROM bench_writes GROUP BY tbl, op")
        counts = {f"{t} {op}": n for t, op, n in rows}
        conn.execute("DELETE FROM bench_writes")
    return counts


def describe_writes(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"


def check_cold(jobs: JobsDir, cold: Snapshot, checks: Checks, rep: int) -> None:
    for table in AUDITED:
        stored = set(cold[table])
        extra = sorted(stored - jobs.declared)
        checks.check(
            jobs.declared <= stored,
            f"cold: all {jobs.jobs} declared jobs in {table}"
            + (f" (plus built-in: {', '.join(extra)})" if extra else ""),
            rep,
        )


def check_noop(
    cold: Snapshot,
    noop: Snapshot,
    committed: bool,
    writes: dict[str, int],
    checks: Checks,
    rep: int,
) -> None:
    for table in TABLES:
        n = len(changed(cold[table], noop[table]))
        checks.check(n == 0, f"no-op: {n} {table} row(s) changed (row hashes; expect 0)", rep)
    checks.check(
        not writes, f"no-op: rows written per SQLite triggers: {describe_writes(writes)}", rep
    )
    state = "CHANGED (a transaction committed)" if committed else "unchanged (nothing committed)"
    checks.info(f"no-op: PRAGMA data_version {state}", rep)


def check_one_file(
    jobs: JobsDir,
    noop: Snapshot,
    one: Snapshot,
    writes: dict[str, int],
    checks: Checks,
    rep: int,
) -> None:
    ours_changed = changed(noop["scheduler_jobs"], one["scheduler_jobs"])
    aps_changed = changed(noop["apscheduler_jobs"], one["apscheduler_jobs"])
    files_changed = changed(noop["scheduler_files"], one["scheduler_files"])
    checks.check(
        ours_changed == jobs.ids_in_changed_file,
        f"one file: {len(ours_changed)} scheduler_jobs row(s) changed, exactly the "
        f"{jobs.per_file} jobs of {jobs.path.name}",
        rep,
    )
    checks.check(
        aps_changed <= jobs.ids_in_changed_file and len(aps_changed) <= jobs.schedule_changes,
        f"one file: {len(aps_changed)} apscheduler_jobs row(s) changed "
        f"({jobs.schedule_changes} job(s) in the file changed schedule)",
        rep,
    )
    checks.check(
        len(files_changed) == 1,
        f"one file: {len(files_changed)} scheduler_files row(s) changed (expect 1)",
        rep,
    )
    checks.info(f"one file: rows written per SQLite triggers: {describe_writes(writes)}", rep)


def run_ours(
    jobs: JobsDir, work: Path, rep: int, env: dict[str, str], runs: Runs, checks: Checks
) -> dict[str, str]:
    db = work / f"ours-{rep}.db"
    cmd = [*scheduler_command(), "--jobs-dir", str(jobs.root), "--db", f"sqlite:///{db}"]
    cmd.append("reconcile")
    summaries: dict[str, str] = {}

    def run(scenario: str) -> None:
        seconds, out = timed(cmd, env)
        runs.seconds[scenario].append(seconds)
        summaries[scenario] = last_line(out)

    jobs.restore()
    run("cold")
    cold = snapshot(db)
    check_cold(jobs, cold, checks, rep)
    install_write_audit(db)

    version = DataVersion(db)
    run("no-op")
    committed = version.moved()
    noop = snapshot(db)
    check_noop(cold, noop, committed, take_write_audit(db), checks, rep)

    jobs.rewrite_one_file()
    version = DataVersion(db)
    run("one file")
    checks.check(
        version.moved(),
        "one file: PRAGMA data_version changed (it does see other processes' commits)",
        rep,
    )
    check_one_file(jobs, noop, snapshot(db), take_write_audit(db), checks, rep)
    return summaries


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for n, row in enumerate([headers, *rows]):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def print_comparison(naive: Runs, ours: Runs, repeat: int) -> None:
    print(f"\nWhole-process wall time, median of {repeat} (seconds)")
    rows = []
    for s in SCENARIOS:
        ratio = naive.median(s) / ours.median(s)
        rows.append(
            [
                s,
                f"{naive.median(s):.2f}",
                f"{ours.median(s):.2f}",
                f"{ratio:.1f}x",
                f">= {TARGETS[s]:.0f}x",
                "PASS" if ratio >= TARGETS[s] else "MISS",
                " ".join(f"{v:.2f}" for v in naive.seconds[s]),
                " ".join(f"{v:.2f}" for v in ours.seconds[s]),
            ]
        )
    headers = ["scenario", "naive", "ours", "naive/ours", "target", "result"]
    print_table([*headers, "naive runs", "ours runs"], rows)


# --- the daemon ----------------------------------------------------------------------------


def next_fire(jobs_dir: Path, after: datetime) -> tuple[datetime | None, int]:
    """The earliest time any declared job fires after ``after``, and how many fire then."""
    state = load_paths([jobs_dir])
    schedules = Counter(
        json.dumps(j.canonical["schedule"], sort_keys=True) for j in state.jobs.values()
    )
    firsts: Counter[datetime] = Counter()
    for key, count in schedules.items():
        times = fire_times(Schedule.model_validate(json.loads(key)), after, 1)
        if times:
            firsts[times[0].astimezone(UTC)] += count
    if not firsts:
        return None, 0
    earliest = min(firsts)
    return earliest, firsts[earliest]


def wait_for_quiet_window(jobs_dir: Path) -> str:
    """Start the daemon phase only when no declared job fires during it (1,667 of the
    generated jobs fire every quarter hour and would run ``echo`` in the middle of it)."""
    note = "no declared job fires during the daemon phase"
    while True:
        now = datetime.now(UTC)
        due, count = next_fire(jobs_dir, now)
        if due is None or due > now + timedelta(seconds=DAEMON_PHASE_SECONDS):
            return note
        wait = (due - now).total_seconds() + 2
        note = f"waited {wait:.0f} s for {count} job(s) due at {due:%H:%M:%S} UTC to pass first"
        progress(note)
        time.sleep(wait)


@dataclass
class Daemon:
    cmd: list[str]
    db: Path
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300.0) -> float:
        start = time.perf_counter()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*self.cmd, "run"], stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        while "scheduler running" not in self.log_text():
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log_text()}")
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"daemon not up after {timeout} s:\n{self.log_text()[-3000:]}")
            time.sleep(0.02)
        return time.perf_counter() - start

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def status(self, key: str) -> str:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def stop(self) -> tuple[int | None, float]:
        """SIGTERM; returns the exit code (None if it had to be killed) and the time taken."""
        assert self.proc is not None
        start = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        return code, time.perf_counter() - start


def stored_ids(cmd: list[str], env: dict[str, str]) -> set[str]:
    out = subprocess.run(
        [*cmd, "jobs", "-o", "json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    return {job["id"] for job in json.loads(out)}


@dataclass
class Latency:
    seconds: list[float] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)  # cost of one poll


def drop_new_file(jobs: JobsDir, stage: Path, file_no: int) -> tuple[str, float]:
    """Stage a one-job file outside the jobs dir, then rename it in (atomic, as git and
    editors do); returns the job id and the time of the rename."""
    staged = stage / f"jobs-{file_no:03d}.yaml"
    staged.write_text("jobs:\n" + job_text(file_no, 0))
    job_id = f"job-{file_no:03d}-0000"
    start = time.perf_counter()
    os.replace(staged, jobs.root / staged.name)
    return job_id, start


def poll_sql(db: Path, job_id: str, start: float, interval: float, result: Latency) -> None:
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        while time.perf_counter() - start < 120:
            t = time.perf_counter()
            row = conn.execute("SELECT 1 FROM scheduler_jobs WHERE id = ?", (job_id,)).fetchone()
            now = time.perf_counter()
            result.polls.append(now - t)
            if row is not None:
                result.seconds.append(now - start)
                return
            time.sleep(interval)
    raise RuntimeError(f"{job_id} did not appear in scheduler_jobs within 120 s")


def poll_cli(daemon: Daemon, job_id: str, start: float, interval: float, result: Latency) -> None:
    while time.perf_counter() - start < 120:
        t = time.perf_counter()
        found = job_id in stored_ids(daemon.cmd, daemon.env)
        now = time.perf_counter()
        result.polls.append(now - t)
        if found:
            result.seconds.append(now - start)
            return
        time.sleep(interval)
    raise RuntimeError(f"{job_id} did not appear in `scheduler jobs` within 120 s")


def measure_latency(
    daemon: Daemon, jobs: JobsDir, stage: Path, interval: float
) -> tuple[Latency, Latency]:
    sql, cli = Latency(), Latency()
    base = max(jobs.files, 900)
    for i in range(LATENCY_SAMPLES):
        job_id, start = drop_new_file(jobs, stage, base + 2 * i)
        poll_sql(daemon.db, job_id, start, interval, sql)
        time.sleep(0.3)  # let the daemon finish logging and go idle
        job_id, start = drop_new_file(jobs, stage, base + 2 * i + 1)
        poll_cli(daemon, job_id, start, interval, cli)
        time.sleep(0.3)
    return sql, cli


RECONCILE_LOG = re.compile(
    r"reconcile \((?P<why>.*?)\): (?P<added>\d+) added.*?(?P<parsed>\d+) file\(s\) parsed "
    r"in (?P<ms>\d+) ms"
)


def count_rows(db: Path, sql: str, *params: float) -> int | None:
    """One count from the store; None when the table does not exist (yet)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        try:
            value: int = conn.execute(sql, params).fetchone()[0]
        except sqlite3.OperationalError:
            return None
        return value


@dataclass
class DaemonReport:
    quiet: str
    startup: float
    rss: str
    hwm: str
    due_during_phase: int | None
    sql: Latency
    cli: Latency
    log: str
    exit_code: int | None
    stop_seconds: float
    runs: int | None


def daemon_phase(jobs: JobsDir, work: Path, env: dict[str, str], interval: float) -> None:
    jobs.restore()
    quiet = wait_for_quiet_window(jobs.root)
    db = work / "daemon.db"
    cmd = [*scheduler_command(), "--jobs-dir", str(jobs.root), "--db", f"sqlite:///{db}"]
    daemon = Daemon(cmd, db, work / "daemon.log", env)
    stage = work / "stage"
    stage.mkdir()
    progress("daemon: starting on the jobs dir")
    try:
        startup = daemon.start()
        listed = stored_ids(cmd, env)
        missing = len(jobs.declared - listed)
        assert not missing, f"{missing} declared job(s) not listed after the daemon's start-up"
        horizon = time.time() + DAEMON_PHASE_SECONDS
        due = count_rows(
            db, "SELECT COUNT(*) FROM apscheduler_jobs WHERE next_run_time < ?", horizon
        )
        time.sleep(1.0)
        rss, hwm = daemon.status("VmRSS"), daemon.status("VmHWM")
        progress("daemon: measuring new-file latency")
        sql, cli = measure_latency(daemon, jobs, stage, interval)
        log = daemon.log_text()
        code, stop_seconds = daemon.stop()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
    runs = count_rows(db, "SELECT COUNT(*) FROM scheduler_runs")
    report = DaemonReport(quiet, startup, rss, hwm, due, sql, cli, log, code, stop_seconds, runs)
    print_daemon(jobs, report, interval)
    assert code is not None, "the daemon did not exit on SIGTERM within 30 s"


def print_daemon(jobs: JobsDir, r: DaemonReport, interval: float) -> None:
    reconciles = [m.groupdict() for m in RECONCILE_LOG.finditer(r.log)]
    watched = [x for x in reconciles if "change(s)" in x["why"]]
    print(f"\nDaemon (`scheduler run`) on {jobs.jobs} jobs ({r.quiet})")
    print(f"  start-up until serving:           {r.startup:.2f} s (process start included)")
    for x in reconciles[:1]:
        print(f"  start-up reconcile (daemon log):  {x['ms']} ms, {x['added']} added")
    print(f"  idle RSS after start-up:          {r.rss} (peak VmHWM {r.hwm})")
    print(f"  `scheduler jobs -o json` call:    median {statistics.median(r.cli.polls):.2f} s")
    print(
        f"  new file -> job stored ({LATENCY_SAMPLES} files each, polled every "
        f"{interval * 1000:.0f} ms):"
    )
    observers = (("SQL poll of scheduler_jobs", r.sql), ("`scheduler jobs -o json`", r.cli))
    print_table(
        ["observed by", "median", "max", "runs (s)"],
        [
            [
                name,
                f"{statistics.median(lat.seconds):.3f} s",
                f"{max(lat.seconds):.3f} s",
                " ".join(f"{v:.3f}" for v in lat.seconds),
            ]
            for name, lat in observers
        ],
    )
    ms = [int(x["ms"]) for x in watched]
    print(
        f"  watcher reconciles (daemon log):  {len(watched)} for {2 * LATENCY_SAMPLES} new "
        f"files, each {min(ms, default=0)}-{max(ms, default=0)} ms inside the daemon"
    )
    print(f"  jobs due during the phase:        {r.due_during_phase}; runs recorded: {r.runs}")
    code = r.exit_code
    stopped = "exited 0" if code == 0 else f"exit code {code}" if code is not None else "KILLED"
    print(f"  SIGTERM:                          {stopped} after {r.stop_seconds:.2f} s")


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--poll-ms", type=float, default=20.0, help="latency poll interval")
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon phase")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="where the files and stores go (a temp dir)"
    )
    return parser.parse_args()


@contextlib.contextmanager
def work_dir(parent: Path | None) -> Iterator[Path]:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-", dir=parent) as tmp:
        yield Path(tmp)


def main() -> None:
    args = parse_args()
    with work_dir(args.work_dir) as work:
        print_machine(work)
        jobs = JobsDir(work / "jobs.d", args.jobs, args.files, changed_file=args.files // 2)
        jobs.create()
        (work / "naive.py").write_text(NAIVE_SCRIPT)
        (work / "run").mkdir(mode=0o700)  # the scheduler refuses a shared runtime dir
        env = {**os.environ, "XDG_RUNTIME_DIR": str(work / "run")}
        print(
            f"\nScenario: {args.jobs} jobs in {args.files} files; one file = "
            f"{jobs.path.name} rewritten with variant 1 ({jobs.per_file} jobs, "
            f"{jobs.schedule_changes} schedule change(s))"
        )
        naive, ours, checks = Runs(), Runs(), Checks()
        naive_noop = 0
        summaries: dict[str, str] = {}
        for rep in range(args.repeat):
            progress(f"run {rep + 1}/{args.repeat}: naive add_job(replace_existing=True)")
            naive_noop = run_naive(jobs, work, rep, env, naive)
            progress(f"run {rep + 1}/{args.repeat}: scheduler reconcile")
            summaries = run_ours(jobs, work, rep, env, ours, checks)
        print_comparison(naive, ours, args.repeat)
        print("\n`scheduler reconcile` said (last run):")
        for s in SCENARIOS:
            print(f"  {s + ':':10} {summaries[s]}")
        print("\nCorrectness")
        print("\n".join(checks.lines()))
        print(
            f"  [info] naive no-op changed {naive_noop} apscheduler_jobs row(s) "
            "(replace_existing re-arms every trigger: interval timers restart)"
        )
        if not args.no_daemon:
            daemon_phase(jobs, work, env, args.poll_ms / 1000)


if __name__ == "__main__":
    main()
