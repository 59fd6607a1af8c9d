"""A declarative, GitOps-friendly job scheduler.

Jobs are declared in YAML files under ``jobs.d/``; the scheduler keeps an APScheduler 3.x
store in line with them. See README.md for the command line and DESIGN.md for the contract.
"""

__version__ = "0.1.0"
