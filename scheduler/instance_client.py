"""The command line's way to create, modify and delete instances and to ask for one-off
runs (``instance_ops.OPS``): through the daemon's API with ``--url``, else the daemon on this
host's socket, else the leader through the store, else on the store directly (one writer:
under the store's lock, then ``handoff.bump``). Callers: ``cli_instances``, ``cli``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from scheduler import handoff, instance_ops
from scheduler.client import call
from scheduler.control import StoreBusy, WriterLock, ask, runtime_paths
from scheduler.service import unwrap
from scheduler.settings import Settings
from scheduler.store import Store


def act(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one request; its result, with ``via`` saying who did."""
    if settings.api_url:
        return {**_over_http(settings.api_url, request), "via": "api"}
    paths = runtime_paths(settings.db)
    reply = ask(paths.socket, request)
    if reply is not None:
        return {**unwrap(reply), "via": "daemon"}
    store = Store(settings.db, create=False)
    try:
        leader = handoff.live_leader(store)
        if leader is not None:
            reply = handoff.ask_leader(store, request)
            return {**unwrap(reply), "via": f"leader {leader.holder}"}
        return {**_on_store(store, paths.lock, request), "via": "store"}
    finally:
        store.close()


def _on_store(store: Store, lock_path: Any, request: dict[str, Any]) -> dict[str, Any]:
    lock = WriterLock(lock_path)
    if not lock.acquire(blocking=True):  # pragma: no cover - blocking always succeeds
        raise StoreBusy("could not lock the store")
    try:
        now = datetime.now(UTC)
        done = instance_ops.carry_out(store, request, now)
        if done.run is not None:
            if done.run.at <= now:  # runs now belong to a daemon
                raise StoreBusy(
                    f"no scheduler daemon runs for this store, so nothing would run "
                    f"{done.run.job_id} now: start `scheduler run` (or pass --url to reach "
                    "one), or give --in/--at to have the next daemon run it then"
                )
            instance_ops.store_one_off(store, done.run)
    finally:
        lock.release()
    handoff.bump(store)  # a daemon starting meanwhile still sees it
    return done.result


def _over_http(base: str, request: dict[str, Any]) -> dict[str, Any]:
    op, job_id = request["op"], quote(str(request.get("job_id") or ""), safe="")
    params = request.get("params")
    if params and request.get("text_params"):
        params = _typed_over_http(base, request)
    if op == "create":
        body = {
            "id": request.get("job_id"),
            "params": params or {},
            "schedule": request.get("schedule"),
            "description": request.get("description"),
        }
        name = quote(str(request["template"]), safe="")
        return dict(call(base, "POST", f"/templates/{name}/jobs", json=body))
    if op == "modify":
        body = {k: request.get(k) for k in ("schedule", "description")} | {"params": params}
        return dict(call(base, "PATCH", f"/jobs/{job_id}", json=body))
    if op == "remove":
        call(base, "DELETE", f"/jobs/{job_id}")
        return {"id": request["job_id"], "removed": True}
    body = {"in": request.get("in"), "at": request.get("at"), "params": params}
    return dict(call(base, "POST", f"/jobs/{job_id}/runs", json=body))


def _typed_over_http(base: str, request: dict[str, Any]) -> dict[str, Any]:
    """``--param`` texts typed by the template's JSON Schema, read from the API."""
    name = request.get("template")
    if request["op"] != "create":
        name = call(base, "GET", f"/jobs/{quote(str(request['job_id']), safe='')}").get("template")
    given: dict[str, Any] = dict(request.get("params") or {})
    if not name:
        return given
    schema = call(base, "GET", f"/templates/{quote(str(name), safe='')}")["params"]
    for key, value in given.items():
        kind = schema["properties"].get(key, {}).get("type")
        if isinstance(value, str):
            given[key] = _typed(kind, schema["properties"].get(key, {}), value)
    return given


def _typed(kind: str | None, entry: dict[str, Any], text: str) -> Any:
    if kind == "array":
        item = entry.get("items", {})
        return [_typed(item.get("type"), item, part) for part in text.split(",")] if text else []
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text  # the API names the parameter
    if kind == "boolean" and text.lower() in ("true", "false", "yes", "no", "1", "0"):
        return text.lower() in ("true", "yes", "1")
    return text
