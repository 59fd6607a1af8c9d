"""Alembic's entry point: the migrations run on the connection ``schema.ensure_schema``
passes in (inside its transaction and under its lock), never on a URL of their own."""

from __future__ import annotations

from alembic import context

from scheduler.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
