"""Issue 8, bad input and faults: the database gone (30 s in the issue, a few seconds here)
-> the leader stops firing once its lease can't be renewed, every replica answers /healthz
with 503 and the reason, and all resume without a restart when it comes back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for
from tests.replica_helpers import replicas
from tests.tcp_proxy import Proxy

LEASE = 2.0
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


@pytest.fixture
def proxied(server_database: Callable[[], str]) -> Iterator[tuple[str, Proxy]]:
    """A new database's URL through a proxy that can cut the way to its server."""
    url = make_url(server_database())
    gate = Proxy((url.host or "127.0.0.1", url.port or DEFAULT_PORTS[url.get_backend_name()]))
    yield url.set(port=gate.port).render_as_string(hide_password=False), gate
    gate.close()


def test_replicas_stop_firing_report_503_and_resume_when_the_database_returns(
    jobs_dir: Path, write_jobs: WriteJobs, tmp_path: Path, proxied: tuple[str, Proxy]
) -> None:
    out = tmp_path / "out.txt"
    write_jobs(
        "a.yaml",
        f"""\
jobs:
  tick:
    schedule: {{interval: 1s}}
    run: {{type: command, command: 'date +%s.%N >> {out}'}}
""",
    )
    url, proxy = proxied

    def ticks() -> list[float]:
        return [float(t) for t in out.read_text().split()] if out.exists() else []

    with replicas(jobs_dir, url, tmp_path, lease=f"{LEASE:g}s") as group:
        both = [group.start(), group.start()]
        leader = group.leader()
        wait_for(lambda: len(ticks()) >= 2 or None, "the job to tick")

        proxy.cut()
        cut = time.time()
        time.sleep(LEASE + 1.0)
        for replica in both:
            status, body = replica.health()
            assert status == 503, body
            assert "lease" in body["detail"] or "store" in body["detail"], body
        assert "stopped firing" in leader.log()
        time.sleep(2.0)
        stopped = [t for t in ticks() if t > cut + LEASE]
        assert stopped == []  # nothing fired while the lease could not be renewed

        proxy.restore()
        back = time.time()
        wait_for(lambda: all(r.health()[0] == 200 for r in both) or None, "healthy", 30)
        assert sorted(str(r.role()) for r in both) == ["leader", "standby"]
        wait_for(lambda: [t for t in ticks() if t > back] or None, "ticks again", 30)
        assert all(r.proc.poll() is None for r in both)  # no restart needed
