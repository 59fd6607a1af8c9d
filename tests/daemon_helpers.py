"""Run ``scheduler run`` as a real subprocess and watch it only from outside: its log file,
its exit code, and the public command line against the same store. Used by
``test_daemon.py``; polls with a deadline instead of sleeping."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from click.testing import CliRunner

from scheduler.cli import cli

T = TypeVar("T")

# Seconds any change may take to show. Only a bound (every wait ends as soon as the change
# shows): generous, for a CI machine running the suite's parallel workers (and more) on 2 cores.
DEADLINE = 10.0
STEP = 0.05


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE) -> T:
    """Call ``probe`` until it returns something other than None/False, or fail."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(STEP)


def daemon_env(runtime_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return env


def scheduler_argv(jobs_dir: Path, db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "scheduler", "--jobs-dir", str(jobs_dir), "--db", db_url, *args]


BUILTIN_PREFIX = "scheduler."  # jobs the scheduler adds itself (the history cleanup)


def jobs(jobs_dir: Path, db_url: str) -> dict[str, dict[str, Any]]:
    """``scheduler jobs -o json`` (in-process: it only reads the store), keyed by id;
    built-in jobs left out, so tests see exactly the jobs their files declare."""
    result = CliRunner().invoke(
        cli, ["--jobs-dir", str(jobs_dir), "--db", db_url, "jobs", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    return {job["id"]: job for job in listing if not job["id"].startswith(BUILTIN_PREFIX)}


class DaemonProcess:
    """One ``scheduler run`` subprocess with its stderr log in a file."""

    def __init__(
        self,
        jobs_dir: Path,
        db_url: str,
        runtime_dir: Path,
        log_path: Path,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.jobs_dir = jobs_dir
        self.db_url = db_url
        self.env = {**daemon_env(runtime_dir), **(env or {})}
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                scheduler_argv(jobs_dir, db_url, "run", *extra),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=jobs_dir.parent,
            )

    def log(self, since: int = 0) -> str:
        return self.log_path.read_text(errors="replace")[since:]

    def mark(self) -> int:
        """A position in the log: later ``wait_log(..., since=mark)`` ignores older lines."""
        return len(self.log())

    def tail(self, lines: int = 60) -> str:
        """The end of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_log(self, pattern: str, since: int = 0, timeout: float = DEADLINE) -> re.Match[str]:
        def probe() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode})")
            return re.search(pattern, self.log(since), re.MULTILINE)

        try:
            return wait_for(probe, f"log line {pattern!r}", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- daemon log ---\n{self.tail()}") from None

    def wait_ready(self) -> None:
        self.wait_log(r"scheduler running", timeout=3 * DEADLINE)

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """A ``scheduler`` command in its own process, seeing the daemon's runtime dir."""
        return subprocess.run(
            scheduler_argv(self.jobs_dir, self.db_url, *args),
            env=self.env,
            cwd=self.jobs_dir.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def jobs(self) -> dict[str, dict[str, Any]]:
        return jobs(self.jobs_dir, self.db_url)

    def history(self, *args: str) -> list[dict[str, Any]]:
        """``scheduler history ARGS -o json`` on this daemon's store: runs, newest first."""
        result = self.cli("history", *args, "--limit", "1000", "-o", "json")
        assert result.returncode == 0, result.stderr
        runs: list[dict[str, Any]] = json.loads(result.stdout)
        return runs

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 2 * DEADLINE) -> int:
        """Signal the daemon and return its exit code (killing it if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"daemon ignored signal {sig} for {timeout} s:\n{self.tail()}"
                ) from None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
