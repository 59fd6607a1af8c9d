"""What a job sees of the daemon's environment, and what it must never show of it.

Jobs get a clean environment: the daemon's own settings (``SCHEDULER_*``, which hold its
database URL and API token) and any variable holding a URL with a password are never passed
on; ``inherit_env`` and ``env`` say what goes in. ``${VAR}`` in job arguments is resolved
from the daemon's environment at run time (nothing resolved is ever stored), and every
value resolved that way is masked as ``***`` wherever the run's text is kept or sent.
Callers: the command and http handlers, and the runner (masking).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping

MASK = "***"
MIN_MASKED = 4  # shorter values would mask ordinary text ("1", "on") everywhere
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OWN_PREFIX = "SCHEDULER_"
_CREDENTIAL_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")
_BRACED = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingVariable(Exception):
    """A ``${VAR}`` names a variable the daemon's environment does not have."""


def never_passed(name: str, value: str) -> bool:
    """The daemon's own settings and credentials: kept from every job's environment."""
    return name.startswith(OWN_PREFIX) or bool(_CREDENTIAL_URL.match(value))


def inherited(base: Mapping[str, str], inherit: bool | list[str]) -> dict[str, str]:
    """The part of the daemon's environment a job starts with (before its ``env:``).
    ``true``: all of it but what is never passed; ``false``: only a default ``PATH``;
    a list: those names (if set), and the default ``PATH`` unless ``PATH`` is listed."""
    if inherit is True:
        return {k: v for k, v in base.items() if not never_passed(k, v)}
    names = inherit if isinstance(inherit, list) else []
    picked = {k: base[k] for k in names if k in base and not never_passed(k, base[k])}
    picked.setdefault("PATH", DEFAULT_PATH)
    return picked


class Resolver:
    """Resolves ``${VAR}`` from ``base`` and remembers every value it handed out."""

    def __init__(self, base: Mapping[str, str]) -> None:
        self.base = base
        self.used: set[str] = set()

    def template(self, value: str, where: str) -> str:
        """``$VAR`` and ``${VAR}``, ``$$`` for a literal ``$`` (a command's ``env``)."""
        resolver = self

        class Recording(dict[str, str]):
            def __missing__(self, key: str) -> str:
                if key not in resolver.base:
                    raise KeyError(key)
                resolver.used.add(resolver.base[key])
                return resolver.base[key]

        try:
            return string.Template(value).substitute(Recording())
        except KeyError as exc:
            raise MissingVariable(_missing(where, str(exc.args[0]))) from None
        except ValueError as exc:
            raise MissingVariable(f"{where}: {exc} (write $$ for a literal $)") from None

    def braced(self, value: str, where: str) -> str:
        """Only ``${VAR}``, ``$${`` for a literal ``${``; any other ``$`` is kept as is
        (http urls, headers and bodies, where ``$`` is ordinary text)."""

        def one(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if name not in self.base:
                raise MissingVariable(_missing(where, name))
            self.used.add(self.base[name])
            return self.base[name]

        return _BRACED.sub(one, value)

    def masked(self) -> tuple[str, ...]:
        return tuple(self.used)


def _missing(where: str, name: str) -> str:
    return (
        f"{where} uses ${{{name}}}, which is not set in the scheduler's environment: "
        "set it where the daemon starts"
    )


def mask(text: str | None, values: Iterable[str]) -> str | None:
    """``text`` with every value (long enough to mean something) replaced by ``***``."""
    if not text:
        return text
    for value in sorted({v for v in values if len(v) >= MIN_MASKED}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
