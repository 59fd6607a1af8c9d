"""Settings shared by every command: where the job files and the store are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///scheduler.db"


@dataclass(frozen=True)
class Settings:
    jobs_dir: Path = Path("jobs.d")
    db_url: str | None = None
    api_url: str | None = None  # a daemon's HTTP API: act through it instead of the store

    @property
    def db(self) -> str:
        return self.db_url or DEFAULT_DB_URL
