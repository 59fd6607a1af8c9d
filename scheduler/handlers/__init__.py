"""Handler types by name: the built-ins plus plugins from the ``scheduler.handlers``
entry-point group. ``spec`` builds the ``run:`` union from a registry; the runner looks
handlers up in the same registry.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points
from typing import cast

from pydantic import BaseModel, ConfigDict

from scheduler.errors import SchedulerError
from scheduler.handlers import celery, cleanup, command, http, python
from scheduler.handlers.base import NAME_PATTERN, HandlerArgs, HandlerType

__all__ = ["HandlerArgs", "HandlerType", "Registry", "builtin_handlers", "default_registry"]

ENTRY_POINT_GROUP = "scheduler.handlers"
Registry = dict[str, HandlerType]


class PluginError(SchedulerError):
    """A plugin registered through ``scheduler.handlers`` could not be used."""


def builtin_handlers() -> list[HandlerType]:
    return [command.HANDLER, http.HANDLER, python.HANDLER, cleanup.HANDLER, celery.HANDLER]


def make_registry(handlers: Iterable[HandlerType]) -> Registry:
    registry: Registry = {}
    for handler in handlers:
        if not re.fullmatch(NAME_PATTERN, handler.name):
            raise PluginError(f"handler type name '{handler.name}' must match {NAME_PATTERN}")
        if handler.name in registry:
            raise PluginError(f"handler type '{handler.name}' is registered twice")
        registry[handler.name] = _forbid_unknown_keys(handler)
    return registry


def _forbid_unknown_keys(handler: HandlerType) -> HandlerType:
    """Unknown keys are errors for every type: a plugin whose args model is a plain
    ``BaseModel`` (not ``HandlerArgs``) would otherwise drop a misspelt key silently."""
    args = handler.args
    if args.model_config.get("extra") == "forbid":
        return handler
    strict = type(
        args.__name__,
        (args,),
        {"__module__": args.__module__, "model_config": ConfigDict(extra="forbid")},
    )
    return dataclasses.replace(handler, args=cast(type[BaseModel], strict))


def plugin_handlers() -> list[HandlerType]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            handler = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin '{ep.name} = {ep.value}' failed to load ({exc}): fix or uninstall it"
            ) from exc
        if callable(handler) and not isinstance(handler, HandlerType):
            handler = handler()
        if not isinstance(handler, HandlerType):
            raise PluginError(
                f"plugin '{ep.name} = {ep.value}' must point at a scheduler.handlers.HandlerType"
            )
        found.append(handler)
    return found


@cache
def default_registry() -> Registry:
    """The built-ins and every installed plugin; loaded once per process."""
    return make_registry([*builtin_handlers(), *plugin_handlers()])
