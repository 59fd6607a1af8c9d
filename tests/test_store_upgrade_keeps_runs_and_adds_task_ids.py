"""Migration 0002: a store at revision 0001 (the release before the celery run type) gains
the runs' ``task_id`` and ``worker`` columns when it is opened, keeps its run history (the
old runs read them as null), and then records a Celery run's ids."""

from __future__ import annotations

import asyncio
import json

from alembic import command
from alembic.config import Config
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from scheduler import schema
from scheduler.cli import cli
from scheduler.history import HistoryWriter, RunRecord
from scheduler.store import Store


def _store_at_0001(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", "scheduler:migrations")
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO scheduler_runs (run_id, job_id, scheduled_time, started_at, "
                "finished_at, outcome, exit_code, attempt, output_tail, error) VALUES "
                "('a0', 'old', 1.0e9, 1.0e9, 1.0e9 + 2, 'success', 0, 1, 'old\n', NULL)"
            )
        )
        assert schema.current_revision(conn) == "0001"
    engine.dispose()


def _history(url: str, job_id: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["--db", url, "history", job_id, "--output", "json"])
    assert result.exit_code == 0, result.output
    runs: list[dict[str, object]] = json.loads(result.output)
    return runs


def test_a_store_at_0001_gains_task_id_and_worker_and_keeps_its_runs(store_url: str) -> None:
    _store_at_0001(store_url)

    [old] = _history(store_url, "old")  # opening the store upgrades it
    assert (old["run_id"], old["outcome"], old["output_tail"]) == ("a0", "success", "old\n")
    assert (old["task_id"], old["worker"]) == (None, None)

    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            assert schema.current_revision(conn) == schema.HEAD

        async def record() -> None:
            writer = HistoryWriter(store)
            run = RunRecord("b" * 32, "sent", 1.0e9, 1.0e9, outcome="running")
            writer.started(run)
            run.outcome, run.finished_at = "success", 1.0e9 + 1
            run.task_id, run.worker = "b" * 32, "celery@worker-1"
            writer.finished(run)
            await writer.close()

        asyncio.run(record())
    finally:
        store.close()
    [new] = _history(store_url, "sent")
    assert (new["task_id"], new["worker"], new["outcome"]) == (
        "b" * 32,
        "celery@worker-1",
        "success",
    )
