"""What a handler type is: a name, the pydantic model of its ``run:`` arguments, and later
the coroutine that runs it. Built-ins and plugins (entry-point group ``scheduler.handlers``)
are described the same way; ``scheduler.handlers.registry`` collects them for ``spec``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"


class HandlerArgs(BaseModel):
    """Base for the arguments of a ``run:`` block. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class HandlerType:
    """A kind of work a job can run, as registered by the scheduler or a plugin.

    ``args`` is the model of the ``run:`` block without its ``type`` key; ``run`` is the
    coroutine function the runner awaits (``None`` for types that only validate).
    """

    name: str
    args: type[BaseModel]
    run: Callable[..., Awaitable[Any]] | None = None
    description: str = ""
