"""The ``http`` handler: send one request and check the response status."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from scheduler.handlers.base import HandlerArgs, HandlerType, Result, RunContext
from scheduler.handlers.variables import MissingVariable, Resolver

if TYPE_CHECKING:  # imported by the first run, not by `validate`
    pass

BODY_EXCERPT = 4096  # characters of the body kept with the run
HEAD_BYTES = 4 * BODY_EXCERPT  # enough bytes for 4,096 characters of any encoding
DEFAULT_TIMEOUT = 300.0  # seconds without progress, when the job declares no timeout


class HttpArgs(HandlerArgs):
    """Send an HTTP request; the status and a body excerpt are recorded with the run."""

    url: str = Field(
        pattern=r"^https?://[^\s/]+",
        description="http:// or https:// URL; ${VAR} is resolved from the daemon's environment "
        "at run time and never stored ($${ for a literal ${)",
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(
        default_factory=dict, description="${VAR} comes from the daemon's environment at run time"
    )
    json_body: Any = Field(default=None, alias="json", description="sent as JSON; ${VAR} as in url")
    body: str | None = Field(default=None, description="sent as is; ${VAR} as in url")
    expect_status: list[int] = Field(
        default_factory=list,
        description="statuses that count as success (default: any 2xx)",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expect_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("expect_status")
    @classmethod
    def _real_statuses(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status (100-599)")
        return value

    @model_validator(mode="after")
    def _one_payload(self) -> HttpArgs:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either json or body, not both")
        return self


def _expand_json(value: Any, resolver: Resolver, where: str) -> Any:
    if isinstance(value, str):
        return resolver.braced(value, where)
    if isinstance(value, list):
        return [_expand_json(item, resolver, where) for item in value]
    if isinstance(value, dict):
        return {k: _expand_json(v, resolver, f"{where}.{k}") for k, v in value.items()}
    return value


async def run_http(ctx: RunContext, args: HttpArgs) -> Result:
    """One request; the job's ``timeout`` bounds it (the runner cancels it)."""
    resolver = Resolver(os.environ)
    try:
        url = resolver.braced(args.url, "url")
        declared = {k: resolver.braced(v, f"header {k}") for k, v in args.headers.items()}
        body = resolver.braced(args.body, "body") if args.body is not None else None
        json_body = _expand_json(args.json_body, resolver, "json")
    except MissingVariable as exc:
        return Result("failure", error=str(exc))
    result = await _request(ctx, args, url, declared, body, json_body)
    result.masked = resolver.masked()
    return result


async def _request(
    ctx: RunContext,
    args: HttpArgs,
    url: str,
    declared: dict[str, str],
    body: str | None,
    json_body: Any,
) -> Result:
    tls = await _tls_context()
    import httpx  # imported by _tls_context, in a thread

    headers = {
        "User-Agent": "declarative-scheduler",
        "X-Scheduler-Job-Id": ctx.job_id,
        "X-Scheduler-Run-Id": ctx.run_id,
        **declared,
    }
    payload = json_body
    method = args.method
    if payload is None and body is None and ctx.payload is not None:
        payload = ctx.payload  # a notifier sends the finished run's details...
        if "method" not in args.model_fields_set:
            method = "POST"  # ...as webhooks expect them, unless told otherwise
    # The job's own timeout bounds the whole request (the runner cancels it); without one,
    # a stalled server must not hold the job (and, with forbid, every later run) forever.
    limit = None if ctx.timeout else DEFAULT_TIMEOUT
    try:
        async with (
            httpx.AsyncClient(timeout=limit, follow_redirects=True, verify=tls) as client,
            client.stream(
                method,
                url,
                headers=headers,
                json=payload,
                content=body.encode() if body is not None else None,
            ) as response,
        ):
            head = await _read_head(response)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Result("failure", error=f"{type(exc).__name__}: {exc}{_root_cause(exc)}")
    ok = (
        response.status_code in args.expect_status
        if args.expect_status
        else (200 <= response.status_code < 300)
    )
    excerpt = head.decode(response.encoding or "utf-8", errors="replace")[:BODY_EXCERPT]
    output = f"HTTP {response.status_code} {response.reason_phrase}\n{excerpt}"
    if ok:
        return Result("success", exit_code=response.status_code, output=output)
    expected = ", ".join(map(str, args.expect_status)) or "2xx"
    return Result(
        "failure",
        exit_code=response.status_code,
        output=output,
        error=f"HTTP {response.status_code}, expected {expected}",
    )


_TLS: dict[str, Any] = {}  # one TLS context per process, shared by every request


async def _tls_context() -> Any:
    """Importing httpx and loading the CA bundle take 50-300 ms of CPU: done once, in a
    thread, not on the daemon's loop in every run (``/healthz`` stood still meanwhile).
    httpx is imported only when a request is made: job files are validated without it."""
    import asyncio

    if "context" not in _TLS:

        def build() -> Any:
            import httpx

            return httpx.create_ssl_context()

        _TLS["context"] = await asyncio.to_thread(build)
    return _TLS["context"]


async def _read_head(response: Any) -> bytes:
    """The whole body is read (the request is not done before it ends), but only its start
    is kept: a 400 MB response held in memory took the daemon from 83 to 935 MB for good."""
    head = bytearray()
    async for chunk in response.aiter_bytes():
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
    return bytes(head)


def _root_cause(exc: BaseException) -> str:
    """What httpx's message hides: "All connection attempts failed" is refused, unreachable
    or a failed name lookup, which only the innermost exception says."""
    root = exc
    while (inner := root.__cause__ or root.__context__) is not None:
        root = inner
    if isinstance(root, OSError) and root.errno and root.errno > 0:
        detail = os.strerror(root.errno)
    else:
        detail = str(getattr(root, "strerror", None) or root)
    return "" if root is exc or detail in str(exc) else f" ({detail})"


HANDLER = HandlerType("http", HttpArgs, run_http, HttpArgs.__doc__ or "")
