"""Job output and job-provided text never reach the operator's terminal raw: `history`,
`jobs` and error lines show control characters as ``\\xNN``, while ``--output json`` keeps
every value exact (and still writes no raw escape byte). Regression for issue 16.15:
`history` printed a job's output raw, so a job could retitle the terminal and write the
operator's clipboard (OSC 52)."""

from __future__ import annotations

import json

from tests.conftest import RunCli, StartDaemon, WriteJobs, simple_job
from tests.runner_helpers import run_stored_job

# title (OSC 0), clipboard (OSC 52), clear screen (CSI), one-byte C1 CSI, a carriage
# return that would overwrite the line, a right-to-left override.
PRINTF = (
    r"ok\033]0;pwned\007 \033]52;c;cm0gLXJmIH4=\007 \033[2J \302\2331m fake\rreal \342\200\256txt"
)
EXACT = "ok\x1b]0;pwned\x07 \x1b]52;c;cm0gLXJmIH4=\x07 \x1b[2J \x9b1m fake\rreal \u202etxt"
RAW = ("\x1b", "\x07", "\x9b", "\r", "\u202e")

JOBS = f"""\
jobs:
  noisy:
    description: "quiet \\e]0;from-the-description\\a please"
    schedule: {{cron: "0 9 * * *"}}
    run: {{type: command, command: ["printf", '{PRINTF}']}}
"""


def test_history_shows_escape_sequences_instead_of_sending_them(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    assert run_stored_job(db_url, "noisy") == "success"

    text = run_cli("history", "noisy").output
    assert not [c for c in RAW if c in text], repr(text)
    assert r"ok\x1b]0;pwned\x07 \x1b]52;c;cm0gLXJmIH4=\x07 \x1b[2J \x9b1m fake\x0dreal" in text
    assert r"\u202etxt" in text

    encoded = run_cli("history", "noisy", "-o", "json").output
    assert not [c for c in RAW if c in encoded], repr(encoded)
    assert json.loads(encoded)[0]["output_tail"] == EXACT


def test_jobs_and_errors_escape_job_provided_text(run_cli: RunCli, write_jobs: WriteJobs) -> None:
    write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    listing = run_cli("jobs").output
    assert "\x1b" not in listing and "\x07" not in listing
    assert json.loads(run_cli("jobs", "-o", "json").output)[0]["description"] == (
        "quiet \x1b]0;from-the-description\x07 please"
    )
    missing = run_cli("pause", "no\x1b]0;x\x07pe")
    assert missing.exit_code == 1
    assert "\x1b" not in missing.output
    assert r"no job 'no\x1b]0;x\x07pe'" in missing.output


def test_line_breaks_tabs_and_crlf_read_normally(
    run_cli: RunCli, write_jobs: WriteJobs, db_url: str
) -> None:
    write_jobs(
        "a.yaml",
        """\
        jobs:
          windows:
            schedule: {cron: "0 9 * * *"}
            run: {type: command, command: ["printf", 'one\\ttab\\r\\ntwo\\r\\n']}
        """,
    )
    assert run_cli("reconcile").exit_code == 0
    assert run_stored_job(db_url, "windows") == "success"
    lines = run_cli("history", "windows").output.splitlines()
    assert lines[1:] == ["    | one\ttab", "    | two"]


BAD_CRON = """\
jobs:
  a:
    schedule: {cron: "* * * * \\e]0;pwned\\a"}
    run: {type: command, command: ["true"]}
"""
SHOWN = r"day-of-week field '\x1b]0;pwned\x07'"


def test_validate_and_the_daemon_log_show_escapes_from_a_file(
    run_cli: RunCli, write_jobs: WriteJobs, start_daemon: StartDaemon
) -> None:
    write_jobs("a.yaml", simple_job("a"))
    daemon = start_daemon()
    mark = daemon.mark()
    write_jobs("a.yaml", BAD_CRON)
    validated = run_cli("validate")
    assert validated.exit_code == 1
    assert SHOWN in validated.output and "\x1b" not in validated.output
    daemon.wait_log("refused, keeping the last good state", since=mark)
    log = daemon.log(mark)
    assert SHOWN in log and "\x1b" not in log and "\x07" not in log
