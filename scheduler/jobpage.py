"""A page per job, for people: the job as its file declares it, its next fire times, its
last runs with output, and a duration chart drawn here as SVG (no script on the page).
Text from files and from job output is escaped by the template; control characters and
undecodable bytes are shown as visible escapes. Caller: ``api`` (``GET /ui/jobs/{id}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from scheduler.history import list_runs
from scheduler.store import Store

RUNS = 50
TAIL_CHARS = 4096  # of each run's output on the page (50 full tails would be 3 MB)
FIRES = 10
DECLARED_MAX_BYTES = 1_000_000
DECLARED_MAX_LINES = 200
CHART_WIDTH, CHART_HEIGHT = 600, 120
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str | None) -> str:
    """Output as text: ANSI escapes and other control characters as ``\\x1b``, bytes that
    were not UTF-8 (kept as surrogates) as ``\\udcff``; newlines and tabs stay."""
    if not text:
        return ""
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", shown)


def declared_text(source: str) -> str | None:
    """The job's block in its file (``PATH:LINE``): the key line and every line indented
    deeper. None when the file cannot be read."""
    path_text, _, line_text = source.rpartition(":")
    try:
        line = int(line_text)
        path = Path(path_text)
        if line < 1 or path.stat().st_size > DECLARED_MAX_BYTES:
            return None
        lines = path.read_text(encoding="utf-8").splitlines()[line - 1 :]
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    if not lines:
        return None
    indent = len(lines[0]) - len(lines[0].lstrip())
    block = [lines[0]]
    for text in lines[1 : DECLARED_MAX_LINES + 1]:
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            break
        block.append(text)
    while block and not block[-1].strip():
        block.pop()
    return "\n".join(line[indent:] for line in block)


@dataclass(frozen=True)
class Bar:
    x: float
    height: float
    outcome: str
    title: str


def _seconds(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def duration_bars(runs: list[dict[str, Any]]) -> tuple[list[Bar], float]:
    """Bars for finished runs, oldest on the left, scaled to the longest; and that longest."""
    finished = []
    for run in reversed(runs):
        start, end = _seconds(run["started_at"]), _seconds(run["finished_at"])
        if start is not None and end is not None and run["outcome"] not in ("skipped", "missed"):
            finished.append((run, max(0.0, end - start)))
    longest = max((d for _, d in finished), default=0.0)
    step = CHART_WIDTH / RUNS  # one slot per run shown, so bars keep their width
    bars = [
        Bar(
            x=i * step,
            height=max(1.0, (d / longest) * (CHART_HEIGHT - 4)) if longest else 1.0,
            outcome=str(run["outcome"]),
            title=f"{run['started_at']} {run['outcome']} {d:.3f}s",
        )
        for i, (run, d) in enumerate(finished)
    ]
    return bars, longest


def page_context(store: Store, job: dict[str, Any]) -> dict[str, Any]:
    """What job.html shows of ``job`` (``lookup.job_detail``: with its spec and the next
    fire times of its stored trigger)."""
    runs = list_runs(store, job["id"], RUNS)
    for run in runs:
        start, end = _seconds(run["started_at"]), _seconds(run["finished_at"])
        run["duration"] = None if start is None or end is None else end - start
        tail = run["output_tail"] or ""
        run["cut"] = len(tail) > TAIL_CHARS
        run["output_tail"] = tail[-TAIL_CHARS:]
    bars, longest = duration_bars(runs)
    return {
        "job": job,
        "declared": declared_text(job["source"]),
        "normalized": yaml.safe_dump(job["spec"], sort_keys=False, allow_unicode=True),
        "fires": job["next_fire_times"],
        "runs": runs,
        "tail_chars": TAIL_CHARS,
        "bars": bars,
        "longest": longest,
        "chart": {
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "bar": CHART_WIDTH / RUNS,
        },
    }
