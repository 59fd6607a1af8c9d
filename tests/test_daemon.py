"""``scheduler run`` as a real process: it reconciles at start-up, on every change under the
jobs dir (new, edited, deleted, renamed files, editor saves, ``git checkout`` bursts, a
Kubernetes ConfigMap swap) and on SIGHUP; it keeps its last good state while a file is
invalid; it is the one writer of its store; SIGTERM/SIGINT stop it cleanly.

Everything is observed from outside: the daemon's log, its exit code and the public
command line (``scheduler jobs/plan/reconcile -o json``) against the same SQLite file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.cli import cli
from tests.conftest import StartDaemon, WriteJobs, simple_job
from tests.daemon_helpers import DEADLINE, DaemonProcess, jobs, wait_for

HOURLY_INTERVAL = "schedule: {interval: 1h}"  # re-adding it would move its next run time


def interval_job(job_id: str, extra: str = "") -> str:
    """A job whose next run time is 'now + 1h' when added: a reset shows as a new value."""
    return (
        f"  {job_id}:\n"
        f"    {HOURLY_INTERVAL}\n"
        '    run: {type: command, command: ["true"]}\n'
        f"{extra}"
    )


def wait_jobs(
    daemon: DaemonProcess,
    check: Callable[[dict[str, dict[str, object]]], bool],
    what: str,
) -> dict[str, dict[str, object]]:
    def probe() -> dict[str, dict[str, object]] | None:
        listing = daemon.jobs()
        return listing if check(listing) else None

    try:
        return wait_for(probe, what)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\njob ids: {sorted(daemon.jobs())[:30]}\n--- daemon log ---\n{daemon.tail()}"
        ) from None


def pending_plan(jobs_dir: Path, db_url: str) -> dict[str, object]:
    """``scheduler plan -o json``: what the store still lacks to match the files."""
    result = CliRunner().invoke(
        cli, ["--jobs-dir", str(jobs_dir), "--db", db_url, "plan", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    plan: dict[str, object] = json.loads(result.output)
    return plan


def reconciles_since(daemon: DaemonProcess, mark: int) -> list[str]:
    """The reconcile lines the watcher logged after ``mark``."""
    return re.findall(r"^.*reconcile \(\d+ change\(s\) under .*$", daemon.log(mark), re.M)


# 1. start-up


def test_startup_reconcile_lists_every_job_with_next_run_and_file_line(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    write_jobs("team/b.yaml", "jobs:\n" + interval_job("every-hour"))

    daemon = start_daemon()

    listing = daemon.jobs()
    assert set(listing) == {"hello", "every-hour"}
    assert listing["hello"]["source"] == f"{jobs_dir / 'a.yaml'}:2"
    assert listing["every-hour"]["source"] == f"{jobs_dir / 'team' / 'b.yaml'}:2"
    for job in listing.values():
        assert job["next_run_time"], job
        assert job["state"] == "scheduled"
    assert re.search(r"reconcile \(start-up\): \d+ added", daemon.log())


# 2. single changes under the jobs dir


def test_new_file_is_added(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()

    write_jobs("b.yaml", simple_job("fresh", cron="30 6 * * *"))

    listing = wait_jobs(daemon, lambda js: "fresh" in js, "the new job")
    assert listing["fresh"]["source"] == f"{jobs_dir / 'b.yaml'}:2"
    assert listing["fresh"]["next_run_time"]
    assert set(listing) == {"hello", "fresh"}


def test_schedule_edit_recomputes_next_run_time(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("hello", cron="0 9 * * *"))
    daemon = start_daemon()
    before = daemon.jobs()["hello"]["next_run_time"]

    mark = daemon.mark()
    write_jobs("a.yaml", simple_job("hello", cron="0 10 * * *"))

    listing = wait_jobs(daemon, lambda js: js["hello"]["next_run_time"] != before, "a new run")
    assert str(listing["hello"]["next_run_time"]).split("T")[1].startswith("10:00:00")
    # The plan is logged once the change is committed, so it may follow the listing.
    daemon.wait_log(r"~ hello: schedule\.cron", since=mark)


def test_description_only_edit_keeps_next_run_time_byte_identical(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", "jobs:\n" + interval_job("hourly"))
    daemon = start_daemon()
    before = daemon.jobs()["hourly"]

    mark = daemon.mark()
    write_jobs("a.yaml", "jobs:\n" + interval_job("hourly", "    description: now documented\n"))

    daemon.wait_log(r"~ hourly: description$", since=mark)
    after = daemon.jobs()["hourly"]
    assert after["description"] == "now documented"
    assert {**after, "description": ""} == before  # next_run_time included, byte for byte


def test_deleted_file_removes_its_jobs(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("stays"))
    write_jobs("b.yaml", "jobs:\n" + interval_job("goes-1") + interval_job("goes-2"))
    daemon = start_daemon()
    assert set(daemon.jobs()) == {"stays", "goes-1", "goes-2"}

    (jobs_dir / "b.yaml").unlink()

    wait_jobs(daemon, lambda js: set(js) == {"stays"}, "the deleted file's jobs to go")


def test_deleting_the_last_file_is_refused_as_a_broken_mount(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()
    before = daemon.jobs()

    mark = daemon.mark()
    (jobs_dir / "a.yaml").unlink()

    daemon.wait_log(r"refused, keeping the last good state", since=mark)
    assert "declares no job" in daemon.log(mark)
    assert daemon.jobs() == before
    assert daemon.proc.poll() is None


def test_renamed_file_keeps_jobs_and_next_run_time_with_the_new_source(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", "jobs:\n" + interval_job("hourly"))
    daemon = start_daemon()
    before = daemon.jobs()["hourly"]

    os.rename(jobs_dir / "a.yaml", jobs_dir / "b.yaml")

    new_source = f"{jobs_dir / 'b.yaml'}:2"
    after = wait_jobs(daemon, lambda js: js["hourly"]["source"] == new_source, "the new source")
    assert after["hourly"] == {**before, "source": new_source}
    assert "- hourly" not in daemon.log()


def test_editor_atomic_save_is_applied(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("hello", cron="0 9 * * *"))
    daemon = start_daemon()

    tmp = jobs_dir / ".a.yaml.tmp"
    tmp.write_text(simple_job("hello", cron="15 9 * * *") + simple_job("extra")[len("jobs:\n") :])
    os.replace(tmp, jobs_dir / "a.yaml")

    listing = wait_jobs(daemon, lambda js: "extra" in js, "the saved file's new job")
    assert str(listing["hello"]["next_run_time"]).split("T")[1].startswith("09:15:00")
    assert set(listing) == {"hello", "extra"}
    assert ".a.yaml.tmp" not in daemon.log()  # the hidden temp file is never read


# 3. a git checkout: many files at once, one job moving between files


def test_git_checkout_burst_moving_a_job_between_files_never_resets_it(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    names = [f"f{i:02}.yaml" for i in range(20)]
    for i, name in enumerate(names):
        mover = interval_job("mover") if i == 0 else ""
        write_jobs(name, simple_job(f"j{i:02}") + mover)
    daemon = start_daemon()
    before = daemon.jobs()
    assert len(before) == 21

    mark = daemon.mark()
    # git replaces each file (unlink, then create) in path order: the job leaves f00 first
    # and only arrives in f19 last, so a reconcile in the middle would remove it.
    for i, name in enumerate(names):
        mover = interval_job("mover") if i == 19 else ""
        cron = "0 10 * * *" if i == 1 else "0 9 * * *"
        text = simple_job(f"j{i:02}", cron=cron, extra="description: v2") + mover
        (jobs_dir / name).unlink()
        (jobs_dir / name).write_text(text)

    new_source = f"{jobs_dir / 'f19.yaml'}:"
    after = wait_jobs(
        daemon,
        lambda js: (
            str(js["mover"]["source"]).startswith(new_source)
            and js["j01"]["next_run_time"] != before["j01"]["next_run_time"]
        ),
        "the burst to be applied",
    )
    assert after["mover"]["next_run_time"] == before["mover"]["next_run_time"]
    assert set(after) == set(before)
    plan = pending_plan(jobs_dir, daemon.db_url)
    assert (plan["add"], plan["update"], plan["remove"]) == ([], [], [])
    log = daemon.log(mark)
    assert "- mover" not in log and "+ mover" not in log, log
    assert "refused" not in log, log

    time.sleep(0.3)  # let a straggling second reconcile show up in the log, if any
    lines = reconciles_since(daemon, mark)
    print(f"\ngit checkout burst of 20 files: {len(lines)} reconcile(s)")
    for line in lines:
        print("  ", line)
    assert len(lines) >= 1


# 4. a Kubernetes ConfigMap volume


def test_configmap_symlink_swap_is_applied(start_daemon: StartDaemon, jobs_dir: Path) -> None:
    v1 = jobs_dir / "..2026_11_27_v1"
    v1.mkdir()
    (v1 / "a.yaml").write_text(simple_job("cm-job", cron="0 9 * * *"))
    (jobs_dir / "..data").symlink_to(v1.name)
    (jobs_dir / "a.yaml").symlink_to("..data/a.yaml")
    daemon = start_daemon()
    before = daemon.jobs()
    assert set(before) == {"cm-job"}
    assert before["cm-job"]["source"] == f"{jobs_dir / 'a.yaml'}:2"

    # What the kubelet does: write the new version beside the old, swap ..data atomically,
    # then delete the old version.
    v2 = jobs_dir / "..2026_11_27_v2"
    v2.mkdir()
    (v2 / "a.yaml").write_text(
        simple_job("cm-job", cron="30 9 * * *") + simple_job("cm-new")[len("jobs:\n") :]
    )
    (jobs_dir / "..data_tmp").symlink_to(v2.name)
    os.rename(jobs_dir / "..data_tmp", jobs_dir / "..data")
    shutil.rmtree(v1)

    after = wait_jobs(daemon, lambda js: "cm-new" in js, "the swapped ConfigMap")
    assert str(after["cm-job"]["next_run_time"]).split("T")[1].startswith("09:30:00")
    assert set(after) == {"cm-job", "cm-new"}
    assert "refused" not in daemon.log()


# the jobs dir itself replaced or created


def test_jobs_dir_replaced_by_a_rename_is_applied_and_still_watched(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path, tmp_path: Path
) -> None:
    """Regression: inotify watches a directory, not a path; after `mv jobs.new jobs.d` the
    daemon went on watching the old directory and missed every later change."""
    write_jobs("a.yaml", simple_job("old"))
    daemon = start_daemon()

    new = tmp_path / "jobs.new"
    new.mkdir()
    (new / "a.yaml").write_text(simple_job("old") + simple_job("swapped")[len("jobs:\n") :])
    os.rename(jobs_dir, tmp_path / "jobs.old")
    os.rename(new, jobs_dir)
    wait_jobs(daemon, lambda js: "swapped" in js, "the replaced directory's job")

    write_jobs("later.yaml", simple_job("later"))

    listing = wait_jobs(daemon, lambda js: "later" in js, "a change in the new directory")
    assert set(listing) == {"old", "swapped", "later"}


def test_symlinked_jobs_dir_swapped_is_applied_and_still_watched(
    start_daemon: StartDaemon, jobs_dir: Path, tmp_path: Path
) -> None:
    """Regression: with `jobs.d -> releases/v1` swapped atomically to `releases/v2` (a
    release symlink, `ln -sfn`), no event reaches the old watch: the swap was never seen."""
    releases = tmp_path / "releases"
    (releases / "v1").mkdir(parents=True)
    (releases / "v1" / "a.yaml").write_text(simple_job("hello", cron="0 9 * * *"))
    jobs_dir.rmdir()
    jobs_dir.symlink_to(releases / "v1")
    daemon = start_daemon()

    (releases / "v2").mkdir()
    (releases / "v2" / "a.yaml").write_text(simple_job("hello", cron="0 10 * * *"))
    (tmp_path / "jobs.tmp").symlink_to(releases / "v2")
    os.rename(tmp_path / "jobs.tmp", jobs_dir)
    wait_jobs(
        daemon,
        lambda js: str(js["hello"]["next_run_time"]).split("T")[1].startswith("10:00"),
        "the swapped release",
    )

    (releases / "v2" / "b.yaml").write_text(simple_job("later"))

    wait_jobs(daemon, lambda js: "later" in js, "a change in the new release")


def test_jobs_dir_created_after_start_is_applied_and_watched(
    start_daemon: StartDaemon, jobs_dir: Path
) -> None:
    jobs_dir.rmdir()
    daemon = start_daemon()
    assert daemon.jobs() == {}

    staging = jobs_dir.with_name("staging")
    staging.mkdir()
    (staging / "a.yaml").write_text(simple_job("hello"))
    os.rename(staging, jobs_dir)
    wait_jobs(daemon, lambda js: "hello" in js, "the new directory's job")

    (jobs_dir / "b.yaml").write_text(simple_job("later"))

    wait_jobs(daemon, lambda js: "later" in js, "a change in the new directory")


# 5. invalid input while running


def test_invalid_file_keeps_the_last_good_state_until_it_is_fixed(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    write_jobs("b.yaml", "jobs:\n" + interval_job("hourly"))
    daemon = start_daemon()
    before = daemon.jobs()

    mark = daemon.mark()
    write_jobs("a.yaml", simple_job("hello", cron="0 10 * * *", extra="retrys: 3"))
    (jobs_dir / "b.yaml").unlink()  # would remove a job, were anything applied

    position = re.escape(str(jobs_dir / "a.yaml")) + r":8:5: unknown key 'retrys'"
    daemon.wait_log(position, since=mark)
    assert "refused, keeping the last good state" in daemon.log(mark)
    assert daemon.jobs() == before
    assert daemon.proc.poll() is None

    write_jobs("a.yaml", simple_job("hello", cron="0 10 * * *", extra="retries: {attempts: 3}"))

    after = wait_jobs(daemon, lambda js: "hourly" not in js, "the fix to be applied")
    assert str(after["hello"]["next_run_time"]).split("T")[1].startswith("10:00:00")


def test_a_file_that_crashes_the_loader_does_not_stop_the_watching(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    """Regression: an unexpected exception in a reconcile (here a self-referencing YAML
    alias, which raised RecursionError in the loader) killed the watcher task silently; the
    daemon then ignored every later change."""
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()
    before = daemon.jobs()

    mark = daemon.mark()
    write_jobs("b.yaml", "jobs:\n  loop: &self [*self]\n")
    daemon.wait_log(r"reconcile \(.*\) (refused|failed)", since=mark)
    assert daemon.jobs() == before

    write_jobs("b.yaml", simple_job("later"))

    wait_jobs(daemon, lambda js: "later" in js, "a change after the bad file")


def test_a_file_saved_during_the_startup_reconcile_is_picked_up(
    start_daemon: StartDaemon, jobs_dir: Path, tmp_path: Path
) -> None:
    """Regression: the watcher started only after the start-up reconcile, so a file saved
    while that reconcile ran was seen by neither until some later change."""
    for i in range(600):  # enough to make the start-up parse last a few hundred ms
        (jobs_dir / f"f{i:03}.yaml").write_text(simple_job(f"j{i:03}"))
    daemon = start_daemon(ready=False)
    db_file = tmp_path / "scheduler.db"
    wait_for(db_file.exists, "the store to be created", timeout=3 * DEADLINE)
    time.sleep(0.05)  # the start-up reconcile has listed the files and is parsing them
    (jobs_dir / "late.yaml").write_text(simple_job("late"))
    daemon.wait_ready()

    wait_jobs(daemon, lambda js: "late" in js, "the file saved during start-up")


# 6. SIGHUP


def test_sighup_triggers_a_reconcile(start_daemon: StartDaemon, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()

    mark = daemon.mark()
    daemon.proc.send_signal(signal.SIGHUP)

    daemon.wait_log(r"reconcile \(SIGHUP\): 0 added, 0 updated, 0 removed, \d+ unchanged", mark)
    assert daemon.proc.poll() is None


# 7. stopping


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_daemon_with_exit_0_and_releases_the_lock(
    start_daemon: StartDaemon, write_jobs: WriteJobs, sig: signal.Signals
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()

    started = time.monotonic()
    code = daemon.stop(sig, timeout=DEADLINE)
    print(f"\n{sig.name}: stopped in {time.monotonic() - started:.3f} s")

    assert code == 0, daemon.log()
    assert "stopped" in daemon.log()
    assert "Traceback" not in daemon.log()
    second = start_daemon()  # the lock is free again
    assert "already runs" not in second.log()
    assert second.jobs() == daemon.jobs()


def test_after_kill_9_a_new_daemon_starts_and_answers_the_command_line(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    first = start_daemon()
    first.kill()  # SIGKILL: no clean-up, the socket file is left behind

    second = start_daemon()
    mark = second.mark()
    done = second.cli("reconcile", "-o", "json")

    assert done.returncode == 0, done.stderr
    assert "hello" in json.loads(done.stdout)["unchanged"]
    second.wait_log(r"reconcile \(command line\)", since=mark)


# 8. one writer


def test_cli_reconcile_is_delegated_to_the_running_daemon(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()

    mark = daemon.mark()
    done = daemon.cli("reconcile", "-o", "json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["add"], result["update"], result["remove"]) == ([], [], [])
    assert "hello" in result["unchanged"]
    assert result["applied"] is False
    assert re.search(r"reconcile \(command line\): 0 added", daemon.log(mark))


def test_cli_reconcile_of_an_invalid_file_exits_1_naming_the_position(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()
    before = daemon.jobs()

    mark = daemon.mark()
    write_jobs("a.yaml", simple_job("hello", extra="retrys: 3"))
    done = daemon.cli("reconcile", "-o", "json")

    assert done.returncode == 1, (done.stdout, done.stderr)
    position = f"{jobs_dir / 'a.yaml'}:8:5: unknown key 'retrys'"
    assert position in done.stdout + done.stderr
    daemon.wait_log(r"reconcile \(command line\) refused", since=mark)
    assert daemon.jobs() == before


def test_second_daemon_for_the_same_store_exits_1_saying_one_already_runs(
    start_daemon: StartDaemon, write_jobs: WriteJobs
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()

    second = daemon.cli("run", timeout=3 * DEADLINE)

    assert second.returncode == 1, (second.stdout, second.stderr)
    assert f"daemon (pid {daemon.proc.pid}) already runs" in second.stderr
    assert daemon.proc.poll() is None


# 9. latency


def test_latency_from_saving_a_file_to_the_job_being_listed(
    start_daemon: StartDaemon, write_jobs: WriteJobs, jobs_dir: Path, db_url: str
) -> None:
    write_jobs("a.yaml", simple_job("hello"))
    daemon = start_daemon()

    seconds = []
    for i in range(5):
        job_id = f"new-{i}"
        (jobs_dir / f"new-{i}.yaml").write_text(simple_job(job_id))
        saved = time.monotonic()
        while job_id not in jobs(jobs_dir, db_url):
            assert time.monotonic() - saved < DEADLINE, f"{job_id} not listed:\n{daemon.tail()}"
            time.sleep(0.005)
        seconds.append(time.monotonic() - saved)

    ms = sorted(round(s * 1000) for s in seconds)
    print(f"\nsave -> listed latency (ms): {ms}, median {statistics.median(ms)}")
