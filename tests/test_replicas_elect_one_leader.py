"""Replicas on one PostgreSQL or MariaDB store (issue 8): daemons started at once on an empty
database all come up and exactly one leads; a standby serves the API and what it is asked to
do (pause, trigger) takes effect through the leader, answered as the leader answers."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import WriteJobs
from tests.daemon_helpers import daemon_env, scheduler_argv, wait_for
from tests.replica_helpers import Replica, replicas
from tests.test_daemon_runs_both_times_in_a_dst_gap import LIBFAKETIME

TICKER = """\
jobs:
  tick:
    schedule: {interval: 1s}
    run: {type: command, command: "echo tick"}
  report:
    schedule: {cron: "0 0 1 1 *"}
    run: {type: command, command: "echo report"}
"""


def _runs(group_sql: Callable[[str], list[object]], job: str) -> int:
    (row,) = group_sql(f"SELECT count(*) FROM scheduler_runs WHERE job_id = '{job}'")
    return int(row[0])  # type: ignore[index]


def test_three_daemons_started_at_once_on_an_empty_database_all_serve_and_one_leads(
    jobs_dir: Path, write_jobs: WriteJobs, tmp_path: Path, server_database: Callable[[], str]
) -> None:
    """Regression (issue 8.5): all but one died with UniqueViolation creating the tables."""
    write_jobs("a.yaml", TICKER)
    with replicas(jobs_dir, server_database(), tmp_path) as group:
        started = [group.start() for _ in range(3)]
        for replica in started:
            replica.wait_log(r"scheduler running|standing by", timeout=30)
        leader = group.leader()
        roles = sorted(str(r.role()) for r in started)
        assert roles == ["leader", "standby", "standby"]
        seen = set()
        for replica in started:
            # A replica that stood by for a moment may still be starting its scheduler, and a
            # standby that read the lease before anyone held it learns the leader at its
            # next read.
            body = wait_for(
                lambda r=replica: _names_a_leader(r), "every replica to answer 200 naming one"
            )
            seen.add((body["leader"], body["epoch"]))
        (row,) = group.sql("SELECT holder, epoch FROM scheduler_lease")
        assert seen == {(row.holder, row.epoch)}  # every replica names the same leader
        standby = next(r for r in started if r is not leader)
        _, body = standby.health()
        assert body["leader_address"] == leader.base_url
        page = httpx.get(standby.base_url + "/", timeout=10).text
        assert "this replica: standby" in page and leader.base_url in page
        metrics = httpx.get(standby.base_url + "/metrics", timeout=10).text
        assert "scheduler_leader 0.0" in metrics and "scheduler_lease_epoch" in metrics


def test_a_standby_pauses_and_triggers_through_the_leader(
    jobs_dir: Path, write_jobs: WriteJobs, tmp_path: Path, server_database: Callable[[], str]
) -> None:
    write_jobs("a.yaml", TICKER)
    with replicas(jobs_dir, server_database(), tmp_path) as group:
        _, standby = group.leader_and_standby()

        wait_for(lambda: _runs(group.sql, "tick") > 0 or None, "tick to run")
        with standby.client() as api:
            paused = api.post("/jobs/tick/pause")
        answered = time.time()
        assert paused.status_code == 200, paused.text
        assert paused.json()["result"]["paused"] is True
        time.sleep(3)  # three intervals: a job the leader still fired would show here
        (late,) = group.sql(
            "SELECT count(*) FROM scheduler_runs WHERE job_id = 'tick' "
            f"AND started_at > {answered + 1.0}"
        )
        assert late[0] == 0  # honoured within a second of the standby's answer
        assert "job tick paused by an operator" in group.leader().log()

        with standby.client() as api:
            triggered = api.post("/jobs/report/trigger")
            assert triggered.status_code == 200, triggered.text
            assert triggered.json()["result"]["started"] is True
            missing = api.post("/jobs/nope/trigger")
            assert missing.status_code == 404, missing.text
        wait_for(lambda: _runs(group.sql, "report") == 1 or None, "the triggered run")

        # A file change: only the leader reconciles it, the standby leaves it alone.
        leader = group.leader()
        write_jobs("b.yaml", TICKER.replace("tick", "tock").replace("report", "other"))
        leader.wait_log(r"\+ tock", timeout=30)
        standby.wait_log(r"left to the leader: this replica stands by", timeout=30)

        # `scheduler reconcile` on a replica's host goes through it (to the leader)...
        here = standby.cli("reconcile")
        assert here.returncode == 0, here.stderr
        assert "No changes" in here.stdout
        # ...and from a host with no daemon it names the leader and the URL to use.
        elsewhere = subprocess.run(
            scheduler_argv(jobs_dir, group.url, "reconcile"),
            env=daemon_env(Path(tempfile.mkdtemp(prefix="sr-cli-"))),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert elsewhere.returncode == 1
        assert elsewhere.stderr.strip().endswith(
            "leads this store and reconciles its own jobs dir: reconcile through it with "
            f"`scheduler --url {leader.base_url} reconcile`, or run `scheduler reconcile` on "
            "that host"
        )


def test_a_replica_whose_clock_is_an_hour_ahead_does_not_take_a_live_lease(
    jobs_dir: Path, write_jobs: WriteJobs, tmp_path: Path, pg_database: Callable[[], str]
) -> None:
    """The lease expires on the database's clock: a host clock an hour ahead (libfaketime)
    must not make a standby believe the leader's lease ran out."""
    if LIBFAKETIME is None:  # scripts/test installs it: a missing library fails, never skips
        pytest.fail("libfaketime is not installed: run scripts/test, or apt-get install faketime")
    write_jobs("a.yaml", TICKER)
    with replicas(jobs_dir, pg_database(), tmp_path) as group:
        leader = group.start()
        leader.wait_log(r"scheduler running", timeout=30)
        ahead = group.start(env={"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "+1h"})
        ahead.wait_log(r"standing by", timeout=30)
        time.sleep(3 * 2)  # three leases of 2 s
        (row,) = group.sql("SELECT holder, epoch FROM scheduler_lease")
        assert (int(row.holder.split(":")[1]), row.epoch) == (leader.proc.pid, 1)
        assert ahead.role() == "standby" and "scheduler running" not in ahead.log()


def _healthy(replica: Replica) -> dict[str, Any] | None:
    status, body = replica.health()
    return body if status == 200 else None


def _names_a_leader(replica: Replica) -> dict[str, Any] | None:
    body = _healthy(replica)
    return body if body is not None and body["leader"] is not None else None
