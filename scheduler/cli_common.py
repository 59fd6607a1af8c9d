"""What every command-line verb shares: the ``--output`` option, the JOB argument, and the
two ways of printing (JSON, and text that may hold job output). Callers: ``cli``,
``cli_inspect``, ``cli_instances``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from scheduler.terminal import safe_json, safe_text

OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
JOB_ID = click.argument("job_id", metavar="JOB")


def print_json(value: Any) -> None:
    click.echo(safe_json(json.dumps(value, indent=2, ensure_ascii=False, default=str)))


def say(text: str, *, err: bool = False) -> None:
    """Print text that may hold job output or job-provided text: control characters and
    escape sequences are shown, never sent raw to the terminal."""
    click.echo(safe_text(text), err=err)
