"""Where the research app keeps things, from the environment (12-factor style)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    jobs_dir: Path  # the templates (RESEARCH_JOBS_DIR, default the app's own jobs.d/)
    store: str  # the scheduler's store (RESEARCH_STORE, an SQLAlchemy URL)
    data_dir: Path  # results and exports (RESEARCH_DATA)
    analysis_delay: str  # how long after a search its analysis runs (RESEARCH_ANALYSIS_DELAY)

    @classmethod
    def from_env(cls) -> Config:
        data = Path(os.environ.get("RESEARCH_DATA", "data"))
        return cls(
            jobs_dir=Path(os.environ.get("RESEARCH_JOBS_DIR", HERE / "jobs.d")),
            store=os.environ.get("RESEARCH_STORE", f"sqlite:///{data / 'scheduler.db'}"),
            data_dir=data,
            analysis_delay=os.environ.get("RESEARCH_ANALYSIS_DELAY", "5m"),
        )
