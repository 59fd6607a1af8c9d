"""The README's pre-commit examples work as written. Regression for issue 15.7: the
example pinned `rev: v0.1.0`, a tag that does not exist, so pre-commit failed to fetch it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def readme_examples() -> list[Any]:
    section = (ROOT / "README.md").read_text().split("### In CI and pre-commit", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", section, re.S)]


def test_no_example_pins_a_tag_that_was_never_made() -> None:
    examples = readme_examples()
    assert len(examples) == 2
    revs = [repo.get("rev") for config in examples for repo in config["repos"]]
    assert revs == ["<a commit SHA of this repository>", None]


def test_the_local_hook_is_the_published_hook_and_passes_on_this_repository() -> None:
    (published,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    local = readme_examples()[1]["repos"][0]
    assert local["repo"] == "local"
    (hook,) = local["hooks"]
    for key in ("id", "name", "entry", "files", "pass_filenames"):
        assert hook[key] == published[key], key
    assert hook["language"] == "system"
    files = [p for p in (ROOT / "jobs.d").iterdir() if re.search(hook["files"], f"jobs.d/{p.name}")]
    assert files  # the pattern picks up the example job files
    program, *args = shlex.split(hook["entry"])
    assert program == "scheduler"
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")
