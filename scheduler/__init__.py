"""A declarative, GitOps-friendly job scheduler.

Jobs are declared in YAML files under ``jobs.d/``; the scheduler keeps an APScheduler 3.x
store in line with them. See README.md for the command line and DESIGN.md for the contract.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.embed import Scheduler

__all__ = ["Scheduler", "__version__"]


def __getattr__(name: str) -> Any:
    # `from scheduler import Scheduler` for applications, without loading APScheduler and
    # SQLAlchemy into every `import scheduler.spec` (tests/test_layers.py).
    if name == "Scheduler":
        from scheduler.embed import Scheduler

        return Scheduler
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
