"""The README's second command is the whole test suite on a fresh machine (issue 15, item 1):
`scripts/test` installs Debian's Chromium when it is missing, and `.ci/run` runs that same
command. A fresh machine is stood in for by a PATH without chromium, whose apt-get records what
it was asked to install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "env", "id", "dirname", "ls", "seq", "sleep", "pg_isready", "cat")


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md starts with no sh block"
    return block.group(1).replace("\\\n", " ").strip().splitlines()


def test_the_readme_gives_two_commands_and_ci_runs_the_second() -> None:
    install, tests = readme_commands()
    assert "pip install -e" in install and install.rstrip().endswith("scheduler run")
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^{re.escape(tests)}$", ci, re.M), f".ci/run does not run {tests!r}"


def test_scripts_test_installs_chromium_where_it_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python").symlink_to(sys.executable)
    calls = tmp_path / "apt-calls"
    apt = bin_dir / "apt-get"
    apt.write_text(f'#!{shutil.which("bash")}\necho "$*" >> {calls}\n')
    apt.chmod(0o755)
    env = {**os.environ, "PATH": str(bin_dir), "SCHEDULER_TEST_PG_URL": "unused"}

    done = subprocess.run(
        [str(ROOT / "scripts" / "test"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "pytest" in done.stdout + done.stderr
    assert "install -y -qq chromium chromium-driver faketime" in calls.read_text()
