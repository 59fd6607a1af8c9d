"""Jobs get a clean environment: the daemon's own settings (``SCHEDULER_*``) and URLs with
passwords never reach them; ``inherit_env`` says what else does. Every value a job's
``${VAR}`` resolved is shown as ``***`` in its history and notifications (issue 13, item 4).
A NUL byte in the output reaches command notifiers too (issue 16, item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for
from tests.runner_helpers import Received, command_job, http_server, job, json_body, run_once

TOKEN = "api-token-0123456789"
DB_URL = "postgresql://scheduler:db-password-42@db.internal/scheduler"
SECRET = "s3cret-value-for-the-job"


@pytest.fixture
def daemon_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's environment, as ``scheduler run`` would have it."""
    monkeypatch.setenv("SCHEDULER_API_TOKEN", TOKEN)
    monkeypatch.setenv("SCHEDULER_DB", DB_URL)
    monkeypatch.setenv("BACKUP_DATABASE_URL", DB_URL)
    monkeypatch.setenv("SECRET", SECRET)
    monkeypatch.setenv("PLAIN_SETTING", "visible")


def test_a_job_printing_the_daemons_token_and_its_own_secret_shows_neither(
    tmp_path: Path, daemon_env: None
) -> None:
    """Regression: SCHEDULER_API_TOKEN and SCHEDULER_DB were in every job's environment,
    and what a job printed was kept and served as it was."""
    seen = tmp_path / "notified.json"
    script = (
        'echo "token=$SCHEDULER_API_TOKEN db=$SCHEDULER_DB backup=$BACKUP_DATABASE_URL"; '
        'echo "secret=$PASSWORD plain=$PLAIN_SETTING"; echo "$PASSWORD" >&2; exit 3'
    )
    notifier = {
        "type": "command",
        "command": ["sh", "-c", f'printf %s "$SCHEDULER_OUTPUT_TAIL" > {seen}'],
    }
    spec = command_job(script, env={"PASSWORD": "${SECRET}"}, on_failure=[notifier])

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "failure"
    assert row["output_tail"] == "token= db= backup=\nsecret=*** plain=visible\n***\n"
    assert seen.read_text() == row["output_tail"]  # what the alert got: masked too
    stored = json.dumps(row)
    for value in (TOKEN, DB_URL, SECRET):
        assert value not in stored


def test_inherit_env_false_passes_only_a_path_and_the_declared_env(
    tmp_path: Path, daemon_env: None
) -> None:
    spec = command_job(["env"], env={"GIVEN": "yes"}, inherit_env=False)

    (row,) = run_once(tmp_path, spec)

    names = {line.split("=", 1)[0] for line in row["output_tail"].splitlines()}
    assert names == {
        "PATH",
        "GIVEN",
        "SCHEDULER_JOB_ID",
        "SCHEDULER_RUN_ID",
        "SCHEDULER_ATTEMPT",
        "SCHEDULER_RUN_MARK",
    }


def test_inherit_env_as_a_list_passes_those_names_only(tmp_path: Path, daemon_env: None) -> None:
    spec = command_job(
        ["sh", "-c", 'echo "$PLAIN_SETTING|$SECRET|$BACKUP_DATABASE_URL"'],
        inherit_env=["PLAIN_SETTING", "BACKUP_DATABASE_URL"],
    )

    (row,) = run_once(tmp_path, spec)

    assert row["output_tail"] == "visible||\n"  # a URL with a password is never passed


def test_inherit_env_refuses_the_schedulers_own_settings() -> None:
    with pytest.raises(ValueError, match="SCHEDULER_DB is the scheduler's own setting"):
        command_job(["true"], inherit_env=["SCHEDULER_DB"])


