"""An empty database gets its tables from ``schema.metadata`` in one go, without Alembic
(``schema.create_fresh``): the result must be the very schema the shipped migrations build,
step by step, on an empty database. Reflected table by table, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect

from scheduler import schema
from scheduler.store import Store


def _reflected(engine: Engine) -> dict[str, Any]:
    found = inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(found.get_table_names()):
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in found.get_columns(name)
            ],
            "primary key": found.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(name)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(name)),
            "foreign keys": sorted(
                (f["referred_table"], tuple(f["constrained_columns"]))
                for f in found.get_foreign_keys(name)
            ),
        }
    with engine.connect() as conn:
        tables["revision"] = schema.current_revision(conn)
    return tables


def _migrated(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            schema._upgrade(conn)  # what every store got before create_fresh
        return _reflected(engine)
    finally:
        engine.dispose()


def _fresh(url: str) -> dict[str, Any]:
    Store(url).close()
    engine = create_engine(url)
    try:
        return _reflected(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_fresh_store_has_the_schema_the_migrations_build(
    backend: str, tmp_path: Path, pg_database: Callable[[], str]
) -> None:
    if backend == "sqlite":
        migrated, fresh = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    else:
        migrated, fresh = pg_database(), pg_database()
    expected = _migrated(migrated)
    assert expected["revision"] == schema.HEAD
    assert _fresh(fresh) == expected
