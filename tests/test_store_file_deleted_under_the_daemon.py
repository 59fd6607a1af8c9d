"""Regression test for issue 16 item 4: deleting the SQLite file under a running daemon went
unnoticed: the daemon kept writing into the unlinked file, ``/healthz`` said ok, the command
line quietly created a new empty store, and after a restart all history was gone. Now the
daemon notices the file is not the one it opened (a loud log line, ``/healthz`` 503 with the
reason), holds run history in memory until the file is back, and only ``run`` and
``reconcile`` create a store."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.api_helpers import StartApi
from tests.conftest import RunCli, WriteJobs

JOBS = """\
jobs:
  report:
    schedule: {cron: "0 9 1 1 *"}
    run: {type: command, command: ["echo", "made the report"]}
"""


def test_a_deleted_store_file_is_reported_and_history_is_kept_until_it_is_back(
    start_api: StartApi, write_jobs: WriteJobs, db_url: str, tmp_path: Path
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    store = Path(db_url.removeprefix("sqlite:///"))
    kept = tmp_path / "backup.db"
    with daemon.client() as api:
        assert api.get("/healthz").json() == {"status": "ok"}
        os.link(store, kept)  # the same file under another name, to put back later
        mark = daemon.mark()
        store.unlink()
        daemon.wait_log(rf"the store file {store} was deleted while the daemon runs", mark)
        health = api.get("/healthz")
        assert health.status_code == 503
        assert health.json()["detail"].startswith(f"the store file {store} was deleted")

        listing = daemon.cli("history")
        assert listing.returncode == 1
        assert f"no store at {store}" in listing.stderr
        assert "`scheduler reconcile` or `scheduler run` creates it" in listing.stderr
        assert not store.exists()  # the command line created no empty store in its place

        assert daemon.cli("trigger", "report").returncode == 0
        # The run finishes while the file is gone: its rows are held in memory.
        daemon.wait_log(r"job report run \S+ try 1: success", mark)

        os.rename(kept, store)  # put back: the run is written now
        daemon.wait_log(r"run history is written again", mark)
        runs = json.loads(daemon.cli("history", "report", "-o", "json").stdout)
        assert [(r["outcome"], r["output_tail"]) for r in runs] == [
            ("success", "made the report\n")
        ]
        assert api.get("/healthz").json() == {"status": "ok"}


def test_read_only_verbs_do_not_create_a_store(run_cli: RunCli, db_url: str) -> None:
    store = Path(db_url.removeprefix("sqlite:///"))
    for verb in (["jobs"], ["history"], ["pause", "report"]):
        result = run_cli(*verb)
        assert result.exit_code == 1, verb
        assert f"no store at {store}" in result.output
    assert run_cli("plan").exit_code == 0  # plans against nothing, creating nothing
    assert not store.exists()
    assert run_cli("reconcile").exit_code == 0
    assert store.exists()
