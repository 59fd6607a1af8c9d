"""What every HTTP request to the API passes before any route sees it: a bounded body (413
over 1 MiB), JSON nested no deeper than a real request needs (400), and, when no token is
set (a loopback bind: the documented default), a ``Host`` naming this machine (against DNS
rebinding) and, for state-changing methods, no foreign ``Origin`` and a JSON content type
(a cross-site form or ``fetch`` can send neither without a CORS preflight we never grant).

A plain ASGI middleware, so it guards ``/openapi.json`` and ``/docs`` too. Caller: ``api``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

MAX_BODY_BYTES = 1024 * 1024
DRAIN_BYTES = 16 * MAX_BODY_BYTES  # an oversized body read (not kept) to answer 413 cleanly
MAX_JSON_DEPTH = 32
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def json_depth(body: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings, without parsing: a linear
    scan that a 1 MiB body of brackets cannot turn into a recursion error."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _host_name(value: str) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``; ``[::1]:80`` -> ``::1``."""
    return urlsplit(f"//{value}").hostname or ""


def check_local(method: str, headers: dict[str, str]) -> None:
    """The checks that stand in for a token on a loopback bind."""
    host = headers.get("host", "")
    if not is_loopback(_host_name(host)):
        raise Refused(
            421,
            f"Host {host!r} is not this machine: without SCHEDULER_API_TOKEN the API answers "
            "only to localhost/127.0.0.1 (set a token to serve other names)",
        )
    if method in SAFE_METHODS:
        return
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        # Same origin only: another local web app (localhost:3000) is cross-site too.
        raise Refused(
            403,
            f"cross-site request from Origin {origin!r} refused: without SCHEDULER_API_TOKEN "
            "only local clients may change state",
        )
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Refused(
            415,
            f"{method} needs 'Content-Type: application/json' (got {content_type or 'none'!r}):"
            " send it, e.g. curl -X POST -H 'Content-Type: application/json' ...",
        )


class RequestGuard:
    """``RequestGuard(app, local_only=True)``: local_only when no token guards the API."""

    def __init__(self, app: App, *, local_only: bool) -> None:
        self.app = app
        self.local_only = local_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        try:
            if self.local_only:
                check_local(scope["method"], headers)
            body = await self._read_body(headers, receive)
            few = body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH  # the usual case
            if not few and json_depth(body) > MAX_JSON_DEPTH:
                raise Refused(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels: refused")
        except Refused as refused:
            await _reply(send, refused.status, refused.detail)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect

        await self.app(scope, replay, send)

    @staticmethod
    async def _read_body(headers: dict[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length", "")
        over = declared.isdigit() and int(declared) > MAX_BODY_BYTES
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            over = over or size > MAX_BODY_BYTES
            if not over:
                chunks.append(chunk)
            # Past the limit the rest is read and dropped (up to a point) before the 413:
            # closing on unread data resets the connection, and the client never sees why.
            if not message.get("more_body", False) or size > DRAIN_BYTES:
                break
        if over:
            raise Refused(
                413, f"request body over {MAX_BODY_BYTES} bytes: the API takes small JSON bodies"
            )
        return b"".join(chunks)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
