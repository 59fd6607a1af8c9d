"""The command-line verbs that look at what happened: ``history``, ``logs`` and ``get``.
Added to the group by ``cli``.
"""

from __future__ import annotations

import sys

import click

from scheduler.cli_common import JOB_ID, OUTPUT, print_json, say
from scheduler.settings import Settings


@click.command()
@click.argument("job_id", metavar="[JOB]", required=False)
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 100000))
@click.option(
    "--before",
    metavar="CURSOR",
    help="Older runs: the cursor the previous page printed last (`--before ...`).",
)
@click.option(
    "--output-lines",
    default="3",
    show_default=True,
    metavar="N|all",
    help="Lines of each run's output to show in text output (`all`: everything kept).",
)
@OUTPUT
@click.pass_obj
def history(
    settings: Settings,
    job_id: str | None,
    limit: int,
    before: str | None,
    output_lines: str,
    output: str,
) -> None:
    """Past runs, newest first: start, end, outcome, exit code, attempt, run id, output.

    `scheduler logs RUN_ID` prints one run's whole kept output. When there are older runs,
    the last line (on stderr) gives the `--before CURSOR` that shows the next page.

    \b
    Example:
      scheduler history
      scheduler history weekly-export --limit 5 --output-lines all
      scheduler history weekly-export --limit 5 -o json
      scheduler history --before 1764381600.25_1_3f2a9c1e...   # the next page
    """
    from scheduler.render import history_text
    from scheduler.service import runs_listing

    if output_lines == "all":
        lines = None
    elif output_lines.isdigit():
        lines = int(output_lines)
    else:
        raise click.BadParameter(
            f"{output_lines!r}: give a number of lines, or `all`", param_hint="--output-lines"
        )
    runs, following = runs_listing(settings, job_id, limit, before)
    if output == "json":
        print_json(runs)
    else:
        say(history_text(runs, lines))
    if following is not None:
        import shlex

        again = ["scheduler", "history", *([job_id] if job_id else []), "--before", following]
        say(f"older runs: {shlex.join(again)}", err=True)


@click.command()
@click.argument("run_id", metavar="RUN_ID")
@OUTPUT
@click.pass_obj
def logs(settings: Settings, run_id: str, output: str) -> None:
    """Print one run's whole kept output (the last 64 KiB), then its error if it failed.

    RUN_ID is shown by `scheduler history` (run=...); a unique prefix of it will do. The
    exit code is 0 when the run succeeded, 1 otherwise.

    \b
    Example:
      scheduler logs 3f2a9c1e
      scheduler logs 3f2a9c1e -o json | jq -r .output_tail
    """
    from scheduler.lookup import run_view

    run = run_view(settings, run_id)
    if output == "json":
        print_json(run)
    else:
        if run["output_tail"]:
            say(run["output_tail"].rstrip("\n"))
        if run["error"] and run["outcome"] not in ("success", "sent"):
            say(f"{run['job_id']} {run['outcome']}: {run['error'].strip()}", err=True)
    if run["outcome"] not in ("success", "sent"):
        sys.exit(1)


@click.command()
@JOB_ID
@click.option("--runs", "-n", default=5, show_default=True, type=click.IntRange(0, 1000))
@click.option(
    "--fires", default=5, show_default=True, type=click.IntRange(0, 100), help="Next fire times."
)
@OUTPUT
@click.pass_obj
def get(settings: Settings, job_id: str, runs: int, fires: int, output: str) -> None:
    """Show one job: its spec, source, state, next fire times and last runs.

    \b
    Example:
      scheduler get nightly-backup
      scheduler get nightly-backup --runs 20 -o json | jq '.runs[].outcome'
    """
    from scheduler.lookup import job_view
    from scheduler.render import job_text

    detail = job_view(settings, job_id, runs, fires)
    if output == "json":
        print_json(detail)
    else:
        say(job_text(detail))
