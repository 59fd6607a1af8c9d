"""Replicas: the leader lease, fenced run claims, a change counter and operator requests.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


# MySQL/MariaDB only, as in 0001: utf8mb4 with a binary collation, DOUBLE times, LONGTEXT.
MYSQL = ("mysql", "mariadb")
MYSQL_TABLE: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
    # the same for a mariadb:// URL (that dialect reads only its own prefix)
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
}


def _seconds() -> sa.types.TypeEngine[float]:
    return sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL)


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)


def upgrade() -> None:
    # Nullable: history written before this revision has no claim, and a unique index
    # allows any number of NULLs (old stores may hold the duplicates replicas caused).
    op.add_column("scheduler_runs", sa.Column("claim", sa.Unicode(255), nullable=True))
    op.add_column("scheduler_runs", sa.Column("epoch", sa.BigInteger, nullable=True))
    op.create_index("ux_scheduler_runs_claim", "scheduler_runs", ["claim"], unique=True)
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.Unicode(255), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", _seconds(), nullable=False),
        sa.Column("renewed_at", _seconds(), nullable=False),
        sa.Column("expires_at", _seconds(), nullable=False),
        sa.Column("address", sa.Unicode(255), nullable=True),
        **MYSQL_TABLE,
    )
    op.create_table(
        "scheduler_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_table(
        "scheduler_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("job_id", sa.Unicode(191), nullable=False),
        sa.Column("args", _long_text(), nullable=True),
        sa.Column("requested_at", _seconds(), nullable=False),
        sa.Column("taken_at", _seconds(), nullable=True),
        sa.Column("result", _long_text(), nullable=True),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table("scheduler_requests")
    op.drop_table("scheduler_state")
    op.drop_table("scheduler_lease")
    op.drop_index("ux_scheduler_runs_claim", "scheduler_runs")
    with op.batch_alter_table("scheduler_runs") as batch:
        batch.drop_column("epoch")
        batch.drop_column("claim")
