"""Instances: jobs created at run time from templates declared in the job files.

``scheduler_jobs`` gains ``template`` (NULL: declared in a file; else the template the job is
an instance of) and ``params`` (the instance's parameters, JSON). ``scheduler_templates``
holds each declared template as last reconciled, so any process holding the store (a
standby, a command line, an embedding app) can create instances without the files.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# MySQL/MariaDB only, as in 0001 and 0003: utf8mb4 with a binary collation, DOUBLE times,
# LONGTEXT.
MYSQL = ("mysql", "mariadb")
MYSQL_TABLE: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
}


def _seconds() -> sa.types.TypeEngine[float]:
    return sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL)


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)


def upgrade() -> None:
    # Nullable: every job stored before this revision was declared in a file.
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.add_column(sa.Column("template", sa.Unicode(191), nullable=True))
        batch.add_column(sa.Column("params", _long_text(), nullable=True))
    op.create_index("ix_scheduler_jobs_template", "scheduler_jobs", ["template"])
    op.create_table(
        "scheduler_templates",
        sa.Column("name", sa.Unicode(191), primary_key=True),
        sa.Column("spec", _long_text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.Unicode(1024), nullable=False),
        sa.Column("updated_at", _seconds(), nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table("scheduler_templates")
    op.drop_index("ix_scheduler_jobs_template", "scheduler_jobs")
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.drop_column("params")
        batch.drop_column("template")
