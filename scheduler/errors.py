"""Every error the scheduler raises on purpose, with its context and its exit code.

The command line maps these to exit codes in one place (``cli.main``); library callers
catch ``SchedulerError`` and read ``str(err)``, which is always a complete sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class SchedulerError(Exception):
    """Base of every error the scheduler raises on purpose."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class SpecProblem:
    """One problem in one job file, pointing at the offending key or value."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "col": self.col, "message": self.message}


class InvalidJobFiles(SchedulerError):
    """One or more job files are invalid; nothing was applied."""

    def __init__(self, problems: Iterable[SpecProblem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class JobNotFound(SchedulerError):
    """An operator named a job the store does not hold."""

    def __init__(self, job_id: str, where: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(
            f"{where or f'no job {job_id!r} in the store'}: run `scheduler jobs` to list them"
        )
