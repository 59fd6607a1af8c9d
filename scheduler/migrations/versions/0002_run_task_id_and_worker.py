"""Runs handed to another system (a Celery task) keep its task id and the worker's hostname.

Two nullable columns on ``scheduler_runs``: existing runs read them as null.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scheduler_runs", sa.Column("task_id", sa.String(255), nullable=True))
    op.add_column("scheduler_runs", sa.Column("worker", sa.Unicode(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_runs") as batch:  # SQLite drops columns by copy
        batch.drop_column("worker")
        batch.drop_column("task_id")
