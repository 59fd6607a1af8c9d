"""Regression test for issue 16 item 6 (first half): an HTTP job whose response was 400 MB
took the daemon from 83 to 935 MB of memory, which it kept, though only 4 KB of the body are
recorded. The body is now streamed: read to its end, only its start kept. Memory is measured
with tracemalloc (Python's own allocations, deterministic), against a real local server that
streams the body without holding it."""

from __future__ import annotations

import contextlib
import http.server
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from tests.runner_helpers import job, run_once

BODY_BYTES = 64 * 1024 * 1024
CHUNK = b"0123456789abcdef" * 4096  # 64 KiB, sent over and over


@contextlib.contextmanager
def huge_body_server() -> Iterator[str]:
    class Handle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            size = BODY_BYTES if self.path == "/huge" else len(CHUNK)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for _ in range(size // len(CHUNK)):
                    self.wfile.write(CHUNK)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_64_mib_body_is_read_to_its_end_keeping_only_its_start(tmp_path: Path) -> None:
    with huge_body_server() as url:
        # A small request first: what the first one allocates once (imports, the TLS
        # context) is not what a body costs.
        run_once(tmp_path / "warm", job(run={"type": "http", "url": f"{url}/small"}))
        tracemalloc.start()
        try:
            (row,) = run_once(tmp_path, job(run={"type": "http", "url": f"{url}/huge"}))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert row["outcome"] == "success"
    assert row["output_tail"] == "HTTP 200 OK\n" + (CHUNK.decode() * 2)[:4096]
    assert peak < BODY_BYTES // 16, f"peak {peak / 2**20:.1f} MiB while reading the body"
