"""Template parameters and limits: their models, checking an instance's values against
them, and their JSON Schema (what a front end builds a form from). Pure: no file, database
or clock. Callers: ``templates``, ``spec`` (the file model), ``instances``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scheduler.durations import Duration

PARAM_NAME = r"^[a-z_][a-z0-9_]{0,62}$"
SCALARS = ("string", "integer", "number", "boolean")
SCHEDULE_KINDS = ("cron", "interval", "at")
ParamType = Literal["string", "integer", "number", "boolean", "list"]
ItemType = Literal["string", "integer", "number", "boolean"]
ScheduleKind = Literal["cron", "interval", "at"]


def _all_kinds() -> list[ScheduleKind]:
    return ["cron", "interval", "at"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    """One parameter of a template."""

    type: ParamType = Field(default="string", description="string, integer, number, boolean, list")
    items: ItemType = Field(default="string", description="the type of a list's items")
    required: bool = Field(default=False, description="an instance must give it")
    default: Any = Field(default=None, description="the value when an instance gives none")
    enum: list[Any] | None = Field(default=None, description="the only values allowed")
    min: float | None = Field(default=None, description="smallest number (integer, number)")
    max: float | None = Field(default=None, description="largest number (integer, number)")
    pattern: str | None = Field(default=None, description="a regular expression strings match")
    max_length: int | None = Field(
        default=None,
        ge=0,
        description="longest string; for a list, most items (bound an item's text with "
        "pattern, e.g. '.{0,50}')",
    )
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _default_fits(self) -> Param:
        if self.required and self.default is not None:
            raise ValueError("a required parameter has no default: drop one of them")
        if self.default is not None:
            problem = check_value(self, self.default)
            if problem:
                raise ValueError(f"default: {problem}")
        return self


class Limits(_Strict):
    """What instances of a template may do."""

    max_jobs: int | None = Field(default=None, ge=1, description="instances alive at once")
    min_interval: Duration | None = Field(
        default=None, description="the shortest time between two runs of one instance"
    )
    schedules: list[ScheduleKind] = Field(
        default_factory=_all_kinds,
        description="the schedule kinds an instance may use",
    )


class TemplateHead(_Strict):
    params: dict[str, Param] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)

    @field_validator("params")
    @classmethod
    def _names(cls, value: dict[str, Param]) -> dict[str, Param]:
        for name in value:
            if not re.fullmatch(PARAM_NAME, name):
                raise ValueError(
                    f"parameter name '{name}' must be lowercase letters, digits or '_', "
                    "starting with a letter or '_'"
                )
        return value


# -- parameter values -------------------------------------------------------------------


def _scalar_problem(kind: str, value: Any) -> str | None:
    if kind == "string":
        return None if isinstance(value, str) else "must be a string"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be {'an integer' if kind == 'integer' else 'a number'}"
    if kind == "integer" and not isinstance(value, int):
        return "must be an integer"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


def check_value(param: Param, value: Any) -> str | None:
    """What is wrong with ``value`` for ``param``, or None."""
    if param.type == "list":
        if not isinstance(value, list):
            return f"must be a list of {param.items} values"
        if param.max_length is not None and len(value) > param.max_length:
            return f"has {len(value)} items, more than the {param.max_length} allowed"
        for index, item in enumerate(value):  # max_length counted the items, not their text
            problem = _scalar_problem(param.items, item) or _bounds(param, item, length=False)
            if problem:
                return f"item {index} {problem}"
        return None
    problem = _scalar_problem(param.type, value)
    return problem or _bounds(param, value)


def _bounds(param: Param, value: Any, *, length: bool = True) -> str | None:
    """``enum``, ``pattern``, ``min``/``max`` and (``length``) ``max_length`` of one value."""
    if param.enum is not None and value not in param.enum:
        return f"must be one of {', '.join(json.dumps(v) for v in param.enum)}"
    if isinstance(value, str):
        if "\0" in value:
            return "holds a NUL byte, which no program can receive"
        if length and param.max_length is not None and len(value) > param.max_length:
            return f"is {len(value)} characters long, more than the {param.max_length} allowed"
        if param.pattern is not None and not re.fullmatch(param.pattern, value):
            return f"does not match the pattern {param.pattern}"
    elif not isinstance(value, bool) and isinstance(value, int | float):
        if param.min is not None and value < param.min:
            return f"must be at least {param.min:g}"
        if param.max is not None and value > param.max:
            return f"must be at most {param.max:g}"
    return None


def from_text(param: Param, text: str) -> Any:
    """A command line's ``--param k=v`` value as the parameter's type (lists: comma-separated)."""
    if param.type == "list":
        return [_scalar_from_text(param.items, part) for part in text.split(",")] if text else []
    return _scalar_from_text(param.type, text)


def _scalar_from_text(kind: str, text: str) -> Any:
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text  # reported by check_value, naming the parameter
    if kind == "boolean" and text.lower() in ("true", "false", "yes", "no", "1", "0"):
        return text.lower() in ("true", "yes", "1")
    return text


@dataclass(frozen=True)
class ParamProblem:
    param: str
    message: str

    def __str__(self) -> str:
        return f"params.{self.param}: {self.message}"


def resolve_params(
    head: TemplateHead, given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[ParamProblem]]:
    """The values an instance gets (given, else defaults) and every problem with them."""
    problems = [
        ParamProblem(name, f"unknown parameter: this template takes {param_names(head) or 'none'}")
        for name in given
        if name not in head.params
    ]
    values: dict[str, Any] = {}
    for name, param in head.params.items():
        if name in given and given[name] is not None:
            problem = check_value(param, given[name])
            if problem:
                problems.append(ParamProblem(name, problem))
            values[name] = given[name]
        elif param.required:
            problems.append(ParamProblem(name, "missing required parameter"))
        else:
            values[name] = param.default
    return values, problems


def param_names(head: TemplateHead) -> str:
    return ", ".join(sorted(head.params))


def params_json_schema(head: TemplateHead) -> dict[str, Any]:
    """The parameters as a JSON Schema object (what a front end builds its form from)."""
    properties: dict[str, Any] = {}
    for name, param in head.params.items():
        kinds = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
        scalar: dict[str, Any] = {}
        if param.enum is not None:
            scalar["enum"] = param.enum
        if param.min is not None:
            scalar["minimum"] = param.min
        if param.max is not None:
            scalar["maximum"] = param.max
        if param.pattern is not None:
            scalar["pattern"] = param.pattern
        entry: dict[str, Any]
        if param.type == "list":
            entry = {"type": "array", "items": {"type": kinds[param.items], **scalar}}
            if param.max_length is not None:
                entry["maxItems"] = param.max_length
        else:
            entry = {"type": kinds[param.type], **scalar}
            if param.max_length is not None:
                entry["maxLength"] = param.max_length
        if param.default is not None:
            entry["default"] = param.default
        if param.description:
            entry["description"] = param.description
        properties[name] = entry
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(n for n, p in head.params.items() if p.required),
        "additionalProperties": False,
    }
