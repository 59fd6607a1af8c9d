"""Replicas: the leader lease, fenced run claims, a change counter and operator requests.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from scheduler.mysql_types import MYSQL_TABLE, long_text, seconds

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


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
        sa.Column("acquired_at", seconds(), nullable=False),
        sa.Column("renewed_at", seconds(), nullable=False),
        sa.Column("expires_at", seconds(), nullable=False),
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
        sa.Column("args", long_text(), nullable=True),
        sa.Column("requested_at", seconds(), nullable=False),
        sa.Column("taken_at", seconds(), nullable=True),
        sa.Column("result", long_text(), nullable=True),
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
