"""Replicas for tests: N ``scheduler run`` daemons on one PostgreSQL or MariaDB store, each
with its own runtime dir (as on N hosts) and its HTTP API on an ephemeral port."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from scheduler.leadership import db_now
from scheduler.store import make_engine
from tests.api_helpers import ApiDaemon
from tests.daemon_helpers import wait_for


class Replica(ApiDaemon):
    def health(self) -> tuple[int, dict[str, Any]]:
        reply = httpx.get(f"{self.base_url}/healthz", timeout=10)
        return reply.status_code, reply.json()

    def role(self) -> str | None:
        try:
            return str(self.health()[1].get("role"))
        except httpx.HTTPError:
            return None


class Replicas:
    def __init__(self, jobs_dir: Path, url: str, tmp_path: Path, lease: str) -> None:
        self.jobs_dir, self.url, self.tmp_path, self.lease = jobs_dir, url, tmp_path, lease
        self.all: list[Replica] = []

    def start(self, *extra: str, env: dict[str, str] | None = None) -> Replica:
        runtime = Path(tempfile.mkdtemp(prefix="sr-"))
        log = self.tmp_path / f"replica-{len(self.all)}.log"
        replica = Replica(
            self.jobs_dir,
            self.url,
            runtime,
            log,
            ("--http", "127.0.0.1:0", "--lease", self.lease, *extra),
            env,
        )
        self.all.append(replica)
        return replica

    def leader_and_standby(self) -> tuple[Replica, Replica]:
        """Start one replica until it leads, then a second until it stands by; returns
        (leader, standby) as the lease says (the first may have lost it meanwhile)."""
        first = self.start()
        first.wait_log(r"scheduler running", timeout=30)
        second = self.start()
        second.wait_log(r"standing by", timeout=30)
        leader = self.leader()
        return leader, second if leader is first else first

    def alive(self) -> list[Replica]:
        return [r for r in self.all if r.proc.poll() is None]

    def lease_row(self) -> Any:
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                if not inspect(conn).has_table("scheduler_lease"):  # not created yet
                    return None
                return conn.execute(
                    text(
                        f"SELECT holder, epoch, expires_at - {db_now(engine)} AS remaining "
                        "FROM scheduler_lease"
                    )
                ).first()
        finally:
            engine.dispose()

    def leader(self, timeout: float = 30) -> Replica:
        """The replica whose pid holds a live lease (the database decides, not the logs)."""

        def probe() -> Replica | None:
            row = self.lease_row()
            if row is None or row.remaining <= 0:
                return None
            pid = int(row.holder.split(":")[1])
            found = [r for r in self.alive() if r.proc.pid == pid]
            return found[0] if found and found[0].role() == "leader" else None

        return wait_for(probe, "a replica to lead", timeout)

    def cut_connections(self) -> None:
        """Kill every other connection to the store, as a database restart or a firewall
        would (PostgreSQL: pg_terminate_backend; MariaDB: KILL CONNECTION)."""
        if not self.url.startswith("mysql"):
            self.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return
        ids = self.sql(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
        for (pid,) in ids:
            with suppress(DBAPIError):  # gone meanwhile
                self.sql(f"KILL CONNECTION {int(pid)}")

    def sql(self, statement: str) -> list[Any]:
        engine = make_engine(self.url)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statement))
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def stop_all(self) -> None:
        for replica in self.all:
            if replica.proc.poll() is None:
                with suppress(ProcessLookupError):  # a frozen one could not stop
                    os.kill(replica.proc.pid, signal.SIGCONT)
                replica.proc.send_signal(signal.SIGTERM)
        for replica in self.all:
            try:
                replica.proc.wait(30)
            except Exception:
                replica.kill()


@contextmanager
def replicas(jobs_dir: Path, url: str, tmp_path: Path, lease: str = "2s") -> Iterator[Replicas]:
    group = Replicas(jobs_dir, url, tmp_path, lease)
    try:
        yield group
    finally:
        group.stop_all()
