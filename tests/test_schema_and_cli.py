"""The committed schema.json, `scheduler schema`, `preview`, and every command's --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.cli import cli
from tests.conftest import RunCli, WriteJobs, simple_job

ROOT = Path(__file__).parent.parent


def test_committed_schema_is_current() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads((ROOT / "schema.json").read_text()), (
        "schema.json is stale: run `scheduler schema > schema.json` and commit it"
    )


def test_schema_lists_every_builtin_run_type_and_rejects_unknown_keys() -> None:
    schema = json.loads(CliRunner().invoke(cli, ["schema"]).stdout)
    mapping = schema["$defs"]["JobSpec"]["properties"]["run"]["discriminator"]["mapping"]
    assert sorted(mapping) == ["celery", "cleanup", "command", "http", "python"]
    assert schema["$defs"]["JobSpec"]["additionalProperties"] is False


def test_example_files_point_editors_at_the_schema() -> None:
    for path in (ROOT / "jobs.d").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../schema.json\n")


def test_preview_cron_in_a_zone(run_cli: RunCli) -> None:
    result = run_cli(
        "preview",
        "0 9 * * 1-5",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-11-27T12:00:00+00:00",
        "--count",
        "3",
    )
    assert result.exit_code == 0, result.output
    # Friday 27th has passed 09:00; next are Monday and Tuesday (1-5 is Monday-Friday).
    assert result.stdout.splitlines() == [
        "2026-11-30T09:00:00+01:00",
        "2026-12-01T09:00:00+01:00",
        "2026-12-02T09:00:00+01:00",
    ]


def test_preview_a_declared_job_as_json(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", simple_job("weekly", cron="0 8 * * MON"))
    result = run_cli(
        "preview", "--job", "weekly", "--from", "2026-11-27T00:00:00Z", "-n", "2", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ["2026-11-30T08:00:00+00:00", "2026-12-07T08:00:00+00:00"]


def test_preview_of_an_interval_and_a_one_shot(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  every:
    schedule: {interval: 90m}
    run: {type: cleanup}
  once:
    schedule: {at: "2027-01-04T09:00:00", timezone: Europe/Berlin}
    run: {type: cleanup}
""",
    )
    every = run_cli("preview", "--job", "every", "--from", "2026-11-27T00:00:00Z", "-n", "2")
    assert every.stdout.splitlines() == ["2026-11-27T01:30:00+00:00", "2026-11-27T03:00:00+00:00"]
    once = run_cli("preview", "--job", "once", "--from", "2026-11-27T00:00:00Z", "-n", "5")
    assert once.stdout.splitlines() == ["2027-01-04T09:00:00+01:00"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0 9 * * FRI#3"], "#"),
        (["0 9 * *"], "cron needs 5 fields"),
        (["0 9 * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--job", "nope"], "no job 'nope'"),
    ],
)
def test_preview_errors_say_what_to_do(run_cli: RunCli, args: list[str], message: str) -> None:
    result = run_cli("preview", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_preview_needs_exactly_one_of_cron_or_job(run_cli: RunCli) -> None:
    result = run_cli("preview")
    assert result.exit_code == 2
    assert "give either a CRON expression or --job ID" in result.output


def test_every_command_has_help_with_an_example() -> None:
    for name, command in cli.commands.items():
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example:" in result.stdout, f"`scheduler {name} --help` has no example"
        assert command.help


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  x: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"{bad}:3:1: YAML syntax error")
    assert "Traceback" not in proc.stderr
