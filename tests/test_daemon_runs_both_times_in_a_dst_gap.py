"""A real daemon, its clock moved by libfaketime to just before New York springs forward,
runs `0 2,3 * * *` twice: once for the skipped 02:00 and once for 03:00, as cronie does.

Regression (issue 14): the two scheduled times were merged into one run at 03:00.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartDaemon, WriteJobs
from tests.daemon_helpers import wait_for

LIBFAKETIME = next(
    (
        path
        for path in (
            Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
            Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
        )
        if path.exists()
    ),
    None,
)


def test_both_scheduled_times_in_the_gap_run(
    start_daemon: StartDaemon, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    if LIBFAKETIME is None:  # scripts/test installs it: a missing library fails, never skips
        pytest.fail("libfaketime is not installed: run scripts/test, or apt-get install faketime")
    write_jobs(
        "a.yaml",
        """\
jobs:
  gap:
    schedule: {cron: "0 2,3 * * *", timezone: America/New_York}
    run: {type: command, command: ["true"]}
""",
    )
    # 06:59:53 UTC is 01:59:53 in New York; at 07:00 UTC the clocks jump from 02:00 to 03:00.
    # The clock then runs at its normal rate: the daemon has 7 s to start (it takes < 1 s).
    clock = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "@2026-03-08 06:59:53", "TZ": "UTC"}
    daemon = start_daemon(env=clock)

    def two_runs() -> list[dict[str, Any]] | None:
        runs = [run for run in daemon.history("gap") if run["finished_at"]]
        return runs if len(runs) >= 2 else None

    runs = wait_for(two_runs, "two finished runs", timeout=20)
    assert sorted((run["scheduled_time"], run["outcome"]) for run in runs) == [
        ("2026-03-08T07:00:00+00:00", "success"),
        ("2026-03-08T07:00:01+00:00", "success"),
    ]
