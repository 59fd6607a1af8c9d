"""YAML text in, plain data out, within documented limits: the one place job-file bytes
become Python values. Callers: ``loader`` (and, through it, every verb and the daemon's
parse child).

Built straight from libyaml's events, never from a node tree: an aliased value is built
once and shared, every node reached through an alias counts against a budget, and a file
past any limit stops being read at the first node that crosses it. Positions of every
node are kept only when asked for (to explain a problem), so a valid file costs its data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the libyaml C parser is ~10x faster; fall back to pure Python where it is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Mark = tuple[int, int]  # 1-based line and column
Loc = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_CORE}{t}" for t in ("int", "float", "bool", "null")}
_STR_TAG, _MAP_TAG, _SEQ_TAG = f"{_CORE}str", f"{_CORE}map", f"{_CORE}seq"
_TIMESTAMP_TAG = f"{_CORE}timestamp"
MiB = 1024 * 1024
RESOLVED_LIMIT = 4096  # distinct plain values whose type a process remembers...
RESOLVED_CHARS = 200  # ... of up to this length (the ones that repeat are short)

# Plain values repeat from job to job and from file to file (`command`, `true`, `1h`): each
# is resolved by PyYAML's resolver (a Python loop over regexes) once per process, not once
# per file (10,000 one-job files resolved every value again). Only immutable values are
# kept: text, numbers, booleans, None, or the tag a value resolves to. Bounded: when full,
# it starts over.
_RESOLVED: dict[tuple[str, Any], tuple[bool, Any]] = {}


@dataclass(frozen=True)
class Limits:
    """Far above any real job file; each one is a clear error, never a stall."""

    file_bytes: int = 16 * MiB
    depth: int = 64  # nested mappings and lists
    scalar_chars: int = 1 * MiB
    alias_nodes: int = 1_000_000  # nodes reached through aliases (`*x`, `<<: *x`) in one file
    jobs: int = 100_000  # per file, and in all files together


LIMITS = Limits()


class Refused(Exception):
    """The file crossed a limit (or is not one document): nothing more is read from it."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class Pos:
    """Where a node is, and where its children are (only built to explain problems)."""

    __slots__ = ("items", "keys", "mark")

    def __init__(self, mark: Mark) -> None:
        self.mark = mark
        self.keys: dict[str, tuple[Mark, Pos]] | None = None
        self.items: list[Pos] | None = None

    def child(self, step: str | int) -> tuple[Mark | None, Pos] | None:
        if self.keys is not None and isinstance(step, str):
            return self.keys.get(step)
        if self.items is not None and isinstance(step, int) and 0 <= step < len(self.items):
            return None, self.items[step]
        return None


@dataclass
class Parsed:
    """The document's data, YAML-level problems, and the marks of the first two levels of
    keys (top-level keys and job ids: every job's source line) even without positions."""

    data: Any = None
    root: Pos | None = None
    problems: list[tuple[Mark, str]] = field(default_factory=list)
    key_marks: dict[Loc, Mark] = field(default_factory=dict)
    defaults: Any = None  # the top-level `defaults:` once read (for jobs handed on early)
    streamed: set[str] = field(default_factory=set)  # jobs handed to ``on_job``, not kept
    defaults_late: bool = False  # `defaults:` came after jobs already handed on


# Called with each job's id and raw value as soon as it is read, and the document so far;
# the value is then not kept, so a large file never holds all its raw jobs at once.
OnJob = Callable[[str, Any, Parsed], None]


def tag_message(tag: str) -> str:
    short = tag.replace(_CORE, "!!")
    if "python/" in tag:
        return f"YAML tag '{short}' is not allowed: job files are plain data and never run code"
    return f"YAML tag '{short}' is not supported in job files: remove it"


def _mark_of(event: Any) -> Mark:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


# A value, its positions, the nodes it expands to, and its event (whose mark is computed
# only when needed: most values never need one).
Built = tuple[Any, Pos | None, int, Any]


