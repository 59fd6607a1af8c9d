"""What the research app's jobs do (``run: {type: python, function: ...}`` in jobs.d/).

Offline on purpose: a search makes up a few results per source instead of calling a search
engine, so the example runs anywhere. Everything a job does lands in the app's results
database (``results``), where the app's routes read it. A search that finishes schedules
its own analysis ``RESEARCH_ANALYSIS_DELAY`` later (5 minutes by default), as the seed did.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json

from research_app import results
from research_app.config import Config


async def search(search_id: int, query: str, sources: list[str]) -> str:
    """One run of a recurring search: results in the database, then the analysis queued."""
    config = Config.from_env()
    found = [
        {
            "source": source,
            "rank": rank,
            "title": f"{query} ({source} #{rank})",
            "url": f"https://{source}.example/search?q={rank}-{search_id}",
        }
        for source in sources
        for rank in range(1, 4)
    ]
    run_id = await asyncio.to_thread(results.add_results, config.data_dir, search_id, found)
    # The analysis is the app's to schedule: the running app's Scheduler (this function
    # runs inside the app, on its event loop).
    from research_app.app import running_scheduler

    analysis = await running_scheduler().create(
        "analysis",
        {"search_id": search_id},
        {"in": config.analysis_delay},
    )
    return f"{len(found)} results for {query!r} (run {run_id}); analysis {analysis['id']}"


def analyse(search_id: int, types: list[str]) -> str:
    """Made-up figures, but from the search's real stored results."""
    config = Config.from_env()
    rows = results.latest_results(config.data_dir, search_id)
    figures: dict[str, object] = {}
    for kind in types:
        if kind == "sentiment":
            digest = hashlib.sha256("".join(r["title"] for r in rows).encode()).digest()
            figures["sentiment"] = round((digest[0] - 128) / 128, 2)
        elif kind == "trends":
            figures["trends"] = sorted({r["source"] for r in rows})
    results.add_analysis(config.data_dir, search_id, figures)
    return f"analysed {len(rows)} results of search {search_id}: {json.dumps(figures)}"


def export(search_id: int, format: str) -> str:
    config = Config.from_env()
    rows = results.latest_results(config.data_dir, search_id)
    target = config.data_dir / "exports" / f"search-{search_id}.{format}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if format == "json":
        target.write_text(json.dumps(rows, indent=2))
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["source", "rank", "title", "url"])
        writer.writeheader()
        writer.writerows(rows)
        target.write_text(out.getvalue())
    return f"exported {len(rows)} results to {target}"
