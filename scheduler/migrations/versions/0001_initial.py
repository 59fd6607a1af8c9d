"""The tables of the first release (before Alembic), exactly as it created them.

A store written by that release has these tables and no version table: each is created only
when missing, so such a store is adopted in place with its jobs, pauses and history.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from scheduler.mysql_types import MYSQL, MYSQL_TABLE, long_text, seconds

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> sa.MetaData:
    # Frozen here: later migrations change the tables, never this definition.
    md = sa.MetaData()
    sa.Table(
        "apscheduler_jobs",
        md,
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column(
            "next_run_time",
            sa.Float(25).with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL),
            index=True,
        ),
        sa.Column(
            "job_state", sa.LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL), nullable=False
        ),
        **MYSQL_TABLE,
    )
    sa.Table(
        "scheduler_jobs",
        md,
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("spec", long_text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.Unicode(1024), nullable=False),
        sa.Column("operator_paused", sa.Boolean, nullable=False),
        sa.Column("updated_at", seconds(), nullable=False),
        sa.Column("summary", long_text(), nullable=False),
        **MYSQL_TABLE,
    )
    sa.Table(
        "scheduler_files",
        md,
        sa.Column(
            "path", sa.Unicode(1024).with_variant(mysql.VARCHAR(768), *MYSQL), primary_key=True
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("jobs", long_text(), nullable=False),
        **MYSQL_TABLE,
    )
    sa.Table(
        "scheduler_runs",
        md,
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("job_id", sa.Unicode(191), nullable=False),
        sa.Column("scheduled_time", seconds(), nullable=True),
        sa.Column("started_at", seconds(), nullable=False),
        sa.Column("finished_at", seconds(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("output_tail", long_text(), nullable=True),
        sa.Column("error", long_text(), nullable=True),
        sa.Index("ix_scheduler_runs_job_started", "job_id", "started_at"),
        sa.Index("ix_scheduler_runs_started", "started_at"),
        **MYSQL_TABLE,
    )
    return md


def upgrade() -> None:
    _tables().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    _tables().drop_all(op.get_bind())
