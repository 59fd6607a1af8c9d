"""Job files in, desired state out: parse YAML keeping every key's ``file:line:col``,
validate it against the spec models, and report every problem in every file at once.

Callers: ``scheduler validate``, ``preview --job`` and the reconciler (which only ever
applies a ``DesiredState`` that loaded without a single problem). Pure apart from reading
the files it is given; never imports apscheduler.
"""

from __future__ import annotations

import difflib
import gc
import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from scheduler.errors import InvalidJobFiles, SpecProblem
from scheduler.spec import (
    JOB_ID_PATTERN,
    JobSpec,
    Schedule,
    SpecModels,
    canonical_text,
    default_models,
    fingerprint,
)

try:  # the libyaml C loader is ~10x faster; fall back to pure Python where it is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Loc = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based line and column

_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {f"{_CORE}{t}" for t in ("int", "float", "bool", "null")}
_STR_TAG, _MAP_TAG, _SEQ_TAG = f"{_CORE}str", f"{_CORE}map", f"{_CORE}seq"
_MERGE_TAG, _TIMESTAMP_TAG = f"{_CORE}merge", f"{_CORE}timestamp"
JOB_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Source:
    """Where a job is declared: the file and the line of its id."""

    path: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class DeclaredJob:
    """A valid job as declared. ``canonical`` is the normalized spec (what is stored and
    fingerprinted); ``spec`` is the model, rebuilt from ``canonical`` when the job came from
    the parse cache and something needs it (only jobs that are added or changed)."""

    id: str
    canonical: dict[str, Any]
    fingerprint: str
    source: Source
    parsed: JobSpec | None = field(default=None, compare=False, repr=False)
    text: str = field(default="", compare=False, repr=False)  # canonical_text(canonical)
    schedule_model: Schedule | None = field(default=None, compare=False, repr=False)

    @property
    def spec(self) -> JobSpec:
        if self.parsed is None:
            model = default_models().job
            # From the JSON text when there is one: pydantic's JSON path is twice as fast.
            spec = (
                model.model_validate_json(self.text)
                if self.text
                else model.model_validate(self.canonical)
            )
            object.__setattr__(self, "parsed", spec)
        assert self.parsed is not None
        return self.parsed

    @property
    def schedule(self) -> Schedule:
        """Only the schedule, without validating the whole spec again (the apply of a cold
        start needs just this, and the options it reads from ``canonical``)."""
        if self.parsed is not None:
            return self.parsed.schedule
        if self.schedule_model is None:
            schedule = Schedule.model_validate(self.canonical["schedule"])
            object.__setattr__(self, "schedule_model", schedule)
        assert self.schedule_model is not None
        return self.schedule_model

    @property
    def from_cache(self) -> bool:
        """Known only by fingerprint: its file was unchanged, so it was not parsed."""
        return not self.canonical


@dataclass
class Document:
    """A parsed YAML file: plain data plus its node tree, which knows every position.

    Positions are looked up only when there is a problem to report, so a valid file costs
    no more than building its data.
    """

    path: str
    data: Any
    root: yaml.Node | None = None
    problems: list[SpecProblem] = field(default_factory=list)
    # A job key filled in from the file's `defaults:` points back at where it was written.
    redirects: dict[Loc, Loc] = field(default_factory=dict)
    _tables: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = field(
        default_factory=dict, repr=False
    )

    def problem(self, mark: Mark, message: str) -> SpecProblem:
        return SpecProblem(self.path, mark[0], mark[1], message)

    def mark_of(self, loc: Loc, *, key: bool = False) -> Mark:
        """The position of the value at ``loc`` (or of its key), else of the nearest
        enclosing key that exists."""
        for prefix_len in range(len(loc), 0, -1):
            if loc[:prefix_len] in self.redirects:
                loc = self.redirects[loc[:prefix_len]] + loc[prefix_len:]
                break
        key_node, node, depth = None, self.root, 0
        for step in loc:
            child = self._child(node, step)
            if child is None:
                break
            key_node, node, depth = child[0], child[1], depth + 1
        if node is None:
            return (1, 1)
        if depth == len(loc) and not key:
            return _mark(node)
        return _mark(key_node) if key_node is not None else _mark(node)

    def _child(
        self, node: yaml.Node | None, step: str | int
    ) -> tuple[yaml.Node | None, yaml.Node] | None:
        if isinstance(node, yaml.MappingNode):
            # Indexed once per mapping: every job's source line is looked up in `jobs:`.
            table = self._tables.get(id(node))
            if table is None:
                table = {}
                for key_node, value_node in _pairs(node):
                    if isinstance(key_node, yaml.ScalarNode):
                        table.setdefault(key_node.value, (key_node, value_node))
                self._tables[id(node)] = table
            return table.get(step) if isinstance(step, str) else None
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            return None, node.value[step]
        return None


