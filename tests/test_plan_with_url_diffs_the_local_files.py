"""`scheduler --url URL plan` plans the LOCAL checkout against the daemon's live store.

Regression (issue 15.2): a CI drift check with `--url ... plan --detailed-exitcode` reported
the daemon's own directory ("No changes", exit 0) while `--db` showed 1 update and 2 removals.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.cli import cli
from tests.api_helpers import StartApi
from tests.conftest import WriteJobs, simple_job
from tests.runner_helpers import http_server

DEPLOYED = """
jobs:
  report:
    schedule: {cron: "0 9 * * *"}
    run: {type: command, command: ["true"]}
  old-a:
    schedule: {interval: 1h}
    run: {type: command, command: ["true"]}
  old-b:
    schedule: {interval: 2h}
    run: {type: command, command: ["true"]}
"""


def _remote(url: str, checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "--url", url, "--jobs-dir", str(checkout), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _write(checkout: Path, name: str, text: str) -> Path:
    checkout.mkdir(exist_ok=True)
    path = checkout / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_a_checkout_that_differs_from_the_store_exits_2_with_its_changes(
    start_api: StartApi, write_jobs: WriteJobs, db_url: str, tmp_path: Path
) -> None:
    write_jobs("a.yaml", DEPLOYED)
    daemon = start_api()
    checkout = tmp_path / "checkout"
    local = _write(checkout, "a.yaml", simple_job("report", cron="30 9 * * *"))

    remote = _remote(daemon.base_url, checkout, "plan", "--detailed-exitcode")
    assert remote.returncode == 2, remote.stderr
    assert remote.stdout.splitlines() == [
        f"~ update report  ({local}:2)",
        '    schedule.cron: "0 9 * * *" -> "30 9 * * *"',
        f"- remove old-a  (was {daemon.jobs_dir / 'a.yaml'}:5)",
        f"- remove old-b  (was {daemon.jobs_dir / 'a.yaml'}:8)",
        "Plan: 0 to add, 1 to update, 2 to remove, 0 unchanged.",
    ]
    # The same as planning against the store directly.
    direct = CliRunner().invoke(cli, ["--jobs-dir", str(checkout), "--db", db_url, "plan"])
    assert direct.output.splitlines() == remote.stdout.splitlines()
    as_json = _remote(daemon.base_url, checkout, "plan", "-o", "json")
    assert json.loads(as_json.stdout) == {
        "add": [],
        "update": [{"id": "report", "fields": ["schedule.cron"]}],
        "remove": ["old-a", "old-b"],
        "unchanged": [],
    }
    # Planning changed nothing on the daemon's side.
    with daemon.client() as api:
        assert {j["id"] for j in api.get("/jobs").json()["jobs"]} >= {"report", "old-a", "old-b"}
        assert api.get("/plan").json()["update"] == []


def test_a_checkout_equal_to_the_store_exits_0(
    start_api: StartApi, write_jobs: WriteJobs, jobs_dir: Path, tmp_path: Path
) -> None:
    write_jobs("a.yaml", DEPLOYED)
    daemon = start_api()
    checkout = tmp_path / "checkout"
    shutil.copytree(jobs_dir, checkout)  # same jobs, another path: not a change

    result = _remote(daemon.base_url, checkout, "plan", "--detailed-exitcode")
    assert (result.returncode, result.stdout.strip()) == (0, "No changes: 3 job(s) up to date.")
    added = _write(checkout, "b.yaml", simple_job("new-one"))
    result = _remote(daemon.base_url, checkout, "plan", "--detailed-exitcode")
    assert result.returncode == 2
    assert f"+ add new-one: At 09:00  ({added}:2)" in result.stdout.splitlines()


def test_an_invalid_local_file_is_reported_here_and_nothing_is_sent(
    start_api: StartApi, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    write_jobs("a.yaml", DEPLOYED)
    daemon = start_api()
    checkout = tmp_path / "checkout"
    bad = _write(checkout, "a.yaml", simple_job("report", cron="0 9 * * MON-FOO"))

    result = _remote(daemon.base_url, checkout, "plan", "--detailed-exitcode")
    assert result.returncode == 1
    assert f"{bad}:4:13: cron: day-of-week field 'MON-FOO'" in result.stderr


def test_an_empty_checkout_is_refused_unless_allowed(
    start_api: StartApi, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    write_jobs("a.yaml", DEPLOYED)
    daemon = start_api()
    missing = tmp_path / "not-mounted"

    refused = _remote(daemon.base_url, missing, "plan", "--detailed-exitcode")
    assert refused.returncode == 1
    assert "refusing to remove them all" in refused.stderr
    allowed = _remote(daemon.base_url, missing, "plan", "--allow-empty", "-o", "json")
    assert json.loads(allowed.stdout)["remove"] == ["old-a", "old-b", "report"]


def test_many_changed_jobs_are_fetched_in_bounded_requests(
    start_api: StartApi, write_jobs: WriteJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests carry job ids only, a bounded number each (the API refuses large bodies)."""
    many = "jobs:\n" + "".join(
        f"  job-{n}:\n    schedule: {{interval: {n + 1}h}}\n    run: {{type: command, "
        'command: ["true"]}\n'
        for n in range(5)
    )
    write_jobs("a.yaml", many)
    daemon = start_api()
    checkout = tmp_path / "checkout"
    _write(checkout, "a.yaml", many.replace('["true"]', '["false"]'))
    monkeypatch.setattr("scheduler.remote_plan.SPECS_PER_REQUEST", 2)

    result = CliRunner().invoke(
        cli, ["--url", daemon.base_url, "--jobs-dir", str(checkout), "plan", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    updates = json.loads(result.output)["update"]
    assert updates == [{"id": f"job-{n}", "fields": ["run.command"]} for n in range(5)]
    with daemon.client() as api:
        too_many = api.post("/store/specs", json={"ids": [f"job-{n}" for n in range(1001)]})
        assert too_many.status_code == 422


def test_a_daemon_that_cannot_plan_local_files_is_named_with_what_to_do(
    write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    """An older daemon has no /store/jobs: say so, never fall back to its own directory."""
    write_jobs("a.yaml", DEPLOYED)
    with http_server(lambda _request: (404, b'{"detail": "Not Found"}', 0)) as old:
        result = CliRunner().invoke(
            cli, ["--url", old.url, "--jobs-dir", str(jobs_dir), "plan", "--detailed-exitcode"]
        )
        assert [r.path for r in old.received] == ["/store/jobs"]
    assert result.exit_code == 1
    assert f"the daemon at {old.url} cannot plan your files" in result.output
    assert "upgrade it, or run `scheduler --db URL plan` against its store" in result.output