class _Reader:
    def __init__(self, text: str, limits: Limits, positions: bool, on_job: OnJob | None) -> None:
        self.loader = _Loader(text)
        self.on_job = on_job
        self.limits = limits
        self.positions = positions
        self.out = Parsed()
        self.anchors: dict[str, Built] = {}
        self.open: dict[str, Any] = {}  # anchors being built: an alias back to one is a cycle
        self.through_aliases = 0
        self.jobs = 0

    def read(self) -> Parsed:
        try:
            get = self.loader.get_event
            get()  # stream start
            if isinstance(get(), yaml.StreamEndEvent):
                return self.out  # an empty file
            self.out.data, self.out.root, _, _ = self.node(get(), 0, ())
            get()  # document end
            extra = get()
            if not isinstance(extra, yaml.StreamEndEvent):
                raise Refused(
                    _mark_of(extra),
                    "YAML syntax error: a job file holds one YAML document: remove the '---'",
                )
            return self.out
        finally:
            self.loader.dispose()

    def problem(self, mark: Mark, message: str) -> None:
        self.out.problems.append((mark, message))

    def node(self, event: Any, depth: int, loc: Loc | None) -> Built:
        kind = type(event)
        if kind is yaml.AliasEvent:
            return self.alias(event.anchor, event)
        anchor = event.anchor
        if anchor is not None:
            self.open[anchor] = event
        if kind is yaml.ScalarEvent:
            place = Pos(_mark_of(event)) if self.positions else None
            built: Built = (self.scalar(event), place, 1, event)
        elif kind is yaml.SequenceStartEvent:
            built = self.sequence(event, depth + 1)
        else:
            built = self.mapping(event, depth + 1, loc)
        if anchor is not None:
            self.open.pop(anchor, None)
            self.anchors[anchor] = built
        return built

    def alias(self, name: str, event: Any) -> Built:
        if name in self.open:  # `a: &x [*x]`: an alias inside its own anchor
            message = "recursive YAML alias: a value cannot contain itself"
            self.problem(_mark_of(self.open[name]), message)
            return None, Pos(_mark_of(event)) if self.positions else None, 1, event
        if name not in self.anchors:
            message = f"unknown alias '*{name}': define '&{name}' before using it"
            self.problem(_mark_of(event), message)
            return None, Pos(_mark_of(event)) if self.positions else None, 1, event
        value, pos, size, _ = self.anchors[name]
        self.through_aliases += size
        if self.through_aliases > self.limits.alias_nodes:
            raise Refused(
                _mark_of(event),
                f"alias *{name} expands to more than {self.limits.alias_nodes} nodes "
                "(counting every alias in this file): use fewer or smaller aliases",
            )
        return value, pos, size, event

    def scalar(self, event: Any) -> Any:
        value: str = event.value
        if len(value) > self.limits.scalar_chars:
            raise Refused(
                _mark_of(event),
                f"a value of {len(value)} characters is longer than the limit of "
                f"{self.limits.scalar_chars}: keep large data out of job files",
            )
        tag = event.tag
        if tag is None or tag == "!":
            implicit = event.implicit
            resolved = _RESOLVED.get((value, implicit))
            if resolved is None:
                resolved = self._resolve(value, implicit)
                if len(value) <= RESOLVED_CHARS:
                    if len(_RESOLVED) >= RESOLVED_LIMIT:
                        _RESOLVED.clear()
                    _RESOLVED[value, implicit] = resolved
            kind, constructed = resolved
            if kind:
                return constructed
            tag = constructed
        if tag in (_STR_TAG, _TIMESTAMP_TAG):
            return value  # a timestamp stays text: pydantic parses it and reports bad dates
        if tag in _PLAIN_TAGS:
            return self.loader.yaml_constructors[tag](self.loader, yaml.ScalarNode(tag, value))
        self.problem(_mark_of(event), tag_message(tag))
        return None

    def _resolve(self, value: str, implicit: tuple[bool, bool]) -> tuple[bool, Any]:
        """(True, the value) for a plain value of a plain type, else (False, its tag)."""
        tag = self.loader.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
        if tag in (_STR_TAG, _TIMESTAMP_TAG):
            return True, value
        if tag in _PLAIN_TAGS:
            return True, self.loader.yaml_constructors[tag](
                self.loader, yaml.ScalarNode(tag, value)
            )
        return False, tag

    def _enter(self, event: Any, depth: int, plain: str) -> bool:
        if depth > self.limits.depth:
            raise Refused(
                _mark_of(event),
                f"values nest deeper than {self.limits.depth} levels: flatten this value",
            )
        tag = event.tag
        if tag is None or tag == "!" or tag == plain:
            return True
        self.problem(_mark_of(event), tag_message(tag))
        return False

    def sequence(self, event: Any, depth: int) -> Built:
        ok = self._enter(event, depth, _SEQ_TAG)
        items: list[Any] = []
        pos = Pos(_mark_of(event)) if self.positions else None
        places: list[Pos] = []
        size = 1
        get = self.loader.get_event
        while True:
            item = get()
            if type(item) is yaml.SequenceEndEvent:
                break
            value, item_pos, item_size, _ = self.node(item, depth, None)
            items.append(value)
            size += item_size
            if item_pos is not None:
                places.append(item_pos)
        if pos is not None:
            pos.items = places
        return (items if ok else None), pos, size, event

    def mapping(self, event: Any, depth: int, loc: Loc | None) -> Built:
        ok = self._enter(event, depth, _MAP_TAG)
        result: dict[str, Any] = {}
        pos = Pos(_mark_of(event)) if self.positions else None
        keys: dict[str, tuple[Mark, Pos]] = {}
        seen: dict[str, Any] = {}  # key -> its event (its line is needed only for a duplicate)
        merges: list[Built] = []
        size = 1
        get = self.loader.get_event
        while True:
            key_event = get()
            if type(key_event) is yaml.MappingEndEvent:
                break
            key = self.key(key_event, depth)
            value_event = get()
            if key is _MERGE:
                merges.append(self.node(value_event, depth, None))
                continue
            child_loc = (*loc, key) if loc is not None and isinstance(key, str) else None
            value, value_pos, value_size, _ = self.node(
                value_event, depth, child_loc if child_loc is not None and not loc else None
            )
            size += 1 + value_size
            if not isinstance(key, str):
                continue
            if key in seen:
                self.problem(
                    _mark_of(key_event),
                    f"duplicate key '{key}' (first defined at line {_mark_of(seen[key])[0]}): "
                    "YAML keeps only one of them, remove the other",
                )
                continue
            seen[key] = key_event
            if child_loc is not None:
                value = self._arrived(key, key_event, value, loc, child_loc)
            result[key] = value
            if value_pos is not None:
                keys[key] = (_mark_of(key_event), value_pos)
        for merge in merges:  # explicit keys win, then earlier merge sources
            size += merge[2]
            self.merge(result, keys, merge)
        if pos is not None:
            pos.keys = keys
        return (result if ok else None), pos, size, event

    def _arrived(
        self, key: str, key_event: Any, value: Any, loc: Loc | None, child_loc: Loc | None
    ) -> Any:
        """Note a top-level key or job id; hand a job on when streaming (None is kept)."""
        if child_loc is None:
            return value
        key_mark = self.out.key_marks[child_loc] = _mark_of(key_event)
        if loc == () and key == "defaults":
            self.out.defaults = value
            self.out.defaults_late = bool(self.out.streamed)
        if loc != ("jobs",):
            return value
        self.jobs += 1
        if self.jobs > self.limits.jobs:
            raise Refused(
                key_mark,
                f"more than {self.limits.jobs} jobs in one file: split them across files",
            )
        if self.on_job is None:
            return value
        self.on_job(key, value, self.out)
        self.out.streamed.add(key)
        return None

    def key(self, event: Any, depth: int) -> str | object | None:
        """A mapping key as text (`on:` stays "on", `1:` stays "1"), ``_MERGE`` for a
        plain ``<<``, or None (reported) for anything that is not plain text."""
        if type(event) is yaml.ScalarEvent:
            value: str = event.value
            if event.tag is None and event.implicit[0] and value == "<<":
                return _MERGE
            if len(value) > self.limits.scalar_chars:
                raise Refused(_mark_of(event), f"a key of {len(value)} characters is too long")
            if event.anchor is not None:
                place = Pos(_mark_of(event)) if self.positions else None
                self.anchors[event.anchor] = (value, place, 1, event)
            return value
        if type(event) is yaml.AliasEvent:
            aliased = self.alias(str(event.anchor), event)[0]
            if isinstance(aliased, str):
                return aliased
        else:
            self.node(event, depth, None)  # read past it (it counts, like any node)
        self.problem(_mark_of(event), "mapping keys must be plain text")
        return None

    def merge(
        self, result: dict[str, Any], keys: dict[str, tuple[Mark, Pos]], merge: Built
    ) -> None:
        value, pos, _, where = merge
        sources = value if isinstance(value, list) else [value]
        places = (pos.items if pos is not None and isinstance(value, list) else [pos]) or []
        for index, source in enumerate(sources):
            if not isinstance(source, dict):
                self.problem(_mark_of(where), "'<<' needs a mapping")
                continue
            place = places[index] if index < len(places) else None
            for key, item in source.items():
                if key not in result:
                    result[key] = item
                    if place is not None and place.keys and key in place.keys:
                        keys[key] = place.keys[key]


_MERGE = object()


def read_yaml(
    text: str, *, limits: Limits = LIMITS, positions: bool = False, on_job: OnJob | None = None
) -> Parsed:
    """Parse one document. Raises ``Refused`` past a limit and ``yaml.YAMLError`` for
    syntax; YAML-level problems that still let the rest be read are in ``problems``."""
    return _Reader(text, limits, positions, on_job).read()
