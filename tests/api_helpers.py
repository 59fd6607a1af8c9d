"""A real daemon serving its HTTP API on 127.0.0.1 (an ephemeral port read from its log)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.daemon_helpers import DaemonProcess


class ApiDaemon(DaemonProcess):
    @property
    def base_url(self) -> str:
        return str(self.wait_log(r"HTTP API on (http://127\.0\.0\.1:\d+)").group(1))

    def client(self, token: str | None = None) -> httpx.Client:
        # As the command line sends it: without a token, POSTs need a JSON content type.
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


StartApi = Callable[..., ApiDaemon]
