"""One job file's text as a document: its plain data, its problems at ``file:line:col``,
and the means to find any value's position (read again only when a problem needs one).
Callers: ``loader`` and ``validation``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from scheduler.errors import SpecProblem
from scheduler.jobfiles import too_big
from scheduler.yamldoc import LIMITS, Loc, Mark, Parsed, Pos, Refused, read_yaml


@dataclass
class Document:
    """A parsed YAML file: plain data, and the means to find any value's position.

    Positions beyond job ids are found only when there is a problem to report (the file
    is read a second time, keeping them), so a valid file costs no more than its data.
    """

    path: str
    data: Any
    text: str = ""
    problems: list[SpecProblem] = field(default_factory=list)
    refused: bool = False  # a syntax error or a limit: the data is not worth validating
    streamed: set[str] = field(default_factory=set)  # jobs handed on while reading
    defaults_late: bool = False  # `defaults:` came after jobs that were handed on
    key_marks: dict[Loc, Mark] = field(default_factory=dict)
    # A job key filled in from the file's `defaults:` points back at where it was written.
    redirects: dict[Loc, Loc] = field(default_factory=dict)
    _root: Pos | None = field(default=None, repr=False)

    def problem(self, mark: Mark, message: str) -> SpecProblem:
        return SpecProblem(self.path, mark[0], mark[1], message)

    def mark_of(self, loc: Loc, *, key: bool = False) -> Mark:
        """The position of the value at ``loc`` (or of its key), else of the nearest
        enclosing key that exists."""
        for prefix_len in range(len(loc), 0, -1):
            if loc[:prefix_len] in self.redirects:
                loc = self.redirects[loc[:prefix_len]] + loc[prefix_len:]
                break
        if key and loc in self.key_marks:
            return self.key_marks[loc]
        key_mark: Mark | None = None
        node, depth = self._positions(), 0
        if node is None:
            return (1, 1)
        for step in loc:
            child = node.child(step)
            if child is None:
                break
            key_mark, node, depth = child[0], child[1], depth + 1
        if depth == len(loc) and not key:
            return node.mark
        return key_mark if key_mark is not None else node.mark

    def _positions(self) -> Pos | None:
        if self._root is None and self.text:
            text, self.text = self.text, ""  # read once, even if this read fails
            try:
                self._root = read_yaml(text, positions=True).root
            except (Refused, yaml.YAMLError):  # past a limit while its jobs were checked
                return None
        return self._root


OnJob = Callable[[Document, str, Any, Any], None]  # document, job id, raw job, raw defaults


def parse_yaml(path: str, text: str, on_job: OnJob | None = None) -> Document:
    """Parse one file; YAML-level problems (syntax, duplicate keys, tags, limits) go in
    ``problems``. ``on_job``: called with each job as soon as it is read (the document's
    data then keeps None in its place)."""
    doc = Document(path=path, data=None, text=text)
    if len(text) > LIMITS.file_bytes:
        return _refuse(doc, (1, 1), too_big(len(text.encode())))
    synced = 0

    def sync(parsed: Parsed) -> None:
        nonlocal synced
        doc.key_marks = parsed.key_marks
        new = parsed.problems[synced:]
        doc.problems.extend(doc.problem(mark, message) for mark, message in new)
        synced = len(parsed.problems)

    def handed_on(job_id: str, raw: Any, parsed: Parsed) -> None:
        sync(parsed)
        assert on_job is not None
        on_job(doc, job_id, raw, parsed.defaults)

    try:
        parsed = read_yaml(text, on_job=handed_on if on_job else None)
    except Refused as exc:
        return _refuse(doc, exc.mark, exc.message)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        if "maximum nesting depth" in detail:
            detail, context = f"values nest deeper than {LIMITS.depth} levels", ""
        return _refuse(doc, where, f"YAML syntax error: {detail}{context}")
    except yaml.YAMLError as exc:
        return _refuse(doc, (1, 1), f"YAML error: {exc}")
    sync(parsed)
    doc.data, doc.streamed, doc.defaults_late = parsed.data, parsed.streamed, parsed.defaults_late
    return doc


def _refuse(doc: Document, mark: Mark, message: str) -> Document:
    """Only this problem counts: what jobs checked before it said is beside the point."""
    doc.problems[:] = [doc.problem(mark, message)]
    doc.refused = True
    doc.text = ""
    return doc
