"""A store that cannot be used, said in one line: which database (password masked), the
cause, and what to do. A malformed URL, a missing driver, a read-only file or directory and
an unreachable server all end here instead of in an SQLAlchemy traceback.

Callers: ``store`` (opening an engine), ``cli`` (any database error a verb or the daemon's
start-up meets).
"""

from __future__ import annotations

import re

from scheduler.errors import SchedulerError

URL_HELP = "--db or SCHEDULER_DB"
EXAMPLES = "e.g. sqlite:///var/lib/scheduler/scheduler.db or postgresql+psycopg://user@host/db"

# (words in the driver's message, what to do): the first match wins.
HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("readonly", "read-only", "read only", "unable to open database file", "permission"),
        "make the database writable for this user (for SQLite: the file and its directory), "
        f"or point {URL_HELP} at a writable store",
    ),
    (
        ("password", "access denied", "authentication"),
        f"check the user and password in the URL ({URL_HELP})",
    ),
    (
        ("does not exist", "unknown database"),
        f"create the database, or fix its name in the URL ({URL_HELP})",
    ),
    (
        ("connect", "refused", "timeout", "timed out", "resolve", "translate host", "route"),
        "check that the database server runs and accepts connections at the URL's host and "
        f"port ({URL_HELP})",
    ),
)


class StoreUnavailable(SchedulerError):
    """The store's URL is unusable, or its database cannot be opened or written."""

    def __init__(self, url: str, cause: str, action: str) -> None:
        self.url = masked(url)
        super().__init__(f"cannot use the store {self.url}: {cause}: {action}")


def masked(url: str) -> str:
    """The URL as given, its password replaced by ``***`` (also when it does not parse)."""
    return re.sub(r"^([\w+.-]+://[^:/@]*:)[^/]*@", r"\1***@", url)


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[:1]).strip() or "no reason given"


def explain(url: str, exc: BaseException) -> StoreUnavailable:
    """Why ``exc`` (met while opening or using the store at ``url``) stops us, and what to do."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.NoSuchModuleError):  # before ArgumentError: a subclass of it
        kind = str(exc).rsplit(":", 1)[-1].strip()
        return StoreUnavailable(
            url, f"unknown database kind {kind!r}", f"give a URL with {URL_HELP}, {EXAMPLES}"
        )
    if isinstance(exc, sa.ArgumentError):
        return StoreUnavailable(url, "not a database URL", f"give one with {URL_HELP}, {EXAMPLES}")
    if isinstance(exc, ImportError):
        return StoreUnavailable(
            url,
            f"its driver is not installed ({exc.name or exc})",
            "install it, or name an installed driver in the URL, e.g. postgresql+psycopg:// "
            "or mysql+pymysql://",
        )
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return StoreUnavailable(
            url,
            f"{exc.strerror or exc}{where}",
            f"create the directory and make it writable, or point {URL_HELP} elsewhere",
        )
    cause = _first_line(str(exc.orig) if isinstance(exc, sa.DBAPIError) else str(exc))
    lowered = cause.lower()
    for words, action in HINTS:
        if any(word in lowered for word in words):
            return StoreUnavailable(url, cause, action)
    return StoreUnavailable(url, cause, f"check the database and its URL ({URL_HELP})")
