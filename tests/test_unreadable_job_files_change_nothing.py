"""A job file that cannot be read is an error, never skipped: skipping it made `plan` say
"remove" for its jobs (issue 13.2: a dangling symlink after a half-mounted volume or a
broken ConfigMap swap deleted jobs; a symlink loop was skipped the same way). Also pins
issue 16.11: an out-of-range `at:` passed validate and crashed reconcile."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunCli, simple_job


def dangling(jobs_dir: Path, real: Path) -> str:
    (real / "b.yaml").unlink()
    return "b.yaml:1:1: symlink to"


def looping(jobs_dir: Path, real: Path) -> str:
    (jobs_dir / "b.yaml").unlink()
    (jobs_dir / "b.yaml").symlink_to("c.yaml")
    (jobs_dir / "c.yaml").symlink_to("b.yaml")
    return "b.yaml:1:1: symlink loop"


def directory(jobs_dir: Path, real: Path) -> str:
    (jobs_dir / "b.yaml").unlink()
    shutil.copytree(real, jobs_dir / "b.yaml")
    return "b.yaml:1:1: a directory named like a job file"


def out_of_range(jobs_dir: Path, real: Path) -> str:
    text = simple_job("b").replace('cron: "0 9 * * *"', "at: 9999-12-31T23:59:59-14:00")
    (real / "b.yaml").write_text(text)
    return "b.yaml:4:7: at: 9999-12-31T23:59:59-14:00 is out of range"


@pytest.mark.parametrize("breakage", [dangling, looping, directory, out_of_range])
def test_plan_and_reconcile_refuse_and_keep_every_job(
    breakage: Callable[[Path, Path], str], run_cli: RunCli, jobs_dir: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "b.yaml").write_text(simple_job("b"))
    (jobs_dir / "a.yaml").write_text(simple_job("a"))
    (jobs_dir / "b.yaml").symlink_to(real / "b.yaml")
    assert run_cli("reconcile").exit_code == 0
    before = run_cli("jobs", "-o", "json").stdout
    assert [job["id"] for job in json.loads(before)] == ["a", "b"]

    where = f"{jobs_dir}/{breakage(jobs_dir, real)}"
    for verb in ("validate", "plan", "reconcile"):
        result = run_cli(verb)
        assert result.exit_code == 1, f"{verb}: {result.output}"
        assert where in result.output, f"{verb}: {result.output}"
        assert "Traceback" not in result.output
    assert run_cli("jobs", "-o", "json").stdout == before
