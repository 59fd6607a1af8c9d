"""Templates: the kinds of jobs that may be created at run time, declared in the job files
beside ``jobs:`` with typed parameters and limits; and rendering one into a job spec.

A template is a job body (its ``schedule`` optional: a default) plus ``params:`` and
``limits:``. ``${params.NAME}`` placeholders may stand only in whole values the handler
passes on without a shell: ``run.command`` list elements, an http ``url``/``headers``/
``json``, python ``kwargs``. A placeholder inside a shell string is refused. Rendering
never builds a shell line: a command element stays one argument whatever the value holds,
a url part is percent-encoded, and ``${`` in a value is escaped so the http handler's own
``${VAR}`` expansion never sees it. Pure: no file, database or clock.
Callers: ``loader`` (checks templates in files), ``reconciler``, ``instances``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from scheduler.params import TemplateHead, param_names
from scheduler.spec import JobSpec, canonical_text, fingerprint

PLACEHOLDER = re.compile(r"\$\{params\.([^}]*)\}")
HEAD_KEYS = ("params", "limits")
# Validation renders a template with sample values and this schedule when it has none.
SAMPLE_SCHEDULE = {"interval": "1s"}


# -- where placeholders may stand, and rendering ----------------------------------------

Loc = tuple[str | int, ...]


def _region(loc: Loc, run_type: Any) -> str | None:
    """The kind of place ``loc`` is (``command``, ``url``, ``header``, ``json``, ``kwargs``),
    or None where no placeholder may stand."""
    if len(loc) < 2 or loc[0] != "run":
        return None
    key = loc[1]
    if key == "command" and len(loc) == 3 and isinstance(loc[2], int):
        return "command"
    if run_type == "http":
        if key == "url" and len(loc) == 2:
            return "url"
        if key == "headers" and len(loc) == 3:
            return "header"
        if key == "json":
            return "json"
    if run_type == "python" and key == "kwargs" and len(loc) >= 3:
        return "kwargs"
    return None


def _strings(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


def placement_problems(body: Mapping[str, Any], head: TemplateHead) -> list[tuple[Loc, str]]:
    """Placeholders where none may stand, or naming no declared parameter."""
    run = body.get("run")
    run_type = run.get("type") if isinstance(run, dict) else None
    found: list[tuple[Loc, str]] = []
    for loc, text in _strings(dict(body)):
        names = PLACEHOLDER.findall(text)
        if not names:
            continue
        if loc == ("run", "command"):
            found.append(
                (
                    loc,
                    "a parameter inside a shell string is refused: write command as a list "
                    '(["prog", "--flag", "${params.x}"]) so each value stays one argument, '
                    "never read by a shell",
                )
            )
            continue
        if _region(loc, run_type) is None:
            where = ".".join(str(step) for step in loc)
            found.append(
                (
                    loc,
                    f"{where}: ${{params.…}} may only stand in run.command list items, an http "
                    "url, headers or json, or python kwargs",
                )
            )
            continue
        for name in names:
            if name not in head.params:
                found.append(
                    (
                        loc,
                        f"${{params.{name}}}: no such parameter "
                        f"(declared: {param_names(head) or 'none'})",
                    )
                )
    return found


class RenderProblem(ValueError):
    """A value that cannot go where its template puts it (a newline in a header)."""


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_text(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else str(value)
    return str(value)


def _escape_env(value: Any) -> Any:
    """Keep the http handler's ``${VAR}`` expansion away from a parameter's text."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, list):
        return [_escape_env(item) for item in value]
    return value


def _render_string(text: str, values: Mapping[str, Any], region: str) -> Any:
    whole = PLACEHOLDER.fullmatch(text)
    if whole is not None:
        value = values.get(whole.group(1))
        if region in ("json", "kwargs"):
            return _escape_env(value) if region == "json" else value
        if region == "command":
            return value  # spliced by the caller: a list is several arguments, None none
        rendered = _as_text(value)
    else:

        def one(match: re.Match[str]) -> str:
            part = _as_text(values.get(match.group(1)))
            return quote(part, safe="") if region == "url" else part

        rendered = PLACEHOLDER.sub(one, text)
    if region == "header" and ("\n" in rendered or "\r" in rendered):
        raise RenderProblem("a header value cannot hold a line break")
    return _escape_env(rendered) if region in ("url", "header", "json") else rendered


