"""The command-line verbs of templates and their instances: ``templates``, ``create``,
``modify`` and ``delete`` (``trigger --in/--at/--param`` lives with ``trigger`` in ``cli``).
They act through ``instance_client``; registered on the group by ``cli.register``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from scheduler.cli_common import OUTPUT
from scheduler.settings import Settings

Printer = Callable[[Any], None]
PARAM = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the template (repeat it); typed as the template says, a list as "
    "a,b,c. NAME= (empty) drops it on modify, so its default applies.",
)


ALLOW_ORPHAN_DELETE = click.option(
    "--allow-orphan-delete",
    is_flag=True,
    help="Allow removing a template that still has instances: they are removed with it "
    "(refused by default).",
)


def LATER(func: Callable[..., Any]) -> Callable[..., Any]:
    """``trigger``'s --in, --at and --param."""
    func = PARAM(func)
    func = click.option("--at", "at", help="Run once at this time (ISO 8601).")(func)
    return click.option(
        "--in", "in_", metavar="DURATION", help="Run once this long from now, e.g. 2h."
    )(func)


def trigger_later(
    settings: Settings,
    job_id: str,
    in_: str | None,
    at: str | None,
    params: tuple[str, ...],
    output: str,
    say: Callable[[str], None],
) -> None:
    """``trigger --in/--at/--param``: a one-off run, through ``instance_client``."""
    from scheduler.instance_client import act

    request: dict[str, Any] = {"op": "run", "job_id": job_id, "in": in_, "at": at}
    request.update(params=parse_params(params) or None, text_params=True)
    done = act(settings, request)
    _show(done, output, say, f"{job_id}: runs at {done['at']}")


def schedule_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--cron", help='A cron schedule, e.g. "0 9 * * 1-5".'),
            click.option("--interval", help="Run every this long, e.g. 2h."),
            click.option("--at", "at", help="Run once at this time (ISO 8601)."),
            click.option("--in", "in_", metavar="DURATION", help="Run once this long from now."),
            click.option("--timezone", help="IANA zone of the cron schedule or a naive --at."),
        ]
    ):
        func = option(func)
    return func


def parse_params(values: tuple[str, ...], *, dropping: bool = False) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{item}': expected NAME=VALUE, e.g. query=climate")
        params[name] = None if dropping and value == "" else value
    return params


def schedule_of(
    cron: str | None, interval: str | None, at: str | None, in_: str | None, timezone: str | None
) -> dict[str, Any] | None:
    given = {"cron": cron, "interval": interval, "at": at, "in": in_}
    chosen = {key: value for key, value in given.items() if value is not None}
    if len(chosen) > 1:
        raise click.UsageError(f"give one of --cron, --interval, --at, --in (got {len(chosen)})")
    if not chosen:
        if timezone:
            raise click.UsageError("--timezone goes with --cron or --at")
        return None
    return {**chosen, **({"timezone": timezone} if timezone else {})}


def _show(result: dict[str, Any], output: str, say: Callable[[str], None], text: str) -> None:
    if output == "json":
        say(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        say(text)


def register(cli: click.Group, say: Callable[[str], None]) -> None:
    """Add the verbs to ``cli``; ``say`` prints text safely (``cli._say``)."""

    @cli.command()
    @click.argument("name", required=False)
    @OUTPUT
    @click.pass_obj
    def templates(settings: Settings, name: str | None, output: str) -> None:
        """List the templates jobs can be created from, or show one with its parameters.

        \b
        Example:
          scheduler templates
          scheduler templates search -o json | jq .params
        """
        from scheduler.client import call
        from scheduler.instances import template, templates
        from scheduler.store import Store

        if settings.api_url:
            path = f"/templates/{name}" if name else "/templates"
            found = call(settings.api_url, "GET", path)
            listing = [found] if name else found["templates"]
        else:
            store = Store(settings.db, create=False)
            try:
                listing = [template(store, name)] if name else templates(store)
            finally:
                store.close()
        if output == "json":
            say(json.dumps(listing[0] if name else listing, indent=2, ensure_ascii=False))
            return
        for entry in listing:
            params = entry["params"]
            required = set(params["required"])
            names = [f"{p}{'*' if p in required else ''}" for p in sorted(params["properties"])]
            say(
                f"{entry['name']}  ({entry['source']})  {entry['instances']} instance(s)"
                f"  params: {', '.join(names) or 'none'}"
            )

    @cli.command()
    @click.argument("template")
    @PARAM
    @schedule_options
    @click.option("--id", "job_id", help="The new job's id (default: TEMPLATE-<random>).")
    @click.option("--description", help="The job's description.")
    @OUTPUT
    @click.pass_obj
    def create(
        settings: Settings,
        template: str,
        params: tuple[str, ...],
        cron: str | None,
        interval: str | None,
        at: str | None,
        in_: str | None,
        timezone: str | None,
        job_id: str | None,
        description: str | None,
        output: str,
    ) -> None:
        """Create a job from a template the files declare (params checked against it).

        \b
        Example:
          scheduler create search -p query=climate -p sources=web,news --interval 6h
          scheduler create analysis -p search_id=42 --in 5m --id analysis-42
        """
        from scheduler.instance_client import act

        request = {
            "op": "create",
            "template": template,
            "job_id": job_id,
            "params": parse_params(params),
            "text_params": True,
            "schedule": schedule_of(cron, interval, at, in_, timezone),
            "description": description,
        }
        job = act(settings, request)
        _show(
            job,
            output,
            say,
            f"created {job['id']}: {job['schedule']}, next run {job['next_run_time']}",
        )

    @cli.command()
    @click.argument("job_id", metavar="JOB")
    @PARAM
    @schedule_options
    @click.option("--description", help="The job's new description.")
    @OUTPUT
    @click.pass_obj
    def modify(
        settings: Settings,
        job_id: str,
        params: tuple[str, ...],
        cron: str | None,
        interval: str | None,
        at: str | None,
        in_: str | None,
        timezone: str | None,
        description: str | None,
        output: str,
    ) -> None:
        """Change a job created from a template: params, schedule or description. The next
        run is kept unless the schedule changes.

        \b
        Example:
          scheduler modify search-1a2b3c4d -p query="climate change" --cron "0 6 * * *"
        """
        from scheduler.instance_client import act

        request = {
            "op": "modify",
            "job_id": job_id,
            "params": parse_params(params, dropping=True) or None,
            "text_params": True,
            "schedule": schedule_of(cron, interval, at, in_, timezone),
            "description": description,
        }
        job = act(settings, request)
        _show(job, output, say, f"modified {job['id']}: next run {job['next_run_time']}")

    @cli.command()
    @click.argument("job_id", metavar="JOB")
    @OUTPUT
    @click.pass_obj
    def delete(settings: Settings, job_id: str, output: str) -> None:
        """Delete a job created from a template (a file's job is removed from its file).

        \b
        Example:
          scheduler delete search-1a2b3c4d
        """
        from scheduler.instance_client import act

        result = act(settings, {"op": "remove", "job_id": job_id})
        _show(result, output, say, f"deleted {job_id}")
