"""The status page's memory under load (issue 16.6): a daemon whose store holds 5,000 runs
with 64 KiB output tails each (the most a run keeps), then 20 concurrent loads of ``GET /``.
Reports the daemon's RSS idle and its peak (VmHWM) after the loads, and each load's size.

    python bench/bench_status_page.py [--runs 5000 --tail-kib 64 --loads 20 --jobs 50]

Run it against another checkout with PYTHONPATH=/path/to/checkout to compare.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def rss_mb(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, field
    return int(match.group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--tail-kib", type=int, default=64)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )

    root = Path(tempfile.mkdtemp(prefix="bsp-"))
    try:
        jobs_dir = root / "jobs.d"
        jobs_dir.mkdir()
        (jobs_dir / "a.yaml").write_text(
            "jobs:\n"
            + "".join(
                f"  job-{n}:\n    schedule: {{interval: 1d}}\n"
                f'    run: {{type: command, command: ["true"]}}\n'
                for n in range(args.jobs)
            )
        )
        db = root / "s.db"
        url = f"sqlite:///{db}"
        run_dir = root / "run"
        run_dir.mkdir(mode=0o700)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
        base = [sys.executable, "-m", "scheduler", "--jobs-dir", str(jobs_dir), "--db", url]
        subprocess.run([*base, "reconcile"], env=env, check=True, capture_output=True)
        tail = ("x" * 79 + "\n") * (args.tail_kib * 1024 // 80)
        now = time.time()
        with sqlite3.connect(db) as conn:
            conn.executemany(
                "INSERT INTO scheduler_runs (run_id, job_id, scheduled_time, started_at, "
                "finished_at, outcome, exit_code, attempt, output_tail, error) "
                "VALUES (?, ?, ?, ?, ?, 'success', 0, 1, ?, NULL)",
                (
                    (uuid.uuid4().hex, f"job-{i % args.jobs}", now - i, now - i, now - i + 1, tail)
                    for i in range(args.runs)
                ),
            )
        print(
            f"store: {args.runs} runs x {args.tail_kib} KiB tails, "
            f"{db.stat().st_size / 2**20:.0f} MB on disk"
        )

        log = root / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [*base, "run", "--http", "127.0.0.1:0"], env=env, stdout=out, stderr=out
            )
        try:
            deadline = time.monotonic() + 60
            while not (found := re.search(r"HTTP API on (http://\S+)", log.read_text())):
                assert daemon.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            while "scheduler running" not in log.read_text():
                time.sleep(0.1)
            time.sleep(2)
            idle = rss_mb(daemon.pid, "VmRSS")
            peak_before = rss_mb(daemon.pid, "VmHWM")
            headers = {"Content-Type": "application/json"}
            with httpx.Client(base_url=found.group(1), timeout=300, headers=headers) as api:
                started = time.monotonic()
                with ThreadPoolExecutor(args.loads) as pool:
                    pages = list(pool.map(lambda _: api.get("/"), range(args.loads)))
                took = time.monotonic() - started
            assert all(p.status_code == 200 for p in pages), {p.status_code for p in pages}
            peak = rss_mb(daemon.pid, "VmHWM")
            print(f"daemon RSS idle: {idle:.0f} MB (peak so far {peak_before:.0f} MB)")
            print(
                f"{args.loads} concurrent GET /: peak RSS {peak:.0f} MB, all done in {took:.2f} s,"
                f" page {len(pages[0].content) / 1024:.0f} KiB"
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