def test_a_nul_byte_in_the_output_does_not_stop_the_failure_alert(tmp_path: Path) -> None:
    """Regression: the output tail went into SCHEDULER_OUTPUT_TAIL as it was, and a NUL
    byte made every command notifier fail with "embedded null byte": no alert went out."""
    seen = tmp_path / "alert.txt"
    notifier = {
        "type": "command",
        "command": [
            "sh",
            "-c",
            f'printf "%s|%s" "$SCHEDULER_OUTCOME" "$SCHEDULER_OUTPUT_TAIL" > {seen}',
        ],
    }
    spec = command_job(["sh", "-c", "printf 'a\\000b'; exit 1"], on_failure=[notifier])

    (row,) = run_once(tmp_path, spec)

    assert row["error"] == "exited with code 1"  # no notifier failure added
    assert seen.read_text() == "failure|a\ufffdb"


def test_http_resolves_variables_at_run_time_and_masks_them(
    tmp_path: Path, daemon_env: None
) -> None:
    """Regression: headers were sent as written, so tokens were written into job files and
    stored; now ``${VAR}`` is resolved when the request is made and never stored."""

    def echo(request: Received) -> tuple[int, bytes, float]:
        return 200, f"{request.path} {request.headers['Authorization']}".encode(), 0

    with http_server(echo) as server:
        spec = job(
            run={
                "type": "http",
                "url": f"{server.url}/hook/${{SECRET}}?literal=$${{KEPT}}&dollar=$5",
                "method": "POST",
                "headers": {"Authorization": "Bearer ${SECRET}"},
                "json": {"token": "${SECRET}", "list": ["$${SECRET}"]},
            }
        )
        assert spec["run"]["headers"] == {"Authorization": "Bearer ${SECRET}"}  # stored as is
        (row,) = run_once(tmp_path, spec)

    (request,) = server.received
    assert request.path == f"/hook/{SECRET}?literal=${{KEPT}}&dollar=$5"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert json_body(request) == {"token": SECRET, "list": ["${SECRET}"]}
    assert row["outcome"] == "success"
    assert row["output_tail"] == "HTTP 200 OK\n/hook/***?literal=${KEPT}&dollar=$5 Bearer ***"


def test_http_with_an_unset_variable_fails_and_names_it(tmp_path: Path) -> None:
    spec = job(run={"type": "http", "url": "http://127.0.0.1:9/${NOT_SET_ANYWHERE}"})

    (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "failure"
    assert row["error"] == (
        "url uses ${NOT_SET_ANYWHERE}, which is not set in the scheduler's environment: "
        "set it where the daemon starts"
    )


def test_a_long_error_is_kept_capped_at_its_end(tmp_path: Path) -> None:
    spec = job(
        run={
            "type": "python",
            "function": "tests.runner_helpers:plain_fails",
            "kwargs": {"reason": "x" * 100_000 + "THE END"},
        }
    )

    (row,) = run_once(tmp_path, spec)

    assert len(row["error"]) < 17_000
    assert row["error"].startswith("[")
    assert "characters cut]" in row["error"]
    assert row["error"].rstrip().endswith("THE END")


def test_a_daemon_keeps_its_token_and_the_jobs_secret_out_of_history(
    start_daemon: StartDaemon, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  leaky:
    schedule: {cron: "0 9 * * *"}
    run:
      type: command
      command: 'echo "token=$SCHEDULER_API_TOKEN secret=$PASSWORD"'
      env: {PASSWORD: "${SECRET}"}
""",
    )
    daemon = start_daemon(env={"SCHEDULER_API_TOKEN": TOKEN, "SECRET": SECRET})
    assert daemon.cli("trigger", "leaky").returncode == 0

    def finished() -> str | None:
        done = daemon.cli("history", "leaky", "-o", "json")
        runs = json.loads(done.stdout) if done.returncode == 0 else []
        return done.stdout if runs and runs[0]["outcome"] != "running" else None

    history = json.loads(wait_for(finished, "the run"))
    assert [(r["outcome"], r["output_tail"]) for r in history] == [
        ("success", "token= secret=***\n")
    ]
    assert daemon.stop() == 0
    stored = Path(db_url.removeprefix("sqlite:///")).read_bytes()
    assert b"${SECRET}" in stored  # the job as written
    assert SECRET.encode() not in stored and TOKEN.encode() not in stored
