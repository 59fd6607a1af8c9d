"""Tokens with roles (issue 9, Security): SCHEDULER_API_TOKENS names a file of
``TOKEN ROLE [NAME]`` lines; read may only look, operate may act on jobs, admin may also
reconcile; SCHEDULER_API_TOKEN stays one admin token. Against a real daemon over HTTP, and a
bad tokens file refused at start-up with PATH:LINE:COL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.cli import cli
from tests.api_helpers import StartApi
from tests.conftest import WriteJobs, simple_job

READ = "rEad-only-6dW1pQ9xvT0kLm3s"
OPERATE = "oPerate-Hq2Yx7bN5cV8zR1a"
ADMIN = "aDmin-Kc4Tn8Wq1Ls6Pj9e"
UNNAMED = "uNnamed-Gf3Rb7Mk2Xd5Yh0q"
ENV_ADMIN = "eNv-admin-Bv9Sm2Qz6Jt1Wn4c"
TOKENS = f"""\
# token role [name]
{READ} read dashboard
{OPERATE}   operate   ci-deploy

{ADMIN} admin ops
{UNNAMED} read
"""

TEMPLATE = """\
templates:
  note:
    params:
      word: {type: string, required: true}
    run: {type: command, command: ["echo", "${params.word}"]}
"""


def test_each_role_may_do_what_it_names_and_no_more(
    start_api: StartApi, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    write_jobs("a.yaml", simple_job("report"))
    write_jobs("t.yaml", TEMPLATE)
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    daemon = start_api(env={"SCHEDULER_API_TOKENS": str(tokens), "SCHEDULER_API_TOKEN": ENV_ADMIN})
    with (
        daemon.client() as nobody,
        daemon.client("not-a-token") as stranger,
        daemon.client(READ) as read,
        daemon.client(UNNAMED) as unnamed,
        daemon.client(OPERATE) as operate,
        daemon.client(ADMIN) as admin,
        daemon.client(ENV_ADMIN) as env_admin,
    ):
        for client in (nobody, stranger):
            refused = client.get("/jobs")
            assert refused.status_code == 401
            assert "SCHEDULER_API_TOKENS" in refused.json()["detail"]
            assert client.post("/jobs/report/pause").status_code == 401

        # read: every GET (and the POST that `plan --url` reads with), nothing that acts.
        for client in (read, unnamed):
            assert [j["id"] for j in client.get("/jobs").json()["jobs"]] == ["report"]
            assert client.get("/jobs/report/runs").status_code == 200
            assert client.post("/store/specs", json={"ids": ["report"]}).status_code == 200
        for path in ("/jobs/report/trigger", "/jobs/report/pause", "/reconcile"):
            refused = read.post(path)
            assert refused.status_code == 403, path
        detail = read.post("/jobs/report/pause").json()["detail"]
        assert detail.startswith(
            "token 'dashboard' has the role read; POST /jobs/report/pause needs operate"
        )
        assert (
            unnamed.post("/jobs/report/trigger")
            .json()["detail"]
            .startswith(
                "token 'token-"  # a hash prefix names it: never the token
            )
        )

        # Templates and instances: read may look, creating and changing is operate's.
        assert read.get("/templates").json()["total"] == 1
        create = {"id": "note-1", "params": {"word": "hi"}, "schedule": {"interval": "1h"}}
        refused = read.post("/templates/note/jobs", json=create)
        assert refused.status_code == 403
        assert "POST /templates/note/jobs needs operate" in refused.json()["detail"]
        assert operate.post("/templates/note/jobs", json=create).status_code == 201
        for method, path, body in (
            ("PATCH", "/jobs/note-1", {"params": {"word": "ho"}}),
            ("POST", "/jobs/note-1/runs", {}),
            ("DELETE", "/jobs/note-1", None),
        ):
            assert read.request(method, path, json=body).status_code == 403, path
            assert operate.request(method, path, json=body).status_code < 300, path

        # operate: acts on jobs, but a reconcile is admin's.
        assert operate.post("/jobs/report/pause").json()["result"]["paused"] is True
        assert operate.post("/jobs/report/resume").json()["result"]["paused"] is False
        assert operate.post("/jobs/report/trigger").status_code == 200
        refused = operate.post("/reconcile")
        assert refused.status_code == 403
        assert "POST /reconcile needs admin" in refused.json()["detail"]

        # admin, from the file or SCHEDULER_API_TOKEN: everything.
        for client in (admin, env_admin):
            assert client.post("/reconcile").json()["unchanged"] == ["report"]
        assert nobody.get("/healthz").status_code == 200

    log = daemon.log()
    assert "API POST /jobs/report/pause by ci-deploy (operate): 200" in log
    assert "API POST /templates/note/jobs by ci-deploy (operate): 201" in log
    assert "API DELETE /jobs/note-1 by ci-deploy (operate): 204" in log
    assert "API POST /jobs/report/trigger by ci-deploy (operate): 200" in log
    assert "API POST /reconcile by ops (admin): 200" in log
    assert "API POST /reconcile by SCHEDULER_API_TOKEN (admin): 200" in log
    assert "API POST /reconcile refused: token 'ci-deploy' has role operate" in log
    for token in (READ, OPERATE, ADMIN, UNNAMED, ENV_ADMIN, "not-a-token"):
        assert token not in log

    # The command line through --url: a read token plans, and is told what it may not do.
    env = {
        **daemon.env,
        "SCHEDULER_URL": daemon.base_url,
        "SCHEDULER_API_TOKEN": READ,
        "SCHEDULER_API_TOKENS": "",
    }

    def cli_(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scheduler", "--jobs-dir", str(daemon.jobs_dir), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert json.loads(cli_("plan", "-o", "json").stdout)["unchanged"] == ["report"]
    paused = cli_("pause", "report")
    assert paused.returncode == 1
    assert "HTTP 403: token 'dashboard' has the role read" in paused.stderr


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (f"{READ} read a\n{READ} admin b\n", "2:1", "this token is already on line 1"),
        (f"{READ} read a\n{OPERATE} operate a\n", "2:", "name 'a' is already used on line 1"),
        (f"# tokens\n{READ} writer\n", "2:", "unknown role 'writer': use one of read, operate"),
        (f"{READ}\n", "1:1", "expected 'TOKEN ROLE [NAME]' (1 field(s) here)"),
        (f"{READ} read a b\n", "1:", "expected 'TOKEN ROLE [NAME]' (4 field(s) here)"),
        ('"quoted" read\n', "1:1", "the token has characters a bearer token cannot carry"),
        (f"{READ} read SCHEDULER_API_TOKEN\n", "1:", "is the SCHEDULER_API_TOKEN token's"),
        ("# only a comment\n\n", "1:1", "no tokens: add lines 'TOKEN ROLE [NAME]'"),
    ],
)
def test_a_bad_tokens_file_stops_the_daemon_at_start_up(
    tmp_path: Path, jobs_dir: Path, text: str, where: str, message: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(text)
    db = tmp_path / "s.db"
    result = CliRunner().invoke(
        cli,
        ["--jobs-dir", str(jobs_dir), "--db", f"sqlite:///{db}", "run", "--http", "0"],
        env={"SCHEDULER_API_TOKENS": str(tokens), "SCHEDULER_API_TOKEN": ""},
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: {tokens}:{where}"), result.output
    assert message in result.output
    assert READ not in result.output and OPERATE not in result.output
    assert not db.exists()  # refused before anything was touched


def test_a_missing_or_unreadable_tokens_file_stops_the_daemon(
    tmp_path: Path, jobs_dir: Path
) -> None:
    def run(tokens: Path) -> str:
        result = CliRunner().invoke(
            cli,
            ["--jobs-dir", str(jobs_dir), "--db", f"sqlite:///{tmp_path / 's.db'}", "run"],
            env={"SCHEDULER_API_TOKENS": str(tokens)},
        )
        assert result.exit_code == 1, result.output
        return result.output

    missing = tmp_path / "nope"
    assert run(missing) == (
        f"error: {missing}: no such file (SCHEDULER_API_TOKENS): create it or fix the path\n"
    )
    assert run(tmp_path) == (  # a directory: as unreadable as a file without permission
        f"error: {tmp_path}: cannot read the tokens file: Is a directory (SCHEDULER_API_TOKENS)\n"
    )
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked"
        locked.write_text(f"{READ} read\n")
        locked.chmod(0)
        assert "cannot read the tokens file: Permission denied" in run(locked)
