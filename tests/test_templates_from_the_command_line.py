"""Templates from the command line, on a store no daemon holds: `validate` checks templates
at PATH:LINE:COL (a parameter inside a shell string is refused), and `templates`, `create`,
`jobs --template`, `modify`, `trigger --in` and `delete` act on the store directly."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunCli, WriteJobs

TEMPLATES = """\
templates:
  echoargs:
    description: prints its arguments
    params:
      query: {type: string, required: true}
      limit: {type: integer, min: 1, max: 50, default: 10}
      tags: {type: list, items: string, default: []}
    run:
      type: command
      command: [echo, "${params.query}", "--limit=${params.limit}", "${params.tags}"]
jobs:
  report:
    schedule: {cron: "0 9 * * 1-5"}
    run: {type: command, command: [echo, report]}
"""


def test_validate_points_at_template_problems(
    run_cli: RunCli, write_jobs: WriteJobs, jobs_dir: Path
) -> None:
    path = write_jobs(
        "bad.yaml",
        """\
        templates:
          shell:
            params:
              q: {type: string}
            run:
              type: command
              command: "echo ${params.q}"
          elsewhere:
            description: "about ${params.q}"
            params:
              q: {type: string}
            run: {type: command, command: [echo, "${params.nope}"]}
          typed:
            params:
              n: {type: integer, default: "ten"}
              s: {type: strnig}
            run: {type: command, command: [echo]}
        """,
    )
    result = run_cli("validate")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith(str(path))]
    assert lines == [
        f"{path}:7:16: a parameter inside a shell string is refused: write command as a list "
        '(["prog", "--flag", "${params.x}"]) so each value stays one argument, never read by '
        "a shell",
        f"{path}:9:18: description: ${{params.…}} may only stand in run.command list items, an "
        "http url, headers or json, or python kwargs",
        f"{path}:12:42: ${{params.nope}}: no such parameter (declared: q)",
        f"{path}:15:10: n: default: must be an integer",
        f"{path}:16:17: type: Input should be 'string', 'integer', 'number', 'boolean' or 'list'",
    ], result.output


def test_instances_from_the_command_line_on_the_store(
    run_cli: RunCli, write_jobs: WriteJobs
) -> None:
    write_jobs("t.yaml", TEMPLATES)
    assert run_cli("validate").output == "ok: 1 job(s), 1 template(s) in 1 file(s)\n"
    assert run_cli("reconcile").exit_code == 0
    listed = run_cli("templates")
    assert "echoargs" in listed.output and "params: limit, query*, tags" in listed.output

    made = run_cli(
        "create", "echoargs", "-p", "query=a b; c", "-p", "limit=5", "-p", "tags=x,y",
        "--interval", "2h", "--id", "one", "-o", "json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    job = json.loads(made.output)
    assert job["params"] == {"query": "a b; c", "limit": 5, "tags": ["x", "y"]}
    assert job["spec"]["run"]["command"] == ["echo", "a b; c", "--limit=5", "x", "y"]

    bad = run_cli("create", "echoargs", "-p", "query=q", "-p", "limit=lots", "--in", "1h")
    assert bad.exit_code == 1 and "params.limit: must be an integer" in bad.output
    both = run_cli("create", "echoargs", "-p", "query=q", "--in", "1h", "--cron", "0 * * * *")
    assert both.exit_code != 0 and "give one of" in both.output

    only = json.loads(run_cli("jobs", "--template", "echoargs", "-o", "json").output)
    assert [j["id"] for j in only] == ["one"]
    assert "template echoargs" in run_cli("jobs").output

    changed = run_cli("modify", "one", "-p", "limit=7", "-p", "tags=", "-o", "json")
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.output)["spec"]["run"]["command"] == ["echo", "a b; c", "--limit=7"]

    later = run_cli("trigger", "one", "--in", "2h")
    assert later.exit_code == 0 and "one: runs at" in later.output
    now = run_cli("trigger", "one")
    assert now.exit_code == 1 and "no scheduler daemon runs" in now.output

    # A template edit re-renders its instances; a description of their own is kept.
    own = run_cli("create", "echoargs", "-p", "query=q", "--in", "1h", "--id", "two",
                  "--description", "mine")  # fmt: skip
    assert own.exit_code == 0, own.output
    write_jobs(
        "t.yaml", TEMPLATES.replace("prints its", "echoes its").replace("[echo,", "[printf,")
    )
    planned = run_cli("plan")
    assert "* echoargs: 2 instances updated" in planned.output, planned.output
    assert run_cli("reconcile").exit_code == 0
    specs = {j: json.loads(run_cli("get", j, "-o", "json").output)["spec"] for j in ("one", "two")}
    assert specs["one"]["run"]["command"][0] == "printf"
    assert specs["one"]["description"] == "echoes its arguments"
    assert specs["two"]["description"] == "mine"
    assert "No changes" in run_cli("plan").output

    file_job = run_cli("delete", "report")
    assert file_job.exit_code == 1 and "t.yaml:12" in file_job.output
    assert run_cli("delete", "one").exit_code == 0
    assert run_cli("delete", "two").exit_code == 0
    assert json.loads(run_cli("jobs", "--template", "echoargs", "-o", "json").output) == []
    assert run_cli("delete", "one").exit_code == 1
