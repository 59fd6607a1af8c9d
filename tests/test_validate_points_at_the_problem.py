"""`scheduler validate` reports every class of bad input as PATH:LINE:COL: message,
pointing at the offending key or value, with exit code 1 and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunCli, WriteJobs, simple_job

BASE = """\
jobs:
  report:
    schedule:
      {schedule}
    run:
      {run}
"""


def job(
    schedule: str = 'cron: "0 9 * * *"',
    run: str = 'type: command\n      command: ["true"]',
    extra: str = "",
) -> str:
    return BASE.format(schedule=schedule, run=run) + extra


BAD_INPUTS = [
    pytest.param(
        "jobs:\n  report:\n    schedule: {cron: '0 * * * *'\n    run: {type: command}\n",
        "4:5",
        "YAML syntax error",
        id="yaml-syntax",
    ),
    pytest.param(
        job(extra="    timeot: 5m\n"),
        "8:5",
        "unknown key 'timeot' (did you mean 'timeout'?)",
        id="unknown-key",
    ),
    pytest.param(job(schedule='cron: "61 * * * *"'), "4:13", "minute", id="bad-cron-field"),
    pytest.param(job(schedule='cron: "0 9 * * MON-FOO"'), "4:13", "FOO", id="bad-weekday"),
    pytest.param(
        job(extra="    schedule: {interval: 5m}\n"),
        "8:5",
        "duplicate key 'schedule' (first defined at line 3)",
        id="duplicate-key",
    ),
    pytest.param(
        job(schedule='cron: "0 9 * * *"\n      timezone: Europe/Berln'),
        "5:17",
        "unknown time zone 'Europe/Berln'",
        id="bad-zone",
    ),
    pytest.param(
        job(schedule='cron: "0 9 * * *"\n      interval: 5m'),
        "5:7",
        "schedule has both cron and interval: keep exactly one",
        id="two-triggers",
    ),
    pytest.param(
        job(extra="    timeout: 5 minutes\n"),
        "8:14",
        "timeout: expected a duration like 90s",
        id="bad-duration",
    ),
    pytest.param(
        job(run="type: command\n      command: []"),
        "7:16",
        "command is an empty list",
        id="empty-command",
    ),
    pytest.param(
        "- just\n- a list\n",
        "1:1",
        "a job file must be a mapping with a 'jobs:' key",
        id="non-mapping-file",
    ),
    pytest.param(
        job(run="type: shell\n      command: ls"),
        "6:13",
        "unknown run type 'shell': use one of celery, cleanup, command, http, python",
        id="unknown-handler-type",
    ),
    pytest.param(
        job(run="type: command\n      command: !!python/object/apply:os.system [x]"),
        "7:16",
        "YAML tag '!!python/object/apply:os.system' is not allowed",
        id="python-tag",
    ),
    pytest.param(
        job(schedule="at: 2026-02-30T09:00:00Z"),
        "4:11",
        "at: not a valid ISO 8601 date-time (day value is outside expected range)",
        id="impossible-date",
    ),
    pytest.param(
        job(run="type: command"), "5:5", "missing required key 'command'", id="missing-key"
    ),
    pytest.param(
        job(schedule="timezone: UTC"),
        "3:5",
        "schedule needs one of cron, interval or at",
        id="no-trigger",
    ),
    pytest.param(
        "jobs:\n  Bad_Id:\n    schedule: {interval: 1h}\n",
        "2:3",
        "job id 'Bad_Id' must be lowercase",
        id="bad-id",
    ),
    pytest.param(job(schedule='cron: "0 0 30 2 *"'), "4:13", "never fires", id="never-fires"),
    pytest.param(
        "jobs:\n  loop: &self [*self]\n",
        "2:9",
        "recursive YAML alias: a value cannot contain itself",
        id="recursive-alias",
    ),
    pytest.param(  # issue 16.9: the built-in cleanup was silently replaced
        "jobs:\n  scheduler.cleanup:\n    schedule: {interval: 1h}\n",
        "2:3",
        "job id 'scheduler.cleanup' is reserved",
        id="reserved-id",
    ),
    pytest.param(  # issue 16.11: validated, then reconcile died with an OverflowError
        job(schedule="at: 9999-12-31T23:59:59-14:00"),
        "4:7",
        "at: 9999-12-31T23:59:59-14:00 is out of range",
        id="at-overflows",
    ),
    pytest.param(
        job(schedule='cron: "0 9 * * *"\n      start: 0001-01-01T00:00:00+01:00'),
        "5:7",
        "start: 0001-01-01T00:00:00+01:00 is out of range",
        id="start-underflows",
    ),
    pytest.param(
        job(extra="    timeout: 99999999999d\n"),
        "8:14",
        "duration '99999999999d' is longer than 100 years",
        id="huge-duration",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD_INPUTS)
def test_bad_input_is_reported_at_its_line_and_column(
    run_cli: RunCli, write_jobs: WriteJobs, text: str, where: str, message: str
) -> None:
    path = write_jobs("bad.yaml", text)
    result = run_cli("validate")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{path}:{where}: " in result.stdout, result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith(f"{path}:{where}: "))
    assert message in line


def test_python_tag_never_runs_anything(
    run_cli: RunCli, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    write_jobs("evil.yaml", f"jobs: !!python/object/apply:os.system ['touch {marker}']\n")
    result = run_cli("validate")
    assert result.exit_code == 1
    assert not marker.exists()


def test_duplicate_id_across_files_names_both_files(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    first = write_jobs("a.yaml", simple_job("backup"))
    second = write_jobs("b.yaml", "# another team's file\n" + simple_job("backup"))
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{second}:3:3: job id 'backup' is already defined in {first}:2: "
        "ids are unique across all job files, rename one"
    ]


def test_all_problems_in_all_files_are_reported_at_once(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    a = write_jobs("a.yaml", job(extra="    timeot: 5m\n    retries: {attempts: -1}\n"))
    b = write_jobs("b.yaml", job(schedule='cron: "0 25 * * *"'))
    result = run_cli("validate", "--output", "json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    assert [(p["path"], p["line"]) for p in problems] == [(str(a), 8), (str(a), 9), (str(b), 4)]
    assert set(problems[0]) == {"path", "line", "col", "message"}


def test_valid_files_exit_zero(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", simple_job("one"))
    write_jobs("sub/b.yml", simple_job("two"))
    result = run_cli("validate")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: 2 job(s) in 2 file(s)\n"
    assert json.loads(run_cli("validate", "--output", "json").stdout) == []


def test_validate_takes_explicit_paths(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    good = write_jobs("good.yaml", simple_job("one"))
    write_jobs("bad.yaml", "jobs: [")
    assert run_cli("validate", str(good)).exit_code == 0
    missing = run_cli("validate", "nowhere.yaml")
    assert missing.exit_code == 1
    assert "nowhere.yaml:1:1: no such file or directory" in missing.stdout


def test_error_in_defaults_points_at_the_defaults_block(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    path = write_jobs("d.yaml", "defaults:\n  timeout: soon\n" + simple_job("one"))
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}:2:12: timeout: expected a duration")


def test_one_file_must_hold_one_document(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    path = write_jobs("two.yaml", simple_job("one") + "---\n" + simple_job("two"))
    result = run_cli("validate")
    assert result.exit_code == 1
    assert f"{path}:8:1: YAML syntax error: a job file holds one YAML document" in result.stdout


def test_hidden_and_editor_temp_files_are_ignored(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", simple_job("one"))
    write_jobs(".a.yaml.swp.yaml", "broken: [")
    write_jobs("..data/a.yaml", "broken: [")
    write_jobs("notes.txt", "not yaml: [")
    assert run_cli("validate").exit_code == 0
