"""The writer lock and the control socket live in a private runtime dir, never in the
shared temp dir itself. Regression for issue 16.13: with ``XDG_RUNTIME_DIR`` unset another
local user could hold the lock, plant a symlink that the daemon overwrote with its PID, or
serve a fake socket that answered "a paused"."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.control import runtime_paths
from tests.conftest import WriteJobs, simple_job
from tests.daemon_helpers import scheduler_argv, wait_for

NOBODY = 65534


def env_without_xdg(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.pop("XDG_RUNTIME_DIR", None)
    env["TMPDIR"] = str(tmp)
    return env


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A stand-in for /tmp (short: the socket path must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="st-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cli(
    jobs_dir: Path, db_url: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        scheduler_argv(jobs_dir, db_url, *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_without_xdg_runtime_dir_a_private_dir_is_made_and_used(
    jobs_dir: Path, db_url: str, write_jobs: WriteJobs, tmp_path: Path, shared_tmp: Path
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    env = env_without_xdg(shared_tmp)
    log = tmp_path / "d.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            scheduler_argv(jobs_dir, db_url, "run"), env=env, stdout=out, stderr=out
        )
    try:
        wait_for(lambda: "scheduler running" in log.read_text(), "the daemon to start", 15)
        private = shared_tmp / f"scheduler-{os.geteuid()}"
        info = private.lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert {p.suffix for p in private.iterdir()} == {".lock", ".sock"}
        assert not [p for p in shared_tmp.iterdir() if p.name.endswith((".lock", ".sock"))]
        paused = cli(jobs_dir, db_url, env, "pause", "a", "-o", "json")
        assert paused.returncode == 0, paused.stderr
        assert '"via": "daemon"' in paused.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(10)
        finally:
            daemon.kill()
            daemon.wait()


def test_a_planted_symlink_is_not_followed(
    jobs_dir: Path,
    db_url: str,
    write_jobs: WriteJobs,
    shared_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    env = env_without_xdg(shared_tmp)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(shared_tmp))
    paths = runtime_paths(db_url)  # makes the private dir, as the daemon would
    victim = shared_tmp / "victim.txt"
    victim.write_text("precious\n")
    paths.lock.symlink_to(victim)
    started = cli(jobs_dir, db_url, env, "run")
    assert started.returncode == 1
    assert started.stderr.startswith(f"error: cannot open {paths.lock}: Too many levels of")
    assert "a symlink is never followed there" in started.stderr
    assert "Traceback" not in started.stderr
    assert victim.read_text() == "precious\n"  # not overwritten with a PID


def foreign(path: Path) -> None:
    os.chown(path, NOBODY, NOBODY)


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (foreign, f"belongs to uid {NOBODY}, not to this user"),
        (lambda p: p.chmod(0o777), "is open to other users (mode 0777): `chmod 700"),
        (lambda p: p.rmdir() or p.symlink_to("/"), "is not a directory (a symlink?)"),
    ],
    ids=["foreign-owned", "0777", "symlink"],
)
def test_an_unsafe_runtime_dir_is_refused(
    jobs_dir: Path,
    db_url: str,
    write_jobs: WriteJobs,
    shared_tmp: Path,
    spoil: object,
    message: str,
) -> None:
    if spoil is foreign and os.geteuid() != 0:
        pytest.skip("making a directory another user's needs root")  # CI runs as root
    write_jobs("a.yaml", simple_job("a"))
    env = env_without_xdg(shared_tmp)
    private = shared_tmp / f"scheduler-{os.geteuid()}"
    private.mkdir(mode=0o700)
    assert callable(spoil)
    spoil(private)
    for args in (("run",), ("pause", "a"), ("reconcile",)):
        result = cli(jobs_dir, db_url, env, *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith(f"error: the runtime dir {private} "), result.stderr
        assert message in result.stderr
        assert "set XDG_RUNTIME_DIR to a private directory" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_open_xdg_runtime_dir_is_refused_too(
    jobs_dir: Path, db_url: str, write_jobs: WriteJobs, shared_tmp: Path
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    env = {**env_without_xdg(shared_tmp), "XDG_RUNTIME_DIR": str(shared_tmp)}
    result = cli(jobs_dir, db_url, env, "pause", "a")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: XDG_RUNTIME_DIR {shared_tmp} is open to other")


def test_a_socket_that_is_not_this_users_is_never_asked(
    jobs_dir: Path,
    db_url: str,
    write_jobs: WriteJobs,
    runtime_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fake daemon socket (another user's, or not a socket at all) is refused: it used
    to answer `scheduler pause a` with "a paused" while nothing changed."""
    write_jobs("a.yaml", simple_job("a"))
    assert (
        subprocess.run(
            scheduler_argv(jobs_dir, db_url, "reconcile"), capture_output=True, check=False
        ).returncode
        == 0
    )
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    path = runtime_paths(db_url).socket
    env = {**env_without_xdg(runtime_dir), "XDG_RUNTIME_DIR": str(runtime_dir)}
    path.write_text("")
    refused = cli(jobs_dir, db_url, env, "pause", "a")
    assert refused.returncode == 1
    assert refused.stderr == (
        f"error: {path} is not a socket of this user (uid {os.geteuid()}): it cannot be the "
        "daemon's; remove it and start the daemon again\n"
    )
    path.unlink()
    if os.geteuid() == 0:  # a listening socket another user owns
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as fake:
            fake.bind(str(path))
            fake.listen()
            os.chown(path, NOBODY, NOBODY)
            refused = cli(jobs_dir, db_url, env, "pause", "a")
        assert refused.returncode == 1
        assert f"is not a socket of this user (uid {NOBODY})" in refused.stderr
        path.unlink()
    paused = cli(jobs_dir, db_url, env, "pause", "a")  # no daemon: on the store itself
    assert paused.returncode == 0 and paused.stdout == "a paused\n"
