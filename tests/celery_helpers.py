"""A real Celery worker (``celery -A tests.celery_tasks worker``, prefork: revoke with
terminate=True needs a child process to kill) on Redis or RabbitMQ, with Redis as the
result backend. Each worker gets its own queue names (a random token), so runs of different
tests, brokers, xdist workers and sessions never cross; nothing is flushed, only the
worker's own queues are deleted at the end (results expire by themselves). Used by the
``celery`` handler tests and bench/.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from scheduler.cli import cli
from tests.api_helpers import ApiDaemon
from tests.daemon_helpers import wait_for

REDIS = "redis://127.0.0.1:6379"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
# Redis databases of these tests: broker and backend per broker kind (others use 0-9);
# shared by every worker at once, so everything in them is named with a worker's token.
BROKERS = {
    "redis": (f"{REDIS}/12", f"{REDIS}/13"),
    "rabbitmq": (RABBITMQ, f"{REDIS}/14"),
}
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Worker:
    kind: str
    broker: str
    backend: str
    queues: dict[str, str]  # a test's name for a queue -> its unique name on the broker
    hostname: str
    log_path: Path
    proc: subprocess.Popen[bytes]
    token: str  # a second worker started with it serves the same queues

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _delete_queues(broker: str, names: list[str]) -> None:
    from kombu import Connection

    with Connection(broker, connect_timeout=5) as conn:
        channel = conn.default_channel
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception:  # never declared (no test used it) or already gone
                channel = conn.channel()


@contextmanager
def celery_worker(
    kind: str,
    log_dir: Path,
    queue_names: list[str],
    concurrency: int = 2,
    pool: str = "prefork",
    token: str | None = None,
) -> Iterator[Worker]:
    """A started worker; a second one with the same ``token`` serves the same queues."""
    broker, backend = BROKERS[kind]
    first = token is None
    token = token or secrets.token_hex(4)
    queues = {name: f"sdtest-{name}-{token}" for name in queue_names}
    hostname = f"sdtest-{kind}-{token}-{secrets.token_hex(2)}@localhost"
    log_path = log_dir / f"celery-{kind}-{token}.log"
    env = {**os.environ, "SD_CELERY_BROKER": broker, "SD_CELERY_BACKEND": backend}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [
        *(sys.executable, "-m", "celery", "-A", "tests.celery_tasks", "worker"),
        *("--pool", pool, "--concurrency", str(concurrency)),
        *("-Q", ",".join(queues.values()), "-n", hostname, "-l", "info"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd=ROOT,
            start_new_session=True,  # its pool children go with it
        )
    worker = Worker(kind, broker, backend, queues, hostname, log_path, proc, token)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"celery worker exited:\n{worker.log()[-3000:]}")
            return " ready." in worker.log()

        wait_for(ready, f"the {kind} celery worker to be ready", timeout=30)
        yield worker
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if first:
            _delete_queues(broker, list(queues.values()))


@contextmanager
def silent_redis() -> Iterator[str]:
    """A Redis URL whose port accepts connections and never answers (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        server.close()  # resets the connections still waiting, freeing the senders


# -- a daemon with its HTTP API, as the celery tests drive it ---------------------------
def trigger(daemon: ApiDaemon, job_id: str) -> None:
    with daemon.client() as client:
        reply = client.post(f"/jobs/{job_id}/trigger")
        assert reply.status_code == 200, reply.text


def runs(daemon: ApiDaemon, job_id: str) -> list[dict[str, Any]]:
    """The job's runs, oldest first, as ``scheduler history -o json`` prints them."""
    where = ["--jobs-dir", str(daemon.jobs_dir), "--db", daemon.db_url]
    result = CliRunner().invoke(cli, [*where, "history", job_id, "-o", "json"])
    assert result.exit_code == 0, result.output
    return list(reversed(json.loads(result.output)))


def finished(daemon: ApiDaemon, job_id: str, count: int = 1, timeout: float = 20) -> list[Any]:
    def probe() -> list[dict[str, Any]] | None:
        rows = runs(daemon, job_id)
        return rows if sum(r["outcome"] != "running" for r in rows) >= count else None

    try:
        return wait_for(probe, f"{count} finished run(s) of {job_id}", timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- daemon log ---\n{daemon.tail()}") from None


def serves_on(daemon: ApiDaemon) -> None:
    """The daemon still runs other jobs (a ``local`` command job printing "still here")
    and answers healthy."""
    trigger(daemon, "local")
    [local] = finished(daemon, "local")
    assert (local["outcome"], local["output_tail"]) == ("success", "still here\n")
    with daemon.client() as client:
        assert client.get("/healthz").status_code == 200
