"""Issue 12 in one table: every target of the second performance round, measured in one run.

Reconcile (whole processes, SQLite, interpreter start included): ``scheduler reconcile``
against the naive loop teams write today (parse every file, ``add_job(...,
replace_existing=True)`` for every job, every time; the script ``bench_reconcile`` uses),
both on the same generated files in the same run:

- cold (empty store), no-op (same files again), one file changed (jobgen variant 1: every
  job's description in one file changes, no schedule does), at 10,000 jobs in 100 files
  and 100,000 jobs in 1,000 files; ratios naive/ours, targets 10x / 30x / 30x;
- the cost curve of ours at 1k, 10k and 100k jobs (100 jobs a file), and its cost per
  1,000 jobs, which must not grow from one size to the next (it falls while start-up
  dominates and levels off when the cost is linear);
- 10,000 jobs in one file and in 10,000 files, against the 100-file case measured in turn
  with it (<= 1.5x);
- ``scheduler jobs`` on 10,000 stored jobs (<= 0.4 s) and ``scheduler validate`` of one
  small file (<= 0.25 s), with ``python -c pass`` alongside as the floor.

Run history (1,000,000 rows, paging, status page, cleanup, idle daemon) comes from
``bench/bench_history.py``'s ``rows(quick)`` when that file exists.

Every reconcile's output is checked (what was added, updated, unchanged), so a fast wrong
answer cannot pass. ``--quick`` runs 100, 1,000 and 3,000 jobs once each (under a minute).

    python bench/round_two.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_reconcile import NAIVE_SCRIPT, scheduler_command, timed
from jobgen import job_text, write_jobs

Row = tuple[str, str, str, str, str, str]  # measure, target, naive, ours, ratio, met?
TARGETS = {"cold": 10.0, "no-op": 30.0, "one file": 30.0}
SHAPE_LIMIT = 1.5
JOBS_LIMIT = 0.4
VALIDATE_LIMIT = 0.25
LINEAR_LIMIT = 1.5  # cost per job from one size to the next grows at most this much


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def median_of(repeat: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeat))


@dataclass
class Case:
    """One generated jobs dir: ``jobs`` jobs spread over ``files`` files."""

    work: Path
    jobs: int
    files: int

    @property
    def name(self) -> str:
        return f"{self.jobs}-in-{self.files}"

    @property
    def root(self) -> Path:
        return self.work / f"jobs-{self.name}"

    @property
    def changed(self) -> Path:
        return self.root / f"jobs-{self.files // 2:03d}.yaml"

    def create(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        write_jobs(self.root, self.jobs, self.files)
        # Written out before anything is timed: otherwise the disk is still writing back
        # 10,000 new files (and the store's first commit waits behind that) while the next
        # measure runs, naive or ours.
        os.sync()

    def rewrite_one_file(self) -> int:
        """jobgen's variant 1 of one file; returns how many jobs it holds."""
        per_file = self.jobs // self.files
        body = "".join(job_text(self.files // 2, j, 1) for j in range(per_file))
        self.changed.write_text("jobs:\n" + body)
        os.sync()
        return per_file


@dataclass
class Timings:
    cold: float
    noop: float
    one_file: float

    def of(self, scenario: str) -> float:
        return {"cold": self.cold, "no-op": self.noop, "one file": self.one_file}[scenario]


class Bench:
    def __init__(self, work: Path, repeat: int) -> None:
        self.work = work
        self.repeat = repeat
        run_dir = work / "run"
        run_dir.mkdir(mode=0o700)
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
        (work / "naive.py").write_text(NAIVE_SCRIPT)
        self.stores = 0

    def _store(self) -> Path:
        self.stores += 1
        return self.work / f"store-{self.stores}.db"

    def ours(self, case: Case, db: Path, args: Sequence[str]) -> list[str]:
        return [
            *scheduler_command(),
            "--jobs-dir",
            str(case.root),
            "--db",
            f"sqlite:///{db}",
            *args,
        ]

    def reconcile(self, case: Case, db: Path) -> tuple[float, dict[str, object]]:
        seconds, out = timed(self.ours(case, db, ["reconcile", "-o", "json"]), self.env)
        result: dict[str, object] = json.loads(out)
        return seconds, result

    def ours_scenarios(self, case: Case, repeat: int) -> Timings:
        """Median of ``repeat`` fresh stores: cold, then no-op, then one file changed."""
        cold, noop, one = [], [], []
        for _ in range(repeat):
            case.create()
            db = self._store()
            seconds, result = self.reconcile(case, db)
            check(len(result["add"]) == case.jobs, f"cold {case.name}: {len(result['add'])} added")  # type: ignore[arg-type]
            cold.append(seconds)
            seconds, result = self.reconcile(case, db)
            check(
                not result["add"] and not result["update"] and not result["applied"],
                f"no-op {case.name}: something was applied",
            )
            noop.append(seconds)
            per_file = case.rewrite_one_file()
            seconds, result = self.reconcile(case, db)
            updated = result["update"]
            check(
                isinstance(updated, list) and len(updated) == per_file and not result["add"],
                f"one file {case.name}: {len(updated)} updated, not {per_file}",  # type: ignore[arg-type]
            )
            one.append(seconds)
            db.unlink()
        return Timings(statistics.median(cold), statistics.median(noop), statistics.median(one))

    def alternating(self, case: Case, reference: Case, repeat: int) -> tuple[Timings, Timings]:
        """``ours_scenarios`` of ``case`` and of ``reference``, one run of each in turn: a
        ratio of the two is not moved by the machine getting faster or slower in between
        (this VM's speed drifts by a third over an hour)."""
        runs = [
            (self.ours_scenarios(case, 1), self.ours_scenarios(reference, 1)) for _ in range(repeat)
        ]

        def median(side: list[Timings]) -> Timings:
            return Timings(
                statistics.median(t.cold for t in side),
                statistics.median(t.noop for t in side),
                statistics.median(t.one_file for t in side),
            )

        return median([r[0] for r in runs]), median([r[1] for r in runs])

    def naive_scenarios(self, case: Case, runs: int = 3) -> Timings:
        """Cold, no-op, one file; with ``runs=2`` the one-file figure is the no-op's (the
        naive loop re-adds every job either way: only the time is saved)."""
        case.create()
        db = self._store()
        cmd = [sys.executable, str(self.work / "naive.py"), str(case.root), f"sqlite:///{db}"]
        cold = timed(cmd, self.env)[0]
        noop = timed(cmd, self.env)[0]
        case.rewrite_one_file()
        one = timed(cmd, self.env)[0] if runs >= 3 else noop
        db.unlink()
        return Timings(cold, noop, one)

    def jobs_listing(self, case: Case) -> float:
        case.create()
        db = self._store()
        self.reconcile(case, db)
        cmd = self.ours(case, db, ["jobs"])
        listed = timed(cmd, self.env)[1].count("\n")
        check(listed >= case.jobs, f"`scheduler jobs` listed {listed} lines, not {case.jobs}")
        return median_of(5, lambda: timed(cmd, self.env)[0])

    def validate_one(self) -> tuple[float, float]:
        small = self.work / "small" / "jobs.yaml"
        small.parent.mkdir(exist_ok=True)
        small.write_text("jobs:\n" + job_text(0, 0) + job_text(0, 1))
        cmd = [*scheduler_command(), "validate", str(small)]
        check("ok: 2 job(s)" in timed(cmd, self.env)[1], "validate did not say ok")
        floor = median_of(5, lambda: timed([sys.executable, "-c", "pass"], self.env)[0])
        return median_of(5, lambda: timed(cmd, self.env)[0]), floor


def check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(message)


def fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.995 else f"{seconds * 1000:.0f} ms"


def ratio_rows(label: str, naive: Timings, ours: Timings) -> list[Row]:
    rows: list[Row] = []
    for scenario, target in TARGETS.items():
        ratio = naive.of(scenario) / ours.of(scenario)
        rows.append(
            (
                f"{label}: {scenario}",
                f">= {target:.0f}x",
                fmt(naive.of(scenario)),
                fmt(ours.of(scenario)),
                f"{ratio:.1f}x",
                "yes" if ratio >= target else "no",
            )
        )
    return rows


def print_table(rows: Sequence[Sequence[str]]) -> None:
    headers = ("measure", "target", "naive", "ours", "ratio", "met?")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for n, row in enumerate([headers, *rows]):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def history_rows(quick: bool) -> list[Row]:
    try:
        from bench_history import rows  # type: ignore[import-not-found]
    except ImportError:
        print("history rows: bench/bench_history.py missing")
        return []
    return [(m, target, "-", figure, "-", met) for m, target, figure, met in rows(quick)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 to 3,000 jobs (< 1 min)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours per case (median)")
    parser.add_argument("--no-history", action="store_true", help="skip bench_history's rows")
    parser.add_argument(
        "--big", type=int, default=100_000, help="jobs of the large case (100 a file)"
    )
    parser.add_argument(
        "--naive-runs",
        type=int,
        choices=(2, 3),
        default=3,
        help="2: the naive one-file figure is its no-op's (both re-add every job)",
    )
    args = parser.parse_args()
    # As installed (pip compiles a package's modules when it installs it): under
    # PYTHONDONTWRITEBYTECODE, or after an edit, every run of ours compiled again what
    # it imports of the package, a few tens of milliseconds the naive script never pays.
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "scheduler", quiet=1)
    small, main_jobs, big = (100, 1_000, 3_000) if args.quick else (1_000, 10_000, args.big)
    repeat = 1 if args.quick else args.repeat
    started, load_before = time.perf_counter(), load()
    rows: list[Row] = []
    curve: list[tuple[int, Timings]] = []
    with tempfile.TemporaryDirectory(prefix="round-two-") as tmp:
        bench = Bench(Path(tmp), repeat)
        for jobs in (main_jobs, big):
            case = Case(bench.work, jobs, jobs // 100)
            progress(f"naive loop, {case.name}")
            naive = bench.naive_scenarios(case, args.naive_runs)
            progress(f"scheduler reconcile, {case.name}")
            ours = bench.ours_scenarios(case, repeat if jobs == main_jobs else 1)
            rows += ratio_rows(f"{jobs:,} jobs / {case.files:,} files", naive, ours)
            curve.append((jobs, ours))
        progress(f"scheduler reconcile, {small} jobs")
        curve.insert(
            0, (small, bench.ours_scenarios(Case(bench.work, small, max(1, small // 100)), repeat))
        )
        reference = Case(bench.work, main_jobs, main_jobs // 100)
        for files in (1, main_jobs):
            case = Case(bench.work, main_jobs, files)
            progress(f"scheduler reconcile, {case.name}, alternating with {reference.name}")
            shape, base = bench.alternating(case, reference, repeat)
            for scenario in ("cold", "no-op"):
                ratio = shape.of(scenario) / base.of(scenario)
                rows.append(
                    (
                        f"{main_jobs:,} jobs in {files:,} file(s): {scenario}",
                        f"<= {SHAPE_LIMIT}x of 100 files",
                        fmt(base.of(scenario)),
                        fmt(shape.of(scenario)),
                        f"{ratio:.2f}x",
                        "yes" if ratio <= SHAPE_LIMIT else "no",
                    )
                )
        progress("scheduler jobs / validate")
        listing = bench.jobs_listing(Case(bench.work, main_jobs, main_jobs // 100))
        rows.append(
            (
                f"`scheduler jobs`, {main_jobs:,} stored jobs",
                f"<= {JOBS_LIMIT} s",
                "-",
                fmt(listing),
                "-",
                "yes" if listing <= JOBS_LIMIT else "no",
            )
        )
        validate, floor = bench.validate_one()
        rows.append(
            (
                "`scheduler validate`, one small file",
                f"<= {VALIDATE_LIMIT} s",
                f"{fmt(floor)} (python -c pass)",
                fmt(validate),
                "-",
                "yes" if validate <= VALIDATE_LIMIT else "no",
            )
        )
    rows += linear_rows(curve)
    if not args.no_history:
        progress("run history (bench_history.rows)")
        rows += history_rows(args.quick)
    print(f"\nIssue 12, round two{' (--quick: 100 to 3,000 jobs)' if args.quick else ''}")
    if args.naive_runs == 2:
        print("naive one file = the naive no-op (--naive-runs 2: it re-adds every job either way)")
    print(f"load average before: {load_before}, after: {load()}; nproc {os.cpu_count()}")
    print()
    print_table(rows)
    print_curve(curve)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


def linear_rows(curve: list[tuple[int, Timings]]) -> list[Row]:
    """At most linear: the cost per 1,000 jobs may not grow by more than ``LINEAR_LIMIT``
    from one size to the next (the fixed start-up makes it fall while it is linear; slopes
    between sizes were too noisy for costs as flat as a no-op's)."""
    rows: list[Row] = []
    for scenario in TARGETS:
        per_1k = [t.of(scenario) / (jobs / 1000) for jobs, t in curve]
        growth = max(b / a for a, b in itertools.pairwise(per_1k))
        rows.append(
            (
                f"linear {curve[0][0]:,}..{curve[-1][0]:,}: {scenario}",
                f"per-job cost grows <= {LINEAR_LIMIT}x",
                "-",
                " -> ".join(f"{c * 1000:.1f}" for c in per_1k) + " ms/1k jobs",
                f"{growth:.2f}x",
                "yes" if growth <= LINEAR_LIMIT else "no",
            )
        )
    return rows


def print_curve(curve: list[tuple[int, Timings]]) -> None:
    print("\nCost curve of `scheduler reconcile` (whole process; 100 jobs a file)")
    print("   jobs      cold     no-op   one file   cold per 1k jobs")
    for jobs, t in curve:
        print(
            f"{jobs:>7,}  {fmt(t.cold):>8}  {fmt(t.noop):>8}  {fmt(t.one_file):>9}  "
            f"{t.cold / jobs * 1000 * 1000:>10.1f} ms"
        )


if __name__ == "__main__":
    main()
