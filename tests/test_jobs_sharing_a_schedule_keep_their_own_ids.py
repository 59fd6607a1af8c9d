"""Jobs with the same schedule and options are written from one pickled state with each
job's id put in (``rows``). APScheduler itself must read every one of them back as that
job: its own id, name and argument (what the runner is called with), and its own next run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from scheduler.reconciler import reconcile
from scheduler.store import Store

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
IDS = ["a", "b2", "job-007", "x" * 100, "nightly-report", "z.z_z-z", "9" * 99]


def test_apscheduler_reads_each_shared_schedule_job_as_itself(tmp_path: Path) -> None:
    jobs_dir = tmp_path / "jobs.d"
    jobs_dir.mkdir()
    body = "".join(
        f"  {job_id}:\n"
        '    schedule: {cron: "15 * * * *"}\n'
        f"    description: job {job_id} ü\n"
        "    run: {type: command, command: [echo]}\n"
        for job_id in IDS
    )
    (jobs_dir / "jobs.yaml").write_text(
        "jobs:\n" + body + '  jittered:\n    schedule: {cron: "15 * * * *", jitter: 30s}\n'
        "    run: {type: command, command: [echo]}\n"
    )
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    try:
        reconcile(store, jobs_dir, now=NOW)
        aps = SQLAlchemyJobStore(engine=store.engine, tablename=store.aps_jobs.name)
        aps.start(None, "default")  # type: ignore[arg-type]
        loaded = {job.id: job for job in aps.get_all_jobs()}
    finally:
        store.close()
    for job_id in [*IDS, "jittered"]:
        job = loaded[job_id]
        assert (job.id, job.name, job.args) == (job_id, job_id, (job_id,))
        assert job.func_ref == "scheduler.runner:run_job"
    for job_id in IDS:
        assert loaded[job_id].next_run_time == datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
    jittered = loaded["jittered"].next_run_time
    assert datetime(2026, 11, 29, 10, 15, tzinfo=UTC) <= jittered
    assert jittered <= datetime(2026, 11, 29, 10, 15, 30, tzinfo=UTC)
