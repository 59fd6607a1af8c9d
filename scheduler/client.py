"""The command line's way to a daemon's HTTP API (``--url`` / ``SCHEDULER_URL``), for a
daemon on another host or in a cluster: the verbs that act go through the API instead of
the local socket and store. Errors come back as the same exceptions as locally."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from scheduler.errors import InvalidJobFiles, JobNotFound, SchedulerError, SpecProblem

if TYPE_CHECKING:
    import httpx

TOKEN_ENV = "SCHEDULER_API_TOKEN"


class ApiError(SchedulerError):
    """The daemon's API refused a request or could not be reached."""


def call(base_url: str, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of one request; None for 204 No Content (a DELETE)."""
    response = _request(base_url, method, path, **kwargs)
    return None if response.status_code == 204 else response.json()


def call_page(base_url: str, path: str, params: dict[str, Any]) -> tuple[Any, str | None]:
    """A GET of one page and the ``before`` cursor of the next (its Link header, rel=next)."""
    from urllib.parse import parse_qs, urlsplit

    response = _request(base_url, "GET", path, params=params)
    following = response.links.get("next", {}).get("url")
    cursors = parse_qs(urlsplit(following).query).get("before") if following else None
    return response.json(), cursors[0] if cursors else None


def _request(base_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    import httpx  # 60 ms of imports that only --url needs

    token = os.environ.get(TOKEN_ENV)
    # JSON content type on every request: without a token the API refuses state changes
    # that lack it (a cross-site form cannot send it).
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach the scheduler API at {base_url}: {exc}") from None
    if response.status_code < 400:
        return response
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    if response.status_code == 422 and isinstance(detail, dict) and detail.get("problems"):
        raise InvalidJobFiles(SpecProblem(**p) for p in detail["problems"])
    if response.status_code == 404 and path.startswith("/jobs/"):
        raise JobNotFound(path.split("/")[2])
    if response.status_code == 401:
        raise ApiError(
            f"{base_url} wants a token it knows: set {TOKEN_ENV} to the daemon's token (or a "
            "token from its SCHEDULER_API_TOKENS file)"
        )
    message = detail.get("message", detail) if isinstance(detail, dict) else detail
    raise ApiError(f"{method} {path}: HTTP {response.status_code}: {message}")
