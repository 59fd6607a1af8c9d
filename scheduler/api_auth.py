"""Who a request to the API is for and from: the ``Binding`` of a router to one scheduler
(its ``Control`` and the tokens it accepts), and the dependencies every route gets:
``authorize`` (401 for no or an unknown token, 403 naming the role a route needs, a log line
for every write with the caller's name) and ``local_clients_only`` (``http_guard``'s checks
for a router mounted in an app, where no middleware of ours runs).

A route's role: ``tokens.requires(Role.admin)`` under its ``@router.post(...)``; unmarked
routes need ``read`` for GET and ``operate`` for any other method. Callers: ``api``,
``api_instances``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scheduler.http_guard import Refused, check_local
from scheduler.tokens import TOKEN_ENV, TOKENS_ENV, Access, Grant, Role, required_role

if TYPE_CHECKING:
    from scheduler.api import Control

log = logging.getLogger("scheduler.api")

_bearer = HTTPBearer(auto_error=False)
BINDING = "scheduler.binding"  # the request scope key of the serving scheduler
LOCAL = Grant("local", Role.admin)  # no tokens: loopback only (http_guard) or the host's auth


@dataclass(frozen=True)
class Binding:
    """Which scheduler a request is for, and the tokens it accepts (None: no tokens)."""

    control: Control
    access: Access | None


def binding_of(request: Request) -> Binding:
    binding: Binding = request.scope[BINDING]
    return binding


async def control_of(request: Request) -> Control:
    """The ``Control`` dependency of every route (async: a sync dependency costs a thread
    pool hop per request)."""
    return binding_of(request).control


async def authorize(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[None]:
    """Who calls (401 for no or an unknown token), whether their role suffices (403, naming
    the role needed), and a log line for every write with the token's name and outcome."""
    access = binding_of(request).access
    method = request.method
    where = f"{method} {request.scope['path']}"  # request.url would build a URL each time
    if access is None:
        grant = LOCAL
    else:
        found = access.identify(creds.credentials if creds is not None else "")
        if found is None:
            log.warning("API %s refused: %s bearer token", where, "an unknown" if creds else "no")
            raise HTTPException(
                401,
                "missing or unknown bearer token: send 'Authorization: Bearer TOKEN' with a "
                f"token from {TOKEN_ENV} or the {TOKENS_ENV} file",
                headers={"WWW-Authenticate": "Bearer"},
            )
        grant = found
    needed = required_role(method, request.scope.get("endpoint"))
    if grant.role < needed:
        log.warning("API %s refused: token %r has role %s", where, grant.name, grant.role.name)
        raise HTTPException(
            403,
            f"token {grant.name!r} has the role {grant.role.name}; {where} needs "
            f"{needed.name}: use a token with that role (roles: read < operate < admin)",
        )
    if needed == Role.read:
        yield
        return
    route = request.scope.get("route")
    try:
        yield
    except HTTPException as exc:
        log.info("API %s by %s (%s): %d", where, grant.name, grant.role.name, exc.status_code)
        raise
    except Exception:
        log.info("API %s by %s (%s): failed", where, grant.name, grant.role.name)
        raise
    status = getattr(route, "status_code", None) or 200
    log.info("API %s by %s (%s): %d", where, grant.name, grant.role.name, status)


async def local_clients_only(request: Request) -> None:
    """``http_guard``'s loopback checks, for a router mounted in an app (no middleware)."""
    try:
        check_local(request.method, dict(request.headers))
    except Refused as refused:
        raise HTTPException(refused.status, refused.detail) from None
