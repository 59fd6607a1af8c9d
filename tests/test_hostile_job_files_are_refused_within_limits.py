"""Hostile job files are refused (or accepted) quickly and in bounded memory, with a
PATH:LINE:COL error, never a stall. Pins issue 13.1/13.2: a 12-line alias bomb ran
`scheduler validate` past 60 s and 6 GB; a dangling symlink or a symlink loop was skipped
(so `plan` said "remove"). Each case runs `scheduler validate` as a subprocess under
setrlimit, so a regression is killed instead of taking the test runner down."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import simple_job

CPU_SECONDS = 5
RSS_LIMIT_MB = 300
ADDRESS_SPACE = 2 * 1024 * 1024 * 1024  # the hard stop behind the RSS assertion


def laughs(indent: str, item: Callable[[int], str]) -> list[str]:
    """Nine anchors, each a list of nine aliases of the one before: 9**9 values."""
    lines = [f"{indent}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{indent}a{i}: &a{i} {item(i)}" for i in range(1, 10)]
    return lines


def nine(i: int) -> str:
    return "[" + ", ".join([f"*a{i - 1}"] * 9) + "]"


def bomb_deep(root: Path) -> str:
    lines = laughs("    ", nine)
    (root / "bomb.yaml").write_text("defaults:\n  labels:\n" + "\n".join(lines) + "\njobs: {}\n")
    return "bomb.yaml:9:"


def bomb_wide(root: Path) -> str:
    wide = ", ".join(["x"] * 10_000)
    aliases = ", ".join(["*w"] * 10_000)
    (root / "wide.yaml").write_text(f"w: &w [{wide}]\nuse: [{aliases}]\njobs: {{}}\n")
    return "wide.yaml:2:"


def bomb_in_keys(root: Path) -> str:
    lines = laughs("  ", nine)
    (root / "keys.yaml").write_text("x:\n" + "\n".join(lines) + "\n  ? *a9\n  : 1\n")
    return "keys.yaml:"


def bomb_through_merge(root: Path) -> str:
    def merged(i: int) -> str:
        aliases = ", ".join([f"*a{i - 1}"] * 9)
        return f"{{<<: [{aliases}], k{i}: [{aliases}]}}"

    lines = ["    a0: &a0 {x: 1, y: 2}", *laughs("    ", merged)[1:]]
    (root / "merge.yaml").write_text("defaults:\n  labels:\n" + "\n".join(lines) + "\njobs: {}\n")
    return "merge.yaml:"


def deep_nesting(root: Path) -> str:
    deep = "[" * 5000 + "]" * 5000
    (root / "deep.yaml").write_text(
        f"jobs:\n  a:\n    schedule: {{interval: 1h}}\n    run: {{type: http, url: {deep}}}\n"
    )
    return "deep.yaml:4:"


def huge_file(root: Path) -> str:
    with (root / "huge.yaml").open("w") as file:
        file.write("jobs:\n")
        line = "# " + "x" * 1021 + "\n"
        file.write(line * (20 * 1024))
    return "huge.yaml:1:1: job file of"


def huge_scalar(root: Path) -> str:
    value = "x" * (2 * 1024 * 1024)
    (root / "long.yaml").write_text(simple_job("a", extra=f"description: {value}"))
    return "long.yaml:8:18: a value of 2097152 characters"


def many_ids(root: Path) -> str:
    (root / "ids.yaml").write_text("jobs:\n" + "".join(f"  j{i}: {{}}\n" for i in range(200_000)))
    return "ids.yaml:100002:3: more than 100000 jobs in one file"


def dangling_symlink(root: Path) -> str:
    (root / "b.yaml").symlink_to("../real/b.yaml")
    return "b.yaml:1:1: symlink to ../real/b.yaml points at nothing"


def symlink_loop(root: Path) -> str:
    (root / "loop.yaml").symlink_to("loop.yaml")
    return "loop.yaml:1:1: symlink loop"


def directory_named_yaml(root: Path) -> str:
    (root / "x.yaml").mkdir()
    return "x.yaml:1:1: a directory named like a job file"


HOSTILE = [
    bomb_deep,
    bomb_wide,
    bomb_in_keys,
    bomb_through_merge,
    deep_nesting,
    huge_file,
    huge_scalar,
    many_ids,
    dangling_symlink,
    symlink_loop,
    directory_named_yaml,
]


def validate_bounded(jobs_dir: Path) -> tuple[int, str, float, float]:
    """`scheduler validate` in a child limited by setrlimit: exit code, stdout, CPU seconds
    and peak RSS (MB) of that child alone."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "--jobs-dir", str(jobs_dir), "validate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=limit,
    )
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


@pytest.mark.parametrize("make", HOSTILE, ids=lambda make: make.__name__)
def test_hostile_file_is_refused_at_its_position_within_limits(
    make: Callable[[Path], str], jobs_dir: Path
) -> None:
    (jobs_dir / "ok.yaml").write_text(simple_job("fine"))
    where = make(jobs_dir)
    code, out, cpu, rss = validate_bounded(jobs_dir)
    assert code == 1, f"exit {code} after {cpu:.1f} s CPU:\n{out[-2000:]}"
    assert "Traceback" not in out
    assert f"{jobs_dir}/{where}" in out, out[-2000:]
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"


def test_alias_bomb_error_names_the_alias_and_the_limit(jobs_dir: Path) -> None:
    bomb_deep(jobs_dir)
    code, out, _, _ = validate_bounded(jobs_dir)
    assert code == 1
    line = out.splitlines()[0]
    assert line.startswith(f"{jobs_dir}/bomb.yaml:9:")
    assert ": alias *a" in line and "expands to more than 1000000 nodes" in line


def test_aliases_and_merge_keys_of_a_real_file_are_accepted(jobs_dir: Path) -> None:
    """Sharing defaults through `<<: *x` in every one of 5,000 jobs is normal use."""
    common = "&common {timeout: 5m, retries: {attempts: 2, backoff: 30s}, labels: {team: a}}"
    body = "".join(
        f"  job-{i}:\n    <<: {common if i == 0 else '*common'}\n    schedule: {{interval: 1h}}\n"
        f'    run: {{type: command, command: ["echo", "{i}"]}}\n'
        for i in range(5000)
    )
    (jobs_dir / "shared.yaml").write_text("jobs:\n" + body)
    code, out, _, rss = validate_bounded(jobs_dir)
    assert (code, out) == (0, "ok: 5000 job(s) in 1 file(s)\n")
    assert rss < RSS_LIMIT_MB
