"""Settings shared by every command: where the job files and the store are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///scheduler.db"


@dataclass(frozen=True)
class Settings:
    jobs_dir: Path = Path("jobs.d")
    db_url: str | None = None

    @property
    def db(self) -> str:
        return self.db_url or DEFAULT_DB_URL