def _pairs(
    node: yaml.MappingNode, seen: frozenset[int] = frozenset()
) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """A mapping's key/value nodes, explicit ones first, then those from ``<<`` merges."""
    seen = seen | {id(node)}
    merges = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            merges.append(value_node)
        else:
            yield key_node, value_node
    for merge in merges:
        for source in merge.value if isinstance(merge, yaml.SequenceNode) else [merge]:
            if isinstance(source, yaml.MappingNode) and id(source) not in seen:
                yield from _pairs(source, seen)


@dataclass(frozen=True)
class FileResult:
    path: str
    digest: str
    jobs: tuple[DeclaredJob, ...]
    problems: tuple[SpecProblem, ...]


@dataclass
class DesiredState:
    """The jobs the files declare, by id, with the files they came from."""

    jobs: dict[str, DeclaredJob]
    files: dict[str, str]  # path -> sha256 of its content


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a libyaml node tree into plain data, reporting YAML-level problems."""

    def __init__(self, loader: Any, doc: Document) -> None:
        self.constructors = loader.yaml_constructors
        self.loader = loader
        self.doc = doc
        self.open: set[int] = set()  # collections being built: an alias back to one is a cycle

    def build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        if tag in (_MAP_TAG, _SEQ_TAG):
            if id(node) in self.open:  # `a: &x [*x]`: an alias inside its own anchor
                problem = "recursive YAML alias: a value cannot contain itself"
                self.doc.problems.append(self.doc.problem(_mark(node), problem))
                return None
            self.open.add(id(node))
            try:
                if tag == _MAP_TAG:
                    return self._mapping(node)
                return [self.build(item) for item in node.value]
            finally:
                self.open.discard(id(node))
        if tag in _PLAIN_TAGS:
            return self.constructors[tag](self.loader, node)
        if tag == _TIMESTAMP_TAG:
            return node.value  # pydantic parses it, and reports an impossible date itself
        self.doc.problems.append(self.doc.problem(_mark(node), _tag_message(tag)))
        return None

    def _mapping(self, node: yaml.Node) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = {**self._merge(value_node), **(merged or {})}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.doc.problems.append(
                    self.doc.problem(_mark(key_node), "mapping keys must be plain text")
                )
                continue
            key = key_node.value  # keys are names: `on:` stays "on", `1:` stays "1"
            if key in result:
                self._duplicate(node, key_node)
                continue
            result[key] = self.build(value_node)
        if merged:
            for key, value in merged.items():
                result.setdefault(key, value)
        return result

    def _duplicate(self, node: yaml.Node, key_node: yaml.Node) -> None:
        first = next(k for k, _ in node.value if k.value == key_node.value)
        self.doc.problems.append(
            self.doc.problem(
                _mark(key_node),
                f"duplicate key '{key_node.value}' (first defined at line {_mark(first)[0]}): "
                "YAML keeps only one of them, remove the other",
            )
        )

    def _merge(self, node: yaml.Node) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # earlier sources win, as in YAML's merge spec
            if not isinstance(source, yaml.MappingNode):
                self.doc.problems.append(self.doc.problem(_mark(source), "'<<' needs a mapping"))
                continue
            merged.update(self._mapping(source))
        return merged


def _tag_message(tag: str) -> str:
    short = tag.replace(_CORE, "!!")
    if "python/" in tag:
        return f"YAML tag '{short}' is not allowed: job files are plain data and never run code"
    return f"YAML tag '{short}' is not supported in job files: remove it"


def parse_yaml(path: str, text: str) -> Document:
    """Parse one file; YAML-level problems (syntax, duplicate keys, tags) go in ``problems``."""
    doc = Document(path=path, data=None)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        if "expected a single document" in (exc.context or ""):
            detail, context = "a job file holds one YAML document: remove the '---'", ""
        doc.problems.append(doc.problem(where, f"YAML syntax error: {detail}{context}"))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(doc.problem((1, 1), f"YAML error: {exc}"))
        return doc
    finally:
        loader.dispose()
    if node is not None:
        doc.root = node
        doc.data = _Builder(loader, doc).build(node)
    return doc


class _Validator:
    """Validates parsed documents and turns pydantic errors into ``file:line:col`` problems."""

    def __init__(self, models: SpecModels) -> None:
        self.models = models
        self.vocabulary = sorted(_field_names(models))

    def jobs(self, doc: Document) -> Iterator[DeclaredJob]:
        data = doc.data
        if data is None:
            return  # an empty file declares nothing
        if not isinstance(data, dict):
            doc.problems.append(
                doc.problem(doc.mark_of(()), "a job file must be a mapping with a 'jobs:' key")
            )
            return
        for key in data:
            if key not in ("jobs", "defaults"):
                doc.problems.append(
                    doc.problem(doc.mark_of((key,), key=True), self._unknown(key, "jobs, defaults"))
                )
        defaults = self._defaults(doc, data.get("defaults"))
        jobs = data.get("jobs")
        if jobs is None:
            return
        if not isinstance(jobs, dict):
            doc.problems.append(
                doc.problem(doc.mark_of(("jobs",)), "'jobs' must be a mapping of job id to job")
            )
            return
        for job_id, raw in jobs.items():
            job = self._job(doc, job_id, raw, defaults)
            if job is not None:
                yield job

    def _defaults(self, doc: Document, raw: Any) -> dict[str, Any]:
        if raw is None:
            return {}
        try:
            self.models.defaults.model_validate(raw)
        except ValidationError as exc:
            self._report(doc, ("defaults",), exc.errors())
            return {}
        return dict(raw)

    def _job(
        self, doc: Document, job_id: str, raw: Any, defaults: dict[str, Any]
    ) -> DeclaredJob | None:
        loc: Loc = ("jobs", job_id)
        if not re.fullmatch(JOB_ID_PATTERN, job_id) or len(job_id) > 100:
            doc.problems.append(
                doc.problem(
                    doc.mark_of(loc, key=True),
                    f"job id '{job_id}' must be lowercase letters, digits, '.', '_' or '-', "
                    "start with a letter or digit, and be at most 100 characters",
                )
            )
            return None
        if isinstance(raw, dict) and defaults:
            raw = _merge_defaults(doc, loc, raw, defaults)
        try:
            spec = self.models.job.model_validate(raw)
        except ValidationError as exc:
            self._report(doc, loc, exc.errors())
            return None
        source = Source(doc.path, *doc.mark_of(loc, key=True))
        canonical = spec.canonical()
        text = canonical_text(canonical)
        return DeclaredJob(job_id, canonical, fingerprint(canonical, text), source, spec, text)

    def _report(self, doc: Document, prefix: Loc, errors: list[ErrorDetails]) -> None:
        taken = {(p.line, p.col) for p in doc.problems}
        for error in errors:
            loc, key_side, message = self._explain(doc, prefix, error)
            mark = doc.mark_of(loc, key=key_side)
            if mark not in taken:  # a bad YAML tag already explains this value
                doc.problems.append(doc.problem(mark, message))

    def _explain(self, doc: Document, prefix: Loc, error: ErrorDetails) -> tuple[Loc, bool, str]:
        loc = _resolve(doc, prefix, error["loc"])
        kind, ctx = error["type"], error.get("ctx") or {}
        name = str(loc[-1]) if loc and loc != prefix else ""
        if kind == "extra_forbidden":
            return loc, True, self._unknown(name, None)
        if kind == "missing":
            missing = str(error["loc"][-1])
            return loc, True, f"missing required key '{missing}'"
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            known = ", ".join(self.models.run_types)
            if kind == "union_tag_not_found":
                return loc, True, f"run needs a 'type': one of {known}"
            return (
                (*loc, "type"),
                False,
                (
                    f"unknown run type '{ctx.get('tag')}': use one of {known}, "
                    "or install the plugin that provides it"
                ),
            )
        if "key" in ctx:  # our own errors name the key they are about (None: the block)
            return ((*loc, ctx["key"]) if ctx["key"] else loc), True, error["msg"]
        if kind.startswith("datetime") or kind.startswith("date_"):
            detail = error["msg"].split(",", 1)[-1].strip()
            return loc, False, f"{name}: not a valid ISO 8601 date-time ({detail})"
        message = error["msg"].removeprefix("Value error, ")
        if not name or message.startswith(name):
            return loc, False, message
        return loc, False, f"{name}: {message}"

    def _unknown(self, key: str, known: str | None) -> str:
        close = difflib.get_close_matches(key, self.vocabulary, n=1, cutoff=0.75)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        allowed = f": allowed here: {known}" if known and not close else ""
        return f"unknown key '{key}'{hint}{allowed}"


def _resolve(doc: Document, prefix: Loc, loc: tuple[int | str, ...]) -> Loc:
    """Map a pydantic error location onto the document, skipping union member names."""
    node = doc.data
    for step in prefix:
        node = node[step]
    found: Loc = prefix
    for step in loc:
        if isinstance(node, dict) and step in node:
            node, found = node[step], (*found, step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node, found = node[step], (*found, step)
        elif step == loc[-1] and isinstance(node, dict) and isinstance(step, str):
            return (*found, step)  # a missing key: points at its parent
    return found


def _merge_defaults(
    doc: Document, loc: Loc, raw: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    merged = dict(raw)
    for key, value in defaults.items():
        if key == "timezone":
            schedule = merged.get("schedule")
            if not isinstance(schedule, dict) or "timezone" in schedule:
                continue
            merged["schedule"] = {**schedule, "timezone": value}
            doc.redirects[(*loc, "schedule", "timezone")] = ("defaults", key)
        elif key == "labels" and isinstance(merged.get("labels"), dict):
            merged["labels"] = {**value, **merged["labels"]}
        elif key == "celery":
            run = merged.get("run")
            if isinstance(run, dict) and run.get("type") == "celery":
                merged["run"] = {**value, **run}
                for name in value.keys() - run.keys():
                    doc.redirects[(*loc, "run", name)] = ("defaults", key, name)
        elif key not in merged:
            merged[key] = value
            doc.redirects[(*loc, key)] = ("defaults", key)
    return merged


def _field_names(models: SpecModels) -> set[str]:
    names: set[str] = set()
    pending: list[Any] = [models.file]
    seen: set[Any] = set()
    while pending:
        model = pending.pop()
        if model in seen or not hasattr(model, "model_fields"):
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
            pending.extend(_models_in(info.annotation))
    return names


def _models_in(annotation: Any) -> Iterator[Any]:
    if hasattr(annotation, "model_fields"):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _models_in(arg)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        yield from _models_in(meta)


def job_files(root: Path) -> list[Path]:
    """YAML files under ``root``, sorted; hidden entries (editor temp files, ConfigMap
    ``..data`` internals) are skipped, symlinks to files are followed."""
    if root.is_file():
        return [root]
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix in JOB_FILE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def load_text(path: str, text: str, models: SpecModels | None = None) -> FileResult:
    """Parse and validate one file's text. Never raises for bad input."""
    doc = parse_yaml(path, text)
    jobs: tuple[DeclaredJob, ...] = ()
    if not any("syntax error" in p.message for p in doc.problems):
        jobs = tuple(_Validator(models or default_models()).jobs(doc))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return FileResult(path, digest, jobs, tuple(doc.problems))


