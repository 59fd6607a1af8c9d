"""The ``http`` handler against a real local server: 2xx (or ``expect_status``) is success,
the status is recorded as the exit code with a body excerpt in the output; a refused
connection is a failure that says so; a server slower than the job's ``timeout`` is a
``timeout``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from tests.runner_helpers import Received, duration, http_server, job, run_once

BIG = "0123456789" * 1000  # 10,000 characters


def reply(request: Received) -> tuple[int, bytes, float]:
    if request.path == "/ok":
        return 200, b"all good", 0.0
    if request.path == "/created":
        return 201, b"made it", 0.0
    if request.path == "/big":
        return 200, BIG.encode(), 0.0
    if request.path == "/slow":
        return 200, b"too late", 2.0
    return 500, b"boom: database down", 0.0


def http_job(url: str, **fields: Any) -> dict[str, Any]:
    run = {"type": "http", "url": url}
    for key in ("method", "expect_status", "headers", "json", "body"):
        if key in fields:
            run[key] = fields.pop(key)
    return job(run=run, **fields)


def test_a_200_is_a_success_with_status_and_body_recorded(tmp_path: Path) -> None:
    with http_server(reply) as server:
        (row,) = run_once(tmp_path, http_job(f"{server.url}/ok"), job_id="ping")

    assert row["outcome"] == "success"
    assert row["exit_code"] == 200
    assert row["output_tail"] == "HTTP 200 OK\nall good"
    assert row["error"] is None
    (request,) = server.received
    assert request.method == "GET"
    assert request.headers["X-Scheduler-Job-Id"] == "ping"
    assert request.headers["X-Scheduler-Run-Id"] == row["run_id"]


def test_a_status_other_than_the_expected_one_is_a_failure(tmp_path: Path) -> None:
    with http_server(reply) as server:
        (row,) = run_once(tmp_path, http_job(f"{server.url}/ok", expect_status=[201]))

    assert row["outcome"] == "failure"
    assert row["exit_code"] == 200
    assert row["error"] == "HTTP 200, expected 201"
    assert row["output_tail"] == "HTTP 200 OK\nall good"


def test_the_expected_status_is_a_success(tmp_path: Path) -> None:
    with http_server(reply) as server:
        spec = http_job(f"{server.url}/created", method="post", expect_status=201, json={"a": 1})
        (row,) = run_once(tmp_path, spec)

    assert row["outcome"] == "success"
    assert row["exit_code"] == 201
    (request,) = server.received
    assert (request.method, request.body) == ("POST", b'{"a":1}')


def test_a_server_error_is_a_failure_by_default(tmp_path: Path) -> None:
    with http_server(reply) as server:
        (row,) = run_once(tmp_path, http_job(f"{server.url}/broken"))

    assert row["outcome"] == "failure"
    assert row["exit_code"] == 500
    assert row["error"] == "HTTP 500, expected 2xx"
    assert "boom: database down" in row["output_tail"]


def test_only_an_excerpt_of_a_big_body_is_kept(tmp_path: Path) -> None:
    with http_server(reply) as server:
        (row,) = run_once(tmp_path, http_job(f"{server.url}/big"))

    assert row["output_tail"] == "HTTP 200 OK\n" + BIG[:4096]


def test_a_refused_connection_is_a_failure_that_says_so(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    (row,) = run_once(tmp_path, http_job(f"http://127.0.0.1:{port}/"))

    assert row["outcome"] == "failure"
    assert row["exit_code"] is None
    assert row["error"].startswith("ConnectError: ")
    assert row["error"].endswith("(Connection refused)")


def test_a_server_slower_than_the_timeout_is_a_timeout(tmp_path: Path) -> None:
    with http_server(reply) as server:
        (row,) = run_once(tmp_path, http_job(f"{server.url}/slow", timeout="1s"))

    assert row["outcome"] == "timeout"
    assert row["error"] == "timed out after 1s"
    assert row["exit_code"] is None
    assert 1.0 <= duration(row) < 1.9
