"""Who may call the HTTP API, and what they may do: bearer tokens with a role each.

``SCHEDULER_API_TOKEN`` is one ``admin`` token (named ``SCHEDULER_API_TOKEN`` in the log);
``SCHEDULER_API_TOKENS`` names a file of ``TOKEN ROLE [NAME]`` lines. Roles are ordered:
``read`` (GET), ``operate`` (trigger, pause, resume, create/modify/delete instances, one-off
runs), ``admin`` (also reconcile). A line without a name is logged as ``token-`` and the
first 8 hex digits of the token's SHA-256, never the token itself.

Pure: reads the tokens file, never a socket or a database; the API (``api``, ``embed``)
asks ``Access.identify`` and ``required_role``. Caller: ``cli run`` (checks the file before
anything starts), ``api``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, TypeVar

from scheduler.errors import SchedulerError

TOKEN_ENV = "SCHEDULER_API_TOKEN"
TOKENS_ENV = "SCHEDULER_API_TOKENS"
ENV_TOKEN_NAME = TOKEN_ENV
MAX_FILE_BYTES = 1024 * 1024
# RFC 6750's b64token: what a client can put after "Bearer " without quoting.
TOKEN_CHARS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
NAME_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-._@_]{0,63}")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ROLE_ATTRIBUTE = "_scheduler_role"


class Role(IntEnum):
    """What a token may do; each role may do everything the ones below it may."""

    read = 1
    operate = 2
    admin = 3


@dataclass(frozen=True)
class Grant:
    """A known caller, as the log names it: never the token."""

    name: str
    role: Role


class TokensFileError(SchedulerError):
    """The tokens file cannot be used: the daemon refuses to start rather than guess."""


def token_name(token: str) -> str:
    """The name a token without one is logged under: a prefix of its hash, not the token."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def _problem(path: Path, line: int | None, col: int, message: str) -> TokensFileError:
    where = f"{path}:{line}:{col}" if line is not None else str(path)
    return TokensFileError(f"{where}: {message}")


def parse_tokens(path: Path, text: str) -> dict[str, Grant]:
    """``TOKEN ROLE [NAME]`` per line; blank lines and ``#`` comments are skipped. Every
    problem is ``PATH:LINE:COL: what is wrong`` (the token itself is never in a message)."""
    grants: dict[str, Grant] = {}
    names: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    roles = ", ".join(role.name for role in Role)
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", line)]
        if not fields or fields[0][1].startswith("#"):
            continue
        if len(fields) < 2 or len(fields) > 3:
            raise _problem(
                path,
                number,
                fields[0][0] if len(fields) < 2 else fields[3][0],
                f"expected 'TOKEN ROLE [NAME]' ({len(fields)} field(s) here), "
                "e.g. 'Zq3...long-random... operate ci-deploy'",
            )
        (_, token), (role_col, role_text) = fields[0], fields[1]
        if not TOKEN_CHARS.fullmatch(token):
            raise _problem(
                path,
                number,
                1,
                "the token has characters a bearer token cannot carry: use letters, digits "
                "and -._~+/ (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)",
            )
        try:
            role = Role[role_text]
        except KeyError:
            raise _problem(
                path, number, role_col, f"unknown role {role_text!r}: use one of {roles}"
            ) from None
        if len(fields) == 3:
            name_col, name = fields[2]
            if not NAME_CHARS.fullmatch(name):
                raise _problem(
                    path,
                    number,
                    name_col,
                    f"name {name!r}: use up to 64 letters, digits and -._@_, e.g. ci-deploy",
                )
            if name == ENV_TOKEN_NAME:
                raise _problem(
                    path,
                    number,
                    name_col,
                    f"the name {name} is the {TOKEN_ENV} token's: pick another",
                )
        else:
            name_col, name = 1, token_name(token)
        if token in grants:
            raise _problem(
                path,
                number,
                1,
                f"this token is already on line {lines_of[token]}: give each caller its own "
                "token, one line each",
            )
        if name in names:
            raise _problem(
                path,
                number,
                name_col,
                f"name {name!r} is already used on line {names[name]}: names tell callers "
                "apart in the log, so each must be unique",
            )
        grants[token] = Grant(name, role)
        names[name] = lines_of[token] = number
    if not grants:
        raise _problem(
            path,
            1,
            1,
            f"no tokens: add lines 'TOKEN ROLE [NAME]' (roles: {roles}), or unset {TOKENS_ENV}",
        )
    return grants


def read_tokens_file(path: Path) -> dict[str, Grant]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _problem(
            path, None, 0, f"no such file ({TOKENS_ENV}): create it or fix the path"
        ) from None
    except OSError as exc:
        raise _problem(
            path, None, 0, f"cannot read the tokens file: {exc.strerror or exc} ({TOKENS_ENV})"
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise _problem(path, None, 0, f"over {MAX_FILE_BYTES} bytes: is this the tokens file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _problem(path, line, 1, "not UTF-8 text: tokens are plain ASCII lines") from None
    return parse_tokens(path, text)


class Access:
    """The tokens the API accepts. ``identify`` compares the given token with every known
    one in constant time (no early exit), so response times say nothing about tokens."""

    def __init__(self, grants: Mapping[str, Grant]) -> None:
        self._tokens = [(token.encode(), grant) for token, grant in grants.items()]

    def __repr__(self) -> str:  # never the tokens
        return f"Access({len(self._tokens)} token(s))"

    def identify(self, given: str) -> Grant | None:
        given_bytes = given.encode()
        found: Grant | None = None
        for token, grant in self._tokens:
            if hmac.compare_digest(given_bytes, token) and found is None:
                found = grant
        return found

    @classmethod
    def load(
        cls, *, token: str | None = None, tokens_file: str | Path | None = None
    ) -> Access | None:
        """One admin token and/or a tokens file; None when neither is given (the API is
        then served on loopback only, see ``http_guard``)."""
        grants: dict[str, Grant] = {}
        if tokens_file:
            path = Path(tokens_file)
            grants = read_tokens_file(path)
            if token and token in grants:
                raise TokensFileError(
                    f"{path}: {TOKEN_ENV} is also a line of this file: give it one role, "
                    "in one place"
                )
        if token:
            grants[token] = Grant(ENV_TOKEN_NAME, Role.admin)
        return cls(grants) if grants else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Access | None:
        env = os.environ if environ is None else environ
        return cls.load(token=env.get(TOKEN_ENV) or None, tokens_file=env.get(TOKENS_ENV) or None)


F = TypeVar("F", bound=Callable[..., Any])


def requires(role: Role) -> Callable[[F], F]:
    """Mark a route's endpoint with the role it needs (put it under ``@router.post(...)``).
    Unmarked routes need ``read`` for GET/HEAD/OPTIONS and ``operate`` for any other
    method, so a new write route is never open to a read-only token by omission."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, ROLE_ATTRIBUTE, role)
        return endpoint

    return mark


def required_role(method: str, endpoint: object) -> Role:
    role = getattr(endpoint, ROLE_ATTRIBUTE, None)
    if isinstance(role, Role):
        return role
    return Role.read if method.upper() in SAFE_METHODS else Role.operate
