"""The app's own data: searches, their results, analyses (one SQLite file in the data dir).
Not the scheduler's store: the app owns this one."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, query TEXT NOT NULL, sources TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS result_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, search_id INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL, source TEXT NOT NULL, rank INTEGER NOT NULL, title TEXT NOT NULL,
    url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS analyses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, search_id INTEGER NOT NULL, at REAL NOT NULL,
    figures TEXT NOT NULL);
"""


@contextmanager
def connect(data_dir: Path) -> Iterator[sqlite3.Connection]:
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data_dir / "results.db", timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            conn.executescript(SCHEMA)
            yield conn
    finally:
        conn.close()


def add_search(data_dir: Path, query: str, sources: list[str]) -> int:
    with connect(data_dir) as conn:
        cursor = conn.execute(
            "INSERT INTO searches (query, sources, created_at) VALUES (?, ?, ?)",
            (query, json.dumps(sources), time.time()),
        )
        return int(cursor.lastrowid or 0)


def forget_search(data_dir: Path, search_id: int) -> None:
    with connect(data_dir) as conn:
        conn.execute("DELETE FROM searches WHERE id = ?", (search_id,))


def get_search(data_dir: Path, search_id: int) -> dict[str, Any] | None:
    with connect(data_dir) as conn:
        row = conn.execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
        if row is None:
            return None
        runs = conn.execute(
            "SELECT COUNT(*) FROM result_runs WHERE search_id = ?", (search_id,)
        ).fetchone()[0]
        analyses = conn.execute(
            "SELECT at, figures FROM analyses WHERE search_id = ? ORDER BY id", (search_id,)
        ).fetchall()
    return {
        "search_id": row["id"],
        "query": row["query"],
        "sources": json.loads(row["sources"]),
        "runs": runs,
        "results": latest_results(data_dir, search_id),
        "analyses": [{"at": a["at"], **json.loads(a["figures"])} for a in analyses],
    }


def add_results(data_dir: Path, search_id: int, found: list[dict[str, Any]]) -> int:
    with connect(data_dir) as conn:
        cursor = conn.execute(
            "INSERT INTO result_runs (search_id, at) VALUES (?, ?)", (search_id, time.time())
        )
        run_id = int(cursor.lastrowid or 0)
        conn.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?)",
            [(run_id, r["source"], r["rank"], r["title"], r["url"]) for r in found],
        )
    return run_id


def latest_results(data_dir: Path, search_id: int) -> list[dict[str, Any]]:
    """The newest run's results of a search."""
    with connect(data_dir) as conn:
        rows = conn.execute(
            "SELECT source, rank, title, url FROM results WHERE run_id = "
            "(SELECT MAX(id) FROM result_runs WHERE search_id = ?) ORDER BY source, rank",
            (search_id,),
        ).fetchall()
    return [dict(row) for row in rows]


def add_analysis(data_dir: Path, search_id: int, figures: dict[str, Any]) -> None:
    with connect(data_dir) as conn:
        conn.execute(
            "INSERT INTO analyses (search_id, at, figures) VALUES (?, ?, ?)",
            (search_id, time.time(), json.dumps(figures)),
        )
