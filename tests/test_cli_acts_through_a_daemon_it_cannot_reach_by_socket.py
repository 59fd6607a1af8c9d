"""Issue 16 item 10: with the daemon in another runtime dir (as on another host or in
another login session), `pause`, `resume` and `trigger` wrote the store behind its back: a
resumed 5 s job ran 0 times in 20 s, and `trigger` ran the job inside the command line.
Now the command line finds the daemon through the store and the daemon acts."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import daemon_env, scheduler_argv, wait_for

JOBS = """\
jobs:
  tick:
    schedule: {interval: 1s}
    run: {type: command, command: "echo $PPID"}
"""


def test_pause_resume_and_trigger_reach_a_daemon_in_another_runtime_dir(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_daemon()
    elsewhere = Path(tempfile.mkdtemp(prefix="sd-other-"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            scheduler_argv(jobs_dir, db_url, *args),
            env=daemon_env(elsewhere),
            cwd=jobs_dir.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def runs() -> list[dict[str, object]]:
        return list(json.loads(cli("history", "tick", "--limit", "1000", "-o", "json").stdout))

    paused = cli("pause", "tick")
    assert paused.returncode == 0, paused.stderr
    assert "tick paused by an operator" in daemon.wait_log("tick paused by an operator")[0]
    mark = len(runs())
    resumed = cli("resume", "tick")
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: len(runs()) >= mark + 2 or None, "the resumed job to run again")

    triggered = cli("trigger", "tick", "-o", "json")
    assert triggered.returncode == 0, triggered.stderr
    assert json.loads(triggered.stdout)["via"].startswith("leader ")
    assert "job tick triggered by an operator" in daemon.log()
    pids = {str(r["output_tail"]).strip() for r in runs() if r["output_tail"]}
    assert pids == {str(daemon.proc.pid)}  # every run's parent is the daemon, none the CLI


def test_trigger_without_any_daemon_says_how_to_run_it(
    write_jobs: WriteJobs, jobs_dir: Path, db_url: str, runtime_dir: Path
) -> None:
    write_jobs("a.yaml", JOBS)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            scheduler_argv(jobs_dir, db_url, *args),
            env=daemon_env(runtime_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert cli("reconcile").returncode == 0
    refused = cli("trigger", "tick")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: no scheduler daemon runs for this store, so nothing would run tick: "
        "start `scheduler run` (or pass --url to reach one), then trigger again"
    )
    assert json.loads(cli("history", "-o", "json").stdout) == []


def test_a_second_daemon_on_the_same_sqlite_store_is_refused_from_another_runtime_dir(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path, db_url: str, tmp_path: Path
) -> None:
    """The host lock lives in the runtime dir: a daemon started with another one (another
    login session) took the same SQLite store too, and every job ran twice."""
    write_jobs("a.yaml", JOBS)
    first = start_daemon()
    second = subprocess.run(
        scheduler_argv(jobs_dir, db_url, "run"),
        env=daemon_env(Path(tempfile.mkdtemp(prefix="sd-other-"))),
        cwd=jobs_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: a scheduler daemon ({socket.gethostname()}:{first.proc.pid}:")
    assert last.endswith(
        "already runs for this store: stop it first; several daemons on one store "
        "(replicas) need PostgreSQL or MariaDB/MySQL"
    )
    assert first.proc.poll() is None


def test_a_lease_outside_two_seconds_to_five_minutes_is_refused_at_start(
    jobs_dir: Path, db_url: str, runtime_dir: Path
) -> None:
    for lease, why in (("1s", "a lease of 1s is outside 2s..5m"), ("6m", "a lease of 360s")):
        done = subprocess.run(
            scheduler_argv(jobs_dir, db_url, "run", "--lease", lease),
            env=daemon_env(runtime_dir),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: {why}"), done.stderr
        assert "pick e.g. --lease 10s" in done.stderr
    assert not Path(db_url.removeprefix("sqlite:///")).exists()  # refused before anything
