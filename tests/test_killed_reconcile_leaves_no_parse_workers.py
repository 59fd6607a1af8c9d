"""A `scheduler reconcile` (or daemon) killed with kill -9 while its parse workers run
leaves no process behind. Pins issue 16.16: each such kill left two parse workers and a resource
tracker running forever (~120 MB), waiting for work from a parent that was gone."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import StartDaemon, simple_job
from tests.daemon_helpers import scheduler_argv, wait_for


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, from /proc (zombies count as gone)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            parents.setdefault(int(ppid), []).append(int(entry))
    found: set[int] = set()
    pending = [root]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_parse_workers_die_with_a_killed_reconcile(jobs_dir: Path, db_url: str) -> None:
    for f in range(40):  # enough files to parse in workers, enough jobs to take a while
        body = "".join(
            f"  job-{f}-{j}:\n    schedule: {{interval: {j + 1}h}}\n"
            f"    run: {{type: command, command: [echo, '{j}']}}\n"
            for j in range(1000)
        )
        (jobs_dir / f"jobs-{f:02d}.yaml").write_text("jobs:\n" + body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    reconcile = subprocess.Popen(
        scheduler_argv(jobs_dir, db_url, "reconcile"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**env, "XDG_RUNTIME_DIR": str(jobs_dir.parent)},
    )
    try:

        def two_workers() -> set[int] | None:
            found = descendants(reconcile.pid)
            return found if len(found) >= 2 else None

        workers = wait_for(two_workers, "parse workers", timeout=30)
        print(f"reconcile {reconcile.pid}, workers {sorted(workers)}")
        reconcile.send_signal(signal.SIGKILL)
        reconcile.wait()
        wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to die")
    finally:
        reconcile.kill()
        reconcile.wait()


def test_parse_processes_die_with_a_killed_daemon(
    start_daemon: StartDaemon, jobs_dir: Path
) -> None:
    """The daemon parses in children of a fork server (with a resource tracker beside it):
    after a kill -9 of the daemon, none of them may be left."""
    (jobs_dir / "a.yaml").write_text(simple_job("a"))
    daemon = start_daemon()
    helpers = wait_for(lambda: descendants(daemon.proc.pid) or None, "the parse fork server")
    daemon.kill()
    wait_for(lambda: not any(alive(pid) for pid in helpers), "the parse helpers to exit")
