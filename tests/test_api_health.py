"""/healthz says why it is unhealthy (503), for a stopped scheduler loop and for a store
that does not answer. In-process (the ASGI app through httpx) with a real SQLite store: a
live daemon cannot be made unhealthy from outside on demand."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx

from scheduler.api import create_app
from scheduler.metrics import Metrics
from scheduler.settings import Settings
from scheduler.store import Store


def get(daemon: FakeDaemon, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(daemon, token="t"))
        async with httpx.AsyncClient(transport=transport, base_url="http://daemon") as client:
            return await client.get(path)

    return asyncio.run(call())


class FakeDaemon:
    """The API's view of a daemon (the Control protocol), with a real store."""

    def __init__(self, store: Store, problem: str | None = None) -> None:
        self.store = store
        self.settings = Settings()
        self.metrics = Metrics(lambda: (0, 0))
        self.last_reconcile: dict[str, Any] = {}
        self.problem = problem

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": False, "error": "not in this test", "exit_code": 1}

    def unhealthy(self) -> str | None:
        return self.problem


def test_healthy_and_a_stopped_loop(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        assert get(FakeDaemon(store), "/healthz").json() == {"status": "ok"}  # no token needed
        response = get(FakeDaemon(store, "the scheduler is not running"), "/healthz")
        assert response.status_code == 503
        assert response.json() == {"detail": "the scheduler is not running"}
    finally:
        store.close()


def test_a_store_that_does_not_answer(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    store = Store(f"sqlite:///{folder / 's.db'}")
    try:
        store.engine.dispose()
        shutil.rmtree(folder)  # the volume went away under the daemon
        response = get(FakeDaemon(store), "/healthz")
        assert response.status_code == 503
        assert response.json()["detail"].startswith("the store does not answer: OperationalError")
    finally:
        store.close()
