"""Replicas through PgBouncer in transaction mode (issue 8): the lease and the claims are
single transactions, so they hold there; psycopg's prepared statements are turned off with
``?prepare_threshold=none``. The leader is killed once: the job goes on, no slot twice."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for
from tests.replica_helpers import replicas

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def pgbouncer() -> Iterator[int]:
    """A PgBouncer in transaction mode on 127.0.0.1 in front of the real PostgreSQL."""
    if not os.path.exists(PGBOUNCER):
        pytest.fail("pgbouncer is not installed (Debian package pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="pgb-"))
    folder.chmod(0o755)  # it drops to `nobody` when started as root
    port = _free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgb.ini").write_text(
        "[databases]\n* = host=127.0.0.1 port=5432\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\npool_mode = transaction\n"
        "max_client_conn = 200\ndefault_pool_size = 20\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    for name in ("users.txt", "pgb.ini"):
        (folder / name).chmod(0o644)
    argv = [PGBOUNCER, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(folder / "pgb.ini")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool | None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return None

    try:
        wait_for(listening, "pgbouncer to listen")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_replicas_behind_pgbouncer_in_transaction_mode_run_each_slot_once(
    jobs_dir: Path,
    write_jobs: WriteJobs,
    tmp_path: Path,
    pg_database: Callable[[], str],
    pgbouncer: int,
) -> None:
    write_jobs(
        "a.yaml",
        """\
jobs:
  tick:
    schedule: {interval: 1s}
    run: {type: command, command: "true"}
""",
    )
    direct = pg_database()
    url = make_url(direct).set(port=pgbouncer).update_query_dict({"prepare_threshold": "none"})
    with replicas(jobs_dir, url.render_as_string(hide_password=False), tmp_path) as group:
        group.start()
        group.start()
        first = group.leader()
        time.sleep(3)
        first.proc.kill()
        first.proc.wait()
        second = group.leader()
        assert second is not first
        since = time.time()
        wait_for(
            lambda: group.sql(f"SELECT 1 FROM scheduler_runs WHERE started_at > {since}") or None,
            "the new leader to run the job",
            30,
        )
        rows = group.sql("SELECT job_id, scheduled_time, attempt FROM scheduler_runs")
        logs = "\n".join(r.tail(20) for r in group.all)
    assert "prepared statement" not in logs
    twice = [k for k, n in Counter((r[0], r[1], r[2]) for r in rows).items() if n > 1]
    assert twice == []
