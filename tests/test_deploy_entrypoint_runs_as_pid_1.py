"""The container image's entrypoint and HEALTHCHECK, run outside a container (no container
engine or image registry is available here): in a fresh PID namespace the daemon is PID 1,
takes its token from the mounted secret file, answers the health check, and stops cleanly on
SIGTERM (PID 1 ignores signals it has no handler for, so this is where a wrapper script
that forgets `exec` would hang until SIGKILL). The Dockerfile is checked to use these very
files."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_helpers import wait_for

DEPLOY = Path(__file__).parent.parent / "deploy"
UNSHARE = shutil.which("unshare")
# deploy/check-image-steps.sh points this at a fresh deploy/install.sh prefix; by default the
# entrypoint finds the `scheduler` installed next to this Python.
BIN = Path(os.environ["DEPLOY_PREFIX"]) / "bin" if "DEPLOY_PREFIX" in os.environ else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def image_env(tmp_path: Path, port: int, short_tmp: Path) -> dict[str, str]:
    """The environment the Dockerfile sets, with its paths moved under tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCHEDULER_") and k != "XDG_RUNTIME_DIR"  # as in the image
    }
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "a.yaml").write_text(
        'jobs:\n  hello:\n    schedule: {cron: "0 9 * * *"}\n'
        '    run: {type: command, command: ["true"]}\n'
    )
    env.update(
        PATH=f"{BIN or Path(sys.executable).parent}:{env['PATH']}",
        SCHEDULER_JOBS_DIR=str(tmp_path / "jobs.d"),
        SCHEDULER_DB=f"sqlite:///{tmp_path / 'scheduler.db'}",
        SCHEDULER_HTTP=f"127.0.0.1:{port}",
        SCHEDULER_SECRETS_DIR=str(tmp_path / "secrets"),
        TMPDIR=str(short_tmp),  # the image's /tmp: the daemon makes its 0700 dir there
        PYTHONUNBUFFERED="1",
    )
    return env


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def pid_1_of(unshare: subprocess.Popen[bytes]) -> int:
    """The global pid of the namespace's PID 1 (unshare's only child)."""
    children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")
    return int(wait_for(lambda: children.read_text().split(), "the namespace's PID 1")[0])


@pytest.mark.skipif(UNSHARE is None, reason="util-linux unshare is not installed here")
def test_the_entrypoint_serves_as_pid_1_and_stops_on_sigterm(
    tmp_path: Path, runtime_dir: Path
) -> None:
    port = free_port()
    env = image_env(tmp_path, port, runtime_dir)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("s3cret\n")
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(UNSHARE),
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "sh",
                str(DEPLOY / "entrypoint.sh"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "scheduler running" in log.read_text(), "the daemon to start", 20)
        pid_1 = pid_1_of(process)
        status = Path(f"/proc/{pid_1}/status").read_text()
        assert re.search(r"^NSpid:\s+\d+\s+1$", status, re.M), "the daemon is not PID 1"
        command = Path(f"/proc/{pid_1}/cmdline").read_bytes().split(b"\0")
        assert command[-4:-1] == [b"run", b"--http", f"127.0.0.1:{port}".encode()]  # exec'd

        assert healthcheck(env).returncode == 0
        wrong = healthcheck({**env, "SCHEDULER_HTTP": f"127.0.0.1:{free_port()}"})
        assert wrong.returncode == 1 and "Connection refused" in wrong.stderr

        import httpx  # the token came from the secret file

        url = f"http://127.0.0.1:{port}/jobs"
        assert httpx.get(url).status_code == 401
        reply = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
        assert [job["id"] for job in reply.json()["jobs"]] == ["hello"]

        os.kill(pid_1, signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert "stopped" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_entrypoint_refuses_to_start_without_a_token(tmp_path: Path, runtime_dir: Path) -> None:
    result = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh")],
        env=image_env(tmp_path, free_port(), runtime_dir),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "no API token: mount a secret file at" in result.stderr


def test_the_dockerfile_uses_these_files() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all("-slim" in stage for stage in stages)  # multi-stage, slim
    assert "COPY deploy/install.sh" in text and "RUN sh /usr/local/bin/install-scheduler" in text
    assert "COPY deploy/entrypoint.sh /usr/local/bin/scheduler-entrypoint" in text
    assert 'ENTRYPOINT ["sh", "/usr/local/bin/scheduler-entrypoint"]' in text
    assert "COPY deploy/healthcheck.py /usr/local/bin/scheduler-healthcheck" in text
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD .*scheduler-healthcheck", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0:", "0\n")) and user[-1] != "0"
    # everything the Dockerfile copies is let into the build context, and nothing else
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M)
    for source in (s for line in copied for s in line.split()):
        assert f"!{source.rstrip('/')}" in [i.rstrip("/") for i in ignore], source
    assert re.search(r"^VOLUME \[.*jobs\.d.*data", text, re.M)