def render(body: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The job body with every placeholder replaced (placement was checked beforehand)."""
    run = body.get("run")
    run_type = run.get("type") if isinstance(run, dict) else None

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, str):
            region = _region(loc, run_type)
            return value if region is None else _render_string(value, values, region)
        if isinstance(value, dict):
            return {key: walk(item, (*loc, str(key))) for key, item in value.items()}
        if isinstance(value, list):
            if loc == ("run", "command"):
                return _command(value, loc)
            return [walk(item, (*loc, index)) for index, item in enumerate(value)]
        return value

    def _command(items: list[Any], loc: Loc) -> list[Any]:
        out: list[Any] = []
        for index, item in enumerate(items):
            rendered = walk(item, (*loc, index))
            if isinstance(item, str) and PLACEHOLDER.fullmatch(item):
                if rendered is None:
                    continue
                if isinstance(rendered, list):
                    out.extend(_as_text(v) for v in rendered)
                    continue
                rendered = _as_text(rendered)
            out.append(rendered)
        return out

    return {key: walk(value, (key,)) for key, value in body.items()}


def sample_values(head: TemplateHead) -> dict[str, Any]:
    """Values that stand in for real ones when a template is checked."""
    samples = {"string": "x", "integer": 1, "number": 1.0, "boolean": True}
    values: dict[str, Any] = {}
    for name, param in head.params.items():
        if param.default is not None:
            values[name] = param.default
        elif param.enum:
            values[name] = param.enum[0] if param.type != "list" else [param.enum[0]]
        elif param.type == "list":
            values[name] = [samples[param.items]]
        else:
            values[name] = samples[param.type]
            if param.type in ("integer", "number") and param.min is not None:
                values[name] = int(param.min) if param.type == "integer" else param.min
    return values


# -- a declared template ----------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """YAML data as JSON data (a YAML timestamp becomes its ISO text)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class DeclaredTemplate:
    """A valid template as declared: ``canonical`` is ``{"body", "params", "limits"}`` (what
    is stored and fingerprinted); empty when known only by fingerprint (its file was
    unchanged)."""

    name: str
    canonical: dict[str, Any]
    fingerprint: str
    source: Any  # declared.Source; str() is path:line
    head_model: TemplateHead | None = field(default=None, compare=False, repr=False)

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.canonical["body"]
        return body

    @property
    def head(self) -> TemplateHead:
        if self.head_model is None:
            head = TemplateHead.model_validate(
                {"params": self.canonical["params"], "limits": self.canonical["limits"]}
            )
            object.__setattr__(self, "head_model", head)
        assert self.head_model is not None
        return self.head_model

    @property
    def from_cache(self) -> bool:
        return not self.canonical

    @property
    def text(self) -> str:
        return canonical_text(self.canonical)


def declare(name: str, body: dict[str, Any], head: TemplateHead, source: Any) -> DeclaredTemplate:
    canonical = {
        "body": jsonable(body),
        "params": {k: p.model_dump(mode="json") for k, p in head.params.items()},
        "limits": head.limits.model_dump(mode="json"),
    }
    return DeclaredTemplate(name, canonical, fingerprint(canonical), source, head)


Report = Callable[[Loc, Any, Any], None]  # (loc under the template, pydantic errors, raw)


def check(
    name: str,
    raw: Any,
    job_model: type[JobSpec],
    merge: Callable[[dict[str, Any]], dict[str, Any]],
    source: Any,
) -> tuple[DeclaredTemplate | None, list[tuple[Loc, str]], ValidationError | None, Any]:
    """Check one template: (the template or None, placement problems, the validation error
    of its head or of its body rendered with sample values, and the raw data that error is
    about). ``merge`` applies the file's ``defaults:`` to the body."""
    if not isinstance(raw, dict):
        return (
            None,
            [((), "a template must be a mapping of job keys, params and limits")],
            None,
            raw,
        )
    head_raw = {key: raw[key] for key in HEAD_KEYS if key in raw}
    try:
        head = TemplateHead.model_validate(head_raw)
    except ValidationError as exc:
        return None, [], exc, head_raw
    body = merge({key: value for key, value in raw.items() if key not in HEAD_KEYS})
    misplaced = placement_problems(body, head)
    if misplaced:
        return None, misplaced, None, raw
    sample = render(body, sample_values(head))
    if sample.get("schedule") is None:
        sample["schedule"] = dict(SAMPLE_SCHEDULE)
    try:
        job_model.model_validate(sample)
    except ValidationError as exc:
        return None, [], exc, body
    return declare(name, body, head, source), [], None, raw


def instance_spec(
    template: DeclaredTemplate,
    values: Mapping[str, Any],
    schedule: Mapping[str, Any] | None,
    description: str | None,
    job_model: type[JobSpec],
) -> JobSpec:
    """The job an instance is: its template rendered with its values, with its own schedule
    (else the template's) and description. Raises ``ValidationError`` or ``RenderProblem``."""
    body = render(template.body, values)
    if schedule is not None:
        body["schedule"] = dict(schedule)
    if description is not None:
        body["description"] = description
    return job_model.model_validate(body)
