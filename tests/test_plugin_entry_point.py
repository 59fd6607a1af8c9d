"""A handler type installed as a package, found through the `scheduler.handlers` entry
point: its args validate, appear in the schema, and its jobs run like built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import WriteJobs
from tests.daemon_helpers import DEADLINE, wait_for

PLUGIN = """
from pathlib import Path
from pydantic import BaseModel
from scheduler.handlers import HandlerType
from scheduler.handlers.base import Result


class StampArgs(BaseModel):
    path: str
    text: str = "stamped"


async def stamp(ctx, args):
    Path(args.path).write_text(f"{args.text} by {ctx.job_id}")
    return Result("success", output=f"wrote {args.path}")


HANDLER = HandlerType("stamp", StampArgs, stamp)
"""


def install_plugin(site: Path) -> None:
    """What `pip install` leaves behind: the module and its dist-info with the entry point."""
    site.mkdir()
    (site / "stamp_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "stamp_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stamp-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[scheduler.handlers]\nstamp = stamp_plugin:HANDLER\n")


def test_an_installed_plugin_validates_appears_in_the_schema_and_runs(
    tmp_path: Path, jobs_dir: Path, write_jobs: WriteJobs
) -> None:
    site = tmp_path / "site"
    install_plugin(site)
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "SCHEDULER_JOBS_DIR": str(jobs_dir),
        "SCHEDULER_DB": f"sqlite:///{tmp_path}/s.db",
    }

    def scheduler(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scheduler", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    schema = json.loads(scheduler("schema").stdout)
    assert "stamp" in schema["$defs"]["JobSpec"]["properties"]["run"]["discriminator"]["mapping"]
    assert set(schema["$defs"]["StampRun"]["properties"]) == {"path", "text", "type"}

    target = tmp_path / "stamp.txt"
    write_jobs(
        "a.yaml",
        f"""\
jobs:
  stamper:
    schedule: {{interval: 1h}}
    run: {{type: stamp, path: "{target}", txet: typo}}
""",
    )
    typo = scheduler("validate")
    assert typo.returncode == 1
    col = (jobs_dir / "a.yaml").read_text().splitlines()[3].index("txet") + 1
    assert f"a.yaml:4:{col}: unknown key 'txet' (did you mean 'text'?)" in typo.stdout

    write_jobs(
        "a.yaml",
        f"""\
jobs:
  stamper:
    schedule: {{interval: 1h}}
    run: {{type: stamp, path: "{target}"}}
""",
    )
    assert scheduler("reconcile").returncode == 0
    # Runs belong to a daemon (a command line never runs a job itself).
    daemon = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "run"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The daemon starts meanwhile: as long as wait_ready gives any daemon to start.
        wait_for(
            lambda: scheduler("trigger", "stamper").returncode == 0 or None,
            "a trigger",
            timeout=3 * DEADLINE,
        )
        wait_for(lambda: target.exists() or None, "the stamp")
        assert target.read_text() == "stamped by stamper"

        def finished() -> dict[str, str] | None:
            runs = json.loads(scheduler("history", "stamper", "-o", "json").stdout)
            return runs[0] if runs and runs[0]["outcome"] != "running" else None

        run = wait_for(finished, "the run's history")
        assert (run["outcome"], run["output_tail"]) == ("success", f"wrote {target}")
    finally:
        daemon.terminate()
        daemon.wait(30)

    without = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    missing = subprocess.run(
        [sys.executable, "-m", "scheduler", "validate"],
        env=without,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "unknown run type 'stamp'" in missing.stdout
    assert "or install the plugin that provides it" in missing.stdout
