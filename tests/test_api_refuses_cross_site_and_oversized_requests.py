"""Without a token (the documented loopback default) the API is guarded by what a browser
cannot forge: a cross-site form POST, a POST without a JSON content type and a request
whose Host is not this machine (DNS rebinding) are refused; bodies over 1 MiB and deeply
nested JSON are refused before any route parses them. Issue 16.12 and issue 13 "API
bounds", over real HTTP against a real daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from tests.api_helpers import ApiDaemon, StartApi
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for

JOBS = """\
jobs:
  report:
    schedule: {cron: "0 9 * * 1-5"}
    run: {type: command, command: "echo made the report"}
"""


def finished_runs(daemon: ApiDaemon) -> list[dict[str, object]]:
    return [r for r in json.loads(daemon.cli("history", "-o", "json").stdout) if r["finished_at"]]


def test_a_cross_site_form_post_triggers_nothing(
    start_api: StartApi, write_jobs: WriteJobs
) -> None:
    """Regression: `<form method=post action=http://127.0.0.1:PORT/jobs/report/trigger>`
    on https://evil.example ran the job."""
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with httpx.Client(base_url=daemon.base_url, timeout=30) as browser:
        form = browser.post(
            "/jobs/report/trigger",
            headers={"Origin": "https://evil.example"},
            data={"x": "1"},
        )
        assert form.status_code == 403
        assert "cross-site request from Origin 'https://evil.example'" in form.json()["detail"]
        # An opaque Origin (a sandboxed frame) and another local web app are foreign too.
        for origin in ("null", "http://localhost:3000", "http://127.0.0.1:1"):
            json_post = {"Origin": origin, "Content-Type": "application/json"}
            assert browser.post("/jobs/report/trigger", headers=json_post).status_code == 403
        no_type = browser.post("/jobs/report/trigger")
        assert no_type.status_code == 415
        assert "needs 'Content-Type: application/json'" in no_type.json()["detail"]
        text = browser.post("/jobs/report/pause", headers={"Content-Type": "text/plain"})
        assert text.status_code == 415
        local = browser.post(
            "/jobs/report/trigger",
            headers={"Content-Type": "application/json", "Origin": daemon.base_url},
        )
        assert local.status_code == 200 and local.json()["result"]["started"] is True
    runs = wait_for(lambda: finished_runs(daemon) or None, "the one accepted trigger's run")
    assert len(runs) == 1  # none of the refused requests ran or paused anything
    assert daemon.jobs()["report"]["paused"] is False


def test_a_foreign_host_header_is_refused(start_api: StartApi, write_jobs: WriteJobs) -> None:
    """Regression: DNS rebinding (evil.example resolving to 127.0.0.1) could read every
    job's spec, because any Host header was accepted."""
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    port = daemon.base_url.rsplit(":", 1)[1]
    with daemon.client() as api:
        for host in ("evil.example", f"evil.example:{port}", "10.0.0.1", "127.0.0.1.evil.example"):
            refused = api.get("/jobs/report", headers={"Host": host})
            assert refused.status_code == 421, host
            assert "is not this machine" in refused.json()["detail"]
            assert "report" not in refused.text.replace(host, "")
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert api.get("/jobs/report", headers={"Host": host}).status_code == 200, host


def test_a_token_replaces_the_local_checks(start_api: StartApi, write_jobs: WriteJobs) -> None:
    """With a token (e.g. behind an ingress with its own host name) the token is the guard:
    a browser cannot attach it cross-site."""
    write_jobs("a.yaml", JOBS)
    daemon = start_api(env={"SCHEDULER_API_TOKEN": "s3cret"})
    with daemon.client("s3cret") as api:
        assert api.get("/jobs", headers={"Host": "scheduler.example"}).status_code == 200
        assert api.post("/jobs/report/pause", headers={"Content-Type": ""}).status_code == 200
        # the bounds hold with a token too
        big = api.post("/reconcile", content=b"[" + b" " * (1024 * 1024) + b"]")
        assert big.status_code == 413


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_oversized_and_deeply_nested_bodies_are_refused(
    start_api: StartApi, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with daemon.client() as api:
        declared = api.post("/reconcile", content=b"{}" + b" " * (1024 * 1024))
        assert declared.status_code == 413
        assert "over 1048576 bytes" in declared.json()["detail"]
        streamed = api.post("/reconcile", content=chunks(2 * 1024 * 1024))  # no Content-Length
        assert streamed.status_code == 413
        nested = api.post("/reconcile", content=b"[" * 100_000 + b"]" * 100_000)
        assert nested.status_code == 400
        assert nested.json() == {"detail": "JSON nested deeper than 32 levels: refused"}
        # brackets inside a string are not nesting
        quoted = api.post("/reconcile", content=json.dumps({"note": "[" * 1000}).encode())
        assert quoted.status_code == 200
        assert api.get("/healthz").json() == {"status": "ok"}  # and the daemon is fine
