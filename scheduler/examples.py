"""Small offline tasks the shipped ``jobs.d/`` examples call through the ``python`` handler.

They stand in for a team's own code (the seed's search, analysis and export jobs): each
appends one JSON line to ``$SCHEDULER_EXAMPLES_OUT`` (default ``./out/examples.jsonl``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _record(kind: str, **details: Any) -> dict[str, Any]:
    out = Path(os.environ.get("SCHEDULER_EXAMPLES_OUT", "out/examples.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    entry = {"kind": kind, "at": datetime.now(UTC).isoformat(), **details}
    with out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return entry


def search(query: str, sources: list[str] | None = None) -> dict[str, Any]:
    """A recurring search: records the query it would send to each source."""
    return _record("search", query=query, sources=sources or ["google", "bing"])


async def analyze(search_id: int, types: list[str] | None = None) -> dict[str, Any]:
    """A delayed analysis of one search (a coroutine: the runner awaits it on the loop)."""
    return _record("analysis", search_id=search_id, types=types or ["sentiment", "trends"])
