"""A command ends without tearing the interpreter down (``quick_exit.exit_now``: a tenth of a
second saved after a large reconcile), but its exit code and output are intact and what
was registered to run at exit still runs: here by a program that wraps the command line
(as bench/ and deploy scripts do) and registered an exit hook before calling it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import WriteJobs
from tests.daemon_helpers import daemon_env

JOB = "jobs:\n  a:\n    schedule: {cron: '0 3 * * *'}\n    run: {type: command, command: [echo]}\n"
WRAPPER = """\
import atexit, sys
marker = sys.argv.pop()
atexit.register(lambda: open(marker, "w").write("the exit hook ran"))
from scheduler.cli import main
main()
"""


def wrapped(runtime_dir: Path, marker: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", WRAPPER, *args, str(marker)]
    env = daemon_env(runtime_dir)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_a_command_s_exit_hooks_run_and_its_output_and_exit_code_stay(
    write_jobs: WriteJobs, runtime_dir: Path, tmp_path: Path
) -> None:
    good = write_jobs("good.yaml", JOB)
    bad = write_jobs("bad.yaml", JOB + "    retrys: 1\n")

    marker = tmp_path / "ok-marker"
    done = wrapped(runtime_dir, marker, "validate", str(good))
    assert (done.returncode, done.stdout.strip()) == (0, "ok: 1 job(s) in 1 file(s)"), done.stderr
    assert marker.read_text() == "the exit hook ran"

    marker = tmp_path / "bad-marker"
    done = wrapped(runtime_dir, marker, "validate", str(bad))
    assert done.returncode == 1
    assert f"{bad}:5:5: unknown key 'retrys'" in done.stdout + done.stderr
    assert marker.read_text() == "the exit hook ran"
