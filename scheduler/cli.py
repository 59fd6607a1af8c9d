"""The ``scheduler`` command line: parses options, calls the library, prints.

Errors are mapped to exit codes in one place (``main``); every command's ``--help`` has an
example. Nothing here decides anything the library could not decide without it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from scheduler import __version__
from scheduler.cli_common import JOB_ID, OUTPUT, print_json, say
from scheduler.cli_inspect import get, history, logs
from scheduler.cli_instances import ALLOW_ORPHAN_DELETE, LATER, register, trigger_later
from scheduler.errors import InvalidJobFiles, SchedulerError
from scheduler.quick_exit import exit_now
from scheduler.settings import Settings

ALLOW_EMPTY = click.option(
    "--allow-empty",
    is_flag=True,
    help="Allow removing every stored job when no file declares one (refused by default: "
    "an empty directory is more often a broken mount than an intent).",
)


def _iso(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not ISO 8601, e.g. 2026-12-01T09:00:00+01:00"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _wall_time(value: str) -> datetime:
    """ISO 8601; without an offset it stays naive: wall time in the schedule's zone."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return _iso(value)  # says what is wrong, with an example


class SchedulerGroup(click.Group):
    """Maps scheduler errors to their message and exit code, in this one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SchedulerError as exc:
            say(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            # A database error from any verb or the daemon's start-up: one line naming the
            # store, not a traceback. (Only possible once SQLAlchemy has been imported.)
            sa = sys.modules.get("sqlalchemy.exc")
            if sa is None or not isinstance(exc, sa.SQLAlchemyError):
                raise
            from scheduler.store_errors import explain

            settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
            say(f"error: {explain(settings.db, exc)}", err=True)
            ctx.exit(1)


@click.group(
    cls=SchedulerGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--jobs-dir",
    envvar="SCHEDULER_JOBS_DIR",
    type=click.Path(path_type=Path),
    default=Path("jobs.d"),
    show_default=True,
    help="Directory of YAML job files (env SCHEDULER_JOBS_DIR).",
)
@click.option(
    "--db",
    envvar="SCHEDULER_DB",
    default=None,
    help="SQLAlchemy URL of the store (env SCHEDULER_DB) [default: sqlite:///scheduler.db].",
)
@click.option(
    "--url",
    envvar="SCHEDULER_URL",
    default=None,
    help="A running daemon's HTTP API (env SCHEDULER_URL, token from SCHEDULER_API_TOKEN): "
    "plan, reconcile, jobs, history, trigger, pause and resume go through it.",
)
@click.version_option(__version__, prog_name="scheduler")
@click.pass_context
def cli(ctx: click.Context, jobs_dir: Path, db: str | None, url: str | None) -> None:
    """Keep an APScheduler store in line with the YAML job files in a directory.

    \b
    Example:
      scheduler validate            # check jobs.d/ before you commit
      scheduler --jobs-dir /etc/jobs.d preview --job nightly-backup
    """
    ctx.obj = Settings(jobs_dir=jobs_dir, db_url=db, api_url=url.rstrip("/") if url else None)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@OUTPUT
@click.pass_obj
def validate(settings: Settings, paths: tuple[Path, ...], output: str) -> None:
    """Check job files; exit 1 with one PATH:LINE:COL line per problem.

    PATHS are files or directories (default: the jobs dir). Every problem in every file is
    reported at once, so CI shows the whole list.

    \b
    Example:
      scheduler validate jobs.d/ && git commit
      scheduler validate --output json jobs.d/reports.yaml
    """
    from scheduler.loader import load_paths

    try:
        state = load_paths(paths or (settings.jobs_dir,), specs=False)
    except InvalidJobFiles as exc:
        if output == "json":
            print_json([p.as_dict() for p in exc.problems])
        else:
            for problem in exc.problems:
                say(str(problem))
            click.echo(
                f"{len(exc.problems)} problem(s): fix them and run `scheduler validate` again",
                err=True,
            )
        sys.exit(1)
    for job in state.jobs.values():  # valid, but probably not what was meant: on stderr
        for warning in job.warnings:
            click.echo(f"{job.source.path}:{job.source.line}:{job.source.col}: warning: "
                       f"job '{job.id}': {warning}", err=True)  # fmt: skip
    if output == "json":
        print_json([])
    else:
        templates = f", {len(state.templates)} template(s)" if state.templates else ""
        click.echo(f"ok: {len(state.jobs)} job(s){templates} in {len(state.files)} file(s)")


@cli.command()
@click.argument("cron", required=False)
@click.option("--job", "job_id", help="Preview a job declared in the jobs dir instead.")
@click.option("--tz", default=None, help="IANA time zone of CRON [default: UTC].")
@click.option(
    "--from",
    "start",
    default=None,
    help="Start after this ISO 8601 time; without an offset it is wall time in the schedule's "
    "zone, as in job files [default: now].",
)
@click.option("--count", "-n", default=10, show_default=True, type=click.IntRange(1, 10000))
@OUTPUT
@click.pass_obj
def preview(
    settings: Settings,
    cron: str | None,
    job_id: str | None,
    tz: str | None,
    start: str | None,
    count: int,
    output: str,
) -> None:
    """Print the next fire times of a cron expression or of a declared job.

    One ISO 8601 time with offset per line, in the schedule's time zone.

    \b
    Example:
      scheduler preview '0 9 * * 1-5' --tz Europe/Berlin --count 5
      scheduler preview '30 2 * * *' --tz Europe/Berlin --from 2027-03-27T00:00:00
      scheduler preview --job weekly-export
    """
    from scheduler.cron import parse_cron
    from scheduler.preview import preview_times

    after = _wall_time(start) if start else datetime.now(UTC)
    if (cron is None) == (job_id is None):
        raise click.UsageError("give either a CRON expression or --job ID")
    times = preview_times(settings, after, count, cron=cron, tz=tz, job_id=job_id)
    for warning in parse_cron(cron).warnings if cron else ():
        click.echo(f"warning: {warning}", err=True)
    if output == "json":
        print_json([t.isoformat() for t in times])
    else:
        for t in times:
            click.echo(t.isoformat())


@cli.command()
def schema() -> None:
    """Print the JSON Schema of job files (the committed schema.json equals it).

    \b
    Example:
      scheduler schema > schema.json
    """
    from scheduler.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


def _print_plan(details: dict[str, Any], output: str) -> None:
    from scheduler.render import plan_json, plan_text

    if output == "json":
        print_json(plan_json(details))
    else:
        say(plan_text(details))


@cli.command()
@ALLOW_EMPTY
@ALLOW_ORPHAN_DELETE
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when there are changes, 0 when none (for CI drift checks).",
)
@OUTPUT
@click.pass_obj
def plan(
    settings: Settings,
    allow_empty: bool,
    allow_orphan_delete: bool,
    detailed_exitcode: bool,
    output: str,
) -> None:
    """Show what `reconcile` would change in the store, changing nothing.

    With --url, the local jobs dir is validated here and diffed against the daemon's store
    (like `kubectl diff -f`).

    \b
    Example:
      scheduler plan
      scheduler plan --detailed-exitcode -o json   # exit 2 when the store has drifted
      scheduler --url https://scheduler.internal plan --detailed-exitcode   # in CI
    """
    from scheduler.service import plan_for

    details = plan_for(settings, allow_empty=allow_empty, allow_orphan_delete=allow_orphan_delete)
    _print_plan(details, output)
    if detailed_exitcode and (details["add"] or details["update"] or details["remove"]):
        sys.exit(2)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only print the plan (same as `scheduler plan`).")
@ALLOW_EMPTY
@ALLOW_ORPHAN_DELETE
@OUTPUT
@click.pass_obj
def reconcile(
    settings: Settings, dry_run: bool, allow_empty: bool, allow_orphan_delete: bool, output: str
) -> None:
    """Make the store match the job files, and print what was done.

    Nothing is applied if any file is invalid. When a daemon runs for this store, it is
    asked to reconcile instead (one writer), and its result is printed.

    \b
    Example:
      scheduler reconcile
      scheduler --db postgresql+psycopg://scheduler@db/scheduler reconcile -o json
    """
    from scheduler.service import plan_for, reconcile_now

    allow = {"allow_empty": allow_empty, "allow_orphan_delete": allow_orphan_delete}
    details = plan_for(settings, **allow) if dry_run else reconcile_now(settings, **allow)
    _print_plan(details, output)


@cli.command()
@click.option("--template", help="Only the jobs created from this template.")
@OUTPUT
@click.pass_obj
def jobs(settings: Settings, template: str | None, output: str) -> None:
    """List the stored jobs: schedule, next run, paused, and the file:line declaring each
    (or `template NAME` for a job created from a template).

    \b
    Example:
      scheduler jobs
      scheduler jobs -o json | jq '.[] | select(.paused)'
      scheduler jobs --template search
    """
    from scheduler.render import jobs_text
    from scheduler.service import jobs_listing

    listing = jobs_listing(settings, template)
    if output == "json":
        print_json(listing)
    else:
        say(jobs_text(listing))


@cli.command()
@ALLOW_EMPTY
@click.option(
    "--shutdown-grace",
    default=10.0,
    show_default=True,
    type=float,
    help="Seconds running jobs get to finish on SIGTERM before they are stopped.",
)
@click.option(
    "--http",
    "http",
    envvar="SCHEDULER_HTTP",
    default=None,
    metavar="HOST:PORT",
    help="Serve the HTTP API, status page and metrics (env SCHEDULER_HTTP); a bare PORT binds "
    "127.0.0.1. Set SCHEDULER_API_TOKEN (one admin token) and/or SCHEDULER_API_TOKENS (a file "
    "of 'TOKEN ROLE [NAME]' lines, roles read, operate, admin) to require bearer tokens.",
)
@click.option(
    "--lease",
    envvar="SCHEDULER_LEASE",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="Replicas on PostgreSQL or MySQL/MariaDB: how long the leader's lease lasts "
    "(env SCHEDULER_LEASE, 2s..5m). A standby takes over within about this long after the "
    "leader dies, e.g. --lease 5s.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one event per line with job id, run id, outcome, duration.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.pass_obj
def run(
    settings: Settings,
    allow_empty: bool,
    shutdown_grace: float,
    http: str | None,
    lease: str,
    log_format: str,
    log_level: str,
) -> None:
    """Run the daemon: reconcile now and on every change under the jobs dir, run due jobs.

    SIGHUP reconciles; SIGTERM or Ctrl-C stops it. An invalid file is logged and changes
    nothing: the daemon keeps running its last good state.

    \b
    Example:
      scheduler run
      scheduler run --http 8080      # API, status page and /metrics on 127.0.0.1:8080
      SCHEDULER_API_TOKENS=/etc/scheduler/tokens scheduler run --http 0.0.0.0:8080
      SCHEDULER_DB=sqlite:////var/lib/scheduler/jobs.db scheduler --jobs-dir /etc/jobs.d run
      # replicas: the same command on two hosts, one PostgreSQL store; one leads
      scheduler --db postgresql+psycopg://sched@db/sched run --http 0.0.0.0:8080 --lease 10s
    """
    import asyncio

    gc.enable()  # a long-lived process: see main()

    from scheduler import logs
    from scheduler.api import parse_bind
    from scheduler.daemon import Daemon
    from scheduler.durations import parse_duration
    from scheduler.leadership import BadLease, check_lease
    from scheduler.tokens import Access

    try:
        lease_seconds = check_lease(parse_duration(lease).total_seconds())
    except ValueError as exc:
        raise BadLease(f"--lease: {exc}") from None
    access = Access.from_env(os.environ)  # a bad tokens file stops us here, PATH:LINE:COL
    bind = parse_bind(http, access) if http else None
    logs.setup(log_level, log_format)
    daemon = Daemon(
        settings,
        allow_empty=allow_empty,
        shutdown_grace=shutdown_grace,
        http=bind,
        access=access,
        lease=lease_seconds,
    )
    asyncio.run(daemon.run())


def _operator(settings: Settings, op: str, job_id: str, output: str) -> dict[str, Any]:
    from scheduler.service import operator_action

    result = operator_action(settings, op, job_id)
    if output == "json":
        print_json(result)
    return result


@cli.command()
@JOB_ID
@LATER
@OUTPUT
@click.pass_obj
def trigger(
    settings: Settings,
    job_id: str,
    in_: str | None,
    at: str | None,
    params: tuple[str, ...],
    output: str,
) -> None:
    """Run a job now, recorded like any run (its concurrency policy still applies); or
    later (--in/--at), and a template's job with other params for that run (--param).

    The daemon that leads the store runs it (found by its socket, or through the store when
    it runs on another host); with no daemon running a run now fails and says so.

    \b
    Example:
      scheduler trigger weekly-export && scheduler history weekly-export --limit 1
      scheduler trigger search-1a2b3c4d --in 2h -p query=storms
    """
    if in_ or at or params:
        return trigger_later(settings, job_id, in_, at, params, output, say)
    result = _operator(settings, "trigger", job_id, output)
    if output == "text":
        if not result["started"]:
            say(f"{job_id} not started: {result['reason']}")
        elif result.get("outcome"):
            say(f"{job_id}: {result['outcome']} (see `scheduler history {job_id}`)")
        else:
            say(f"{job_id} started by the daemon (see `scheduler history {job_id}`)")
    if result.get("outcome") not in (None, "success", "sent") or not result["started"]:
        sys.exit(1)


@cli.command()
@JOB_ID
@OUTPUT
@click.pass_obj
def pause(settings: Settings, job_id: str, output: str) -> None:
    """Pause a job until `scheduler resume`; kept across reconciles and restarts.

    \b
    Example:
      scheduler pause nightly-backup
    """
    result = _operator(settings, "pause", job_id, output)
    if output == "text":
        say(f"{job_id} paused" if result["changed"] else f"{job_id} was already paused")


@cli.command()
@JOB_ID
@OUTPUT
@click.pass_obj
def resume(settings: Settings, job_id: str, output: str) -> None:
    """Lift an operator's pause; the job's next run is computed from now.

    A job with `paused: true` in its file stays paused until the file says otherwise.

    \b
    Example:
      scheduler resume nightly-backup
    """
    from scheduler.lookup import job_view
    from scheduler.service import operator_action

    result = operator_action(settings, "resume", job_id)
    job = job_view(settings, job_id, runs=0, fires=0)
    result["paused_by"] = job["paused_by"]
    if output == "json":
        print_json(result)
    if job["paused_by"] == "file":
        # Regression (issue 15.6): this said nothing and exited 0, the job still paused.
        lifted = "the operator's pause is lifted, but " if result["changed"] else ""
        raise SchedulerError(
            f"{job_id} stays paused: {lifted}its file says `paused: true` ({job['source']}); "
            "set it to false there (and commit), and the next reconcile resumes it"
        )
    if output == "text":
        say(f"{job_id} resumed" if result["changed"] else f"{job_id} was not paused")


@cli.command()
@JOB_ID
@click.pass_obj
def remove(settings: Settings, job_id: str) -> None:
    """Explain how to remove a job: delete it from the file that declares it.

    \b
    Example:
      scheduler remove old-report   # prints the file and line to edit
    """
    from scheduler.service import explain_remove

    raise explain_remove(settings, job_id)


register(cli, say)
for verb in (history, logs, get):
    cli.add_command(verb)


def main() -> None:
    # A command runs once and exits, building large acyclic structures (a row, a dict, a
    # spec per job): the cyclic collector's full passes over them took up to a tenth of a
    # reconcile or a `jobs` listing of 10,000 jobs. The daemon (`run`) turns it back on.
    gc.disable()
    try:
        cli()
    except SystemExit as done:  # how click ends every command
        if gc.isenabled():  # the daemon: its own exit, with every cleanup it registered
            raise
        exit_now(done.code)
