"""An app that embeds the Scheduler in a plain script, with no ``if __name__ ==
"__main__"`` guard, or fed to ``python -`` on stdin: its job files parse (in child processes
that no longer run the app's script again), its jobs are there, and the script's own
``__file__`` is untouched. Before, each child re-ran the script (or found no file to run),
died, and every file was refused as "past the parse limit"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WriteJobs

JOBS = """\
jobs:
  hello:
    schedule: {interval: 1h}
    run: {type: command, command: [echo, hi]}
"""
APP = """\
import asyncio
import sys

from scheduler import Scheduler

print("app starts", flush=True)
sched = Scheduler(jobs_dir=sys.argv[1], db=sys.argv[2])


async def main() -> None:
    async with sched:
        print("jobs:", [job["id"] for job in await sched.jobs()], flush=True)
    print("file:", globals().get("__file__"), flush=True)


asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_an_unguarded_app_script_loads_its_job_files(
    how: str, tmp_path: Path, write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    script = tmp_path / "app.py"
    script.write_text(APP)
    args = [str(jobs_dir), db_url]
    argv = [sys.executable, str(script), *args] if how == "script" else [sys.executable, "-", *args]
    done = subprocess.run(
        argv,
        input=APP if how == "stdin" else None,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stderr
    file = str(script) if how == "script" else "<stdin>"
    assert done.stdout.splitlines() == ["app starts", "jobs: ['hello']", f"file: {file}"], (
        done.stderr
    )
    assert "parse limit" not in done.stderr