def load_file(path: Path, models: SpecModels | None = None) -> FileResult:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = SpecProblem(str(path), 1, 1, f"cannot read job file: {exc}")
        return FileResult(str(path), "", (), (problem,))
    return load_text(str(path), text, models)


def combine(results: Iterable[FileResult]) -> DesiredState:
    """Merge per-file results; raise ``InvalidJobFiles`` with every problem if any."""
    jobs: dict[str, DeclaredJob] = {}
    files: dict[str, str] = {}
    problems: list[SpecProblem] = []
    for result in results:
        files[result.path] = result.digest
        problems.extend(result.problems)
        for job in result.jobs:
            first = jobs.get(job.id)
            if first is not None:
                problems.append(
                    SpecProblem(
                        job.source.path,
                        job.source.line,
                        job.source.col,
                        f"job id '{job.id}' is already defined in {first.source}: "
                        "ids are unique across all job files, rename one",
                    )
                )
                continue
            jobs[job.id] = job
    if problems:
        raise InvalidJobFiles(problems)
    return DesiredState(jobs=jobs, files=files)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading builds ~10 objects per YAML node:
    none of them form cycles, and full collections over them cost 40% of a large load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_paths(paths: Iterable[Path], models: SpecModels | None = None) -> DesiredState:
    """Load every job file under ``paths`` (files or directories)."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InvalidJobFiles([SpecProblem(str(path), 1, 1, "no such file or directory")])
        files.extend(job_files(path))
    with gc_paused():
        return combine(load_file(f, models) for f in files)
