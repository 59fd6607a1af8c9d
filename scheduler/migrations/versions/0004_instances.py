"""Instances: jobs created at run time from templates declared in the job files.

``scheduler_jobs`` gains ``template`` (NULL: declared in a file; else the template the job is
an instance of) and ``params`` (the instance's parameters, JSON). ``scheduler_templates``
holds each declared template as last reconciled, so any process holding the store (a
standby, a command line, an embedding app) can create instances without the files.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from scheduler.mysql_types import MYSQL_TABLE, long_text, seconds

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: every job stored before this revision was declared in a file.
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.add_column(sa.Column("template", sa.Unicode(191), nullable=True))
        batch.add_column(sa.Column("params", long_text(), nullable=True))
    op.create_index("ix_scheduler_jobs_template", "scheduler_jobs", ["template"])
    op.create_table(
        "scheduler_templates",
        sa.Column("name", sa.Unicode(191), primary_key=True),
        sa.Column("spec", long_text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.Unicode(1024), nullable=False),
        sa.Column("updated_at", seconds(), nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table("scheduler_templates")
    op.drop_index("ix_scheduler_jobs_template", "scheduler_jobs")
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.drop_column("params")
        batch.drop_column("template")
