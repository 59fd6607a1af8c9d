"""Regression test for issue 16 item 5 and its "Done when": plain python jobs that ran long
filled asyncio's default thread pool, which the daemon's history writes, ``/healthz``,
``/jobs`` and reconciles share: they all waited for the jobs (a file change took 38 s to
reconcile). Python jobs now have threads of their own; with more of them running than that
pool has threads, and an HTTP job streaming a body, the daemon answers, writes history and
reconciles. It asserts the answers come while the jobs still run, not how fast."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.api_helpers import StartApi
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for

# One more than asyncio's default pool has threads on this machine (min(32, cpus + 4)).
PYTHON_JOBS = min(32, (os.cpu_count() or 1) + 4) + 1

HOLD = """\
import os
import time


def hold(flag: str) -> str:
    while not os.path.exists(flag):
        time.sleep(0.05)
    return "released"
"""


@contextlib.contextmanager
def streaming_server(flag: Path) -> Iterator[str]:
    """Sends a body (no length: until it closes) for as long as ``flag`` does not exist."""

    class Handle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while not flag.exists():
                    self.wfile.write(b"x" * 65536)
                    time.sleep(0.01)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream"
    finally:
        flag.touch()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_healthz_jobs_history_and_reconcile_go_on_while_python_jobs_hold_threads(
    start_api: StartApi, write_jobs: WriteJobs, tmp_path: Path
) -> None:
    (tmp_path / "hogs.py").write_text(HOLD)  # the daemon's cwd: importable as ``hogs``
    flag = tmp_path / "release"
    with streaming_server(flag) as url:
        lines = ["jobs:"]
        for n in range(PYTHON_JOBS):
            lines += [
                f"  hog-{n}:",
                '    schedule: {cron: "0 0 1 1 *"}',
                f'    run: {{type: python, function: "hogs:hold", kwargs: {{flag: "{flag}"}}}}',
            ]
        lines += ["  stream:", '    schedule: {cron: "0 0 1 1 *"}']
        lines += [f'    run: {{type: http, url: "{url}"}}']
        write_jobs("hogs.yaml", "\n".join(lines) + "\n")
        daemon = start_api()
        ids = [f"hog-{n}" for n in range(PYTHON_JOBS)] + ["stream"]
        with daemon.client() as api:
            for job_id in ids:
                assert api.post(f"/jobs/{job_id}/trigger").json()["result"]["started"]

            def running() -> dict[str, Any] | None:
                runs = {r["job_id"]: r for r in api.get("/runs", params={"limit": 100}).json()}
                return (
                    runs if all(runs.get(j, {}).get("outcome") == "running" for j in ids) else None
                )

            wait_for(running, "every job's run recorded as running")  # history is written
            assert api.get("/healthz").json() == {"status": "ok"}
            assert api.get("/jobs").json()["total"] == len(ids)
            mark = daemon.mark()
            write_jobs(
                "more.yaml",
                "jobs:\n  later:\n    schedule: {interval: 1h}\n"
                '    run: {type: command, command: ["true"]}\n',
            )
            daemon.wait_log(r": +\+ later \(", mark)
            assert running(), "the jobs ended before the daemon answered"

            flag.touch()

            def finished() -> dict[str, Any] | None:
                runs = {r["job_id"]: r for r in api.get("/runs", params={"limit": 100}).json()}
                return runs if all(runs[j]["outcome"] == "success" for j in ids) else None

            runs = wait_for(finished, "every job to succeed", timeout=15)
            assert {runs[f"hog-{n}"]["output_tail"] for n in range(PYTHON_JOBS)} == {"'released'"}
