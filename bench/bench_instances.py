"""Issue 9 "Tests and figures": 1,000 instances of a template created through the HTTP API
of a real daemon on SQLite (``POST /templates/{name}/jobs``, with a token, as an app
would): creates per second (target >= 200/s), and the daemon's fire lag for a few interval
jobs while the creates go on, against the same jobs' lag idle just before.

Baselines measured in the same run, on the same daemon and clients: the same number of
``GET /version`` requests (an authenticated round trip that does nothing: what HTTP and
the token cost), and the idle fire lag. Lag is ``started_at - scheduled_time`` from the run
history. Targets are reported as PASS/MISS and never fail the run.

    python bench/bench_instances.py [--creates 1000 --clients 4 --ticks 5 --idle 8]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
CREATES_TARGET = 200.0
TOKEN = "bench-token-Zq3f9T0vXb1kL2mN8pR4"
TEMPLATE = """\
templates:
  search:
    description: A recurring search for one query
    params:
      query: {type: string, required: true, max_length: 200}
      sources: {type: list, items: string, default: [google, bing]}
    limits: {max_jobs: 100000, min_interval: 1h}
    run:
      type: command
      command: ["echo", "${params.query}"]
jobs:
"""


def wait_log(log: Path, pattern: str, timeout: float = 60.0) -> re.Match[str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {pattern!r} in {log}:\n{log.read_text()[-3000:]}")


def in_parallel(count: int, clients: list[httpx.Client], one: Callable[..., None]) -> float:
    """``one(client, i)`` for i in range(count), spread over the clients; the seconds taken."""
    errors: list[BaseException] = []

    def work(client: httpx.Client, start: int) -> None:
        try:
            for i in range(start, count, len(clients)):
                one(client, i)
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(client, n)) for n, client in enumerate(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} client(s) failed, first: {errors[0]!r}")
    return took


def lags(api: httpx.Client, jobs: list[str], since: float, until: float) -> list[float]:
    """Start lag (ms) of the ticks' runs scheduled in [since, until) (Unix seconds)."""
    found: list[float] = []
    for job_id in jobs:
        for run in api.get(f"/jobs/{job_id}/runs", params={"limit": 1000}).json():
            if not run["scheduled_time"]:
                continue
            scheduled = datetime.fromisoformat(run["scheduled_time"]).timestamp()
            if since <= scheduled < until:
                started = datetime.fromisoformat(run["started_at"]).timestamp()
                found.append((started - scheduled) * 1000)
    return found


def summary(values: list[float]) -> str:
    if not values:
        return "no runs"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{len(values)} runs, p50 {statistics.median(values):.1f} ms, p99 {p99:.1f} ms, "
        f"max {ordered[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--ticks", type=int, default=5, help="interval jobs, every second")
    parser.add_argument("--idle", type=float, default=8.0, help="seconds of idle lag")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs_dir, runtime = root / "jobs.d", root / "run"
        jobs_dir.mkdir()
        runtime.mkdir(mode=0o700)
        ticks = [f"tick-{n}" for n in range(args.ticks)]
        lines = [TEMPLATE.rstrip("\n")]
        for job_id in ticks:
            lines += [
                f"  {job_id}:",
                "    schedule: {interval: 1s}",
                '    run: {type: python, function: "noop:anoop"}',
            ]
        (jobs_dir / "a.yaml").write_text("\n".join(lines) + "\n")
        log = root / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        env["XDG_RUNTIME_DIR"] = str(runtime)
        env["SCHEDULER_API_TOKEN"] = TOKEN
        env["PYTHONPATH"] = os.pathsep.join(
            [str(BENCH), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        db = root / "s.db"
        argv = [
            sys.executable,
            "-m",
            "scheduler",
            "--jobs-dir",
            str(jobs_dir),
            "--db",
            f"sqlite:///{db}",
            "run",
            "--http",
            "127.0.0.1:0",
        ]
        with log.open("wb") as out:
            daemon = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=out)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        try:
            base = wait_log(log, r"HTTP API on (http://127\.0\.0\.1:\d+)").group(1)
            wait_log(log, "scheduler running")
            clients = [
                httpx.Client(base_url=base, headers=headers, timeout=60)
                for _ in range(args.clients)
            ]
            api = clients[0]
            time.sleep(1.0)  # past the start-up: every tick has its first run scheduled
            idle_from = time.time()
            time.sleep(args.idle)
            idle_to = time.time()

            def version(client: httpx.Client, i: int) -> None:
                client.get("/version").raise_for_status()

            def create(client: httpx.Client, i: int) -> None:
                body = {
                    "id": f"search-{i}",
                    "params": {"query": f"query number {i}; rm -rf /"},
                    "schedule": {"cron": f"{i % 60} {i % 24} * * *"},
                }
                answer = client.post("/templates/search/jobs", json=body)
                if answer.status_code != 201:
                    raise RuntimeError(f"create {i}: HTTP {answer.status_code}: {answer.text}")

            trivial = in_parallel(args.creates, clients, version)
            busy_from = time.time()
            took = in_parallel(args.creates, clients, create)
            busy_to = time.time()
            time.sleep(1.5)  # the last ticks of the window are recorded
            idle = lags(api, ticks, idle_from, idle_to)
            busy = lags(api, ticks, busy_from, busy_to)
            stored = api.get("/jobs").json()["total"]
            for client in clients:
                client.close()
        finally:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                print("the daemon ignored SIGTERM for 30 s: killed")
                daemon.kill()
                daemon.wait()

    rate = args.creates / took
    trivial_rate = args.creates / trivial
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
    print(
        f"{args.creates} creates over {args.clients} clients in {took:.2f} s: {rate:.0f}/s "
        f"[{'PASS' if rate >= CREATES_TARGET else 'MISS'} >= {CREATES_TARGET:.0f}/s]"
    )
    print(
        f"baseline GET /version: {trivial_rate:.0f}/s; creates run at "
        f"{rate / trivial_rate:.2f}x the rate of an authenticated no-op request"
    )
    print(f"jobs stored after: {stored} (the {len(ticks)} ticks and the instances)")
    print(f"fire lag idle   ({args.idle:.0f} s): {summary(idle)}")
    print(f"fire lag during ({busy_to - busy_from:.1f} s): {summary(busy)}")
    if idle and busy:
        ratio = statistics.median(busy) / max(statistics.median(idle), 0.001)
        print(f"median lag during creates / idle: {ratio:.2f}x")


if __name__ == "__main__":
    main()
