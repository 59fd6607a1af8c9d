"""Generate a jobs directory of N jobs in F files for the benchmarks (deterministic)."""

from __future__ import annotations

import argparse
from pathlib import Path

CRONS = ["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 8 * * MON", "@hourly", "5 4 1,15 * *"]


def job_text(file_no: int, job_no: int, variant: int = 0) -> str:
    n = file_no * 1000 + job_no
    if n % 3 == 0:
        schedule = f"interval: {(n % 50) + 1}h"
    else:
        schedule = f'cron: "{CRONS[n % len(CRONS)]}"\n      timezone: Europe/Berlin'
    return (
        f"  job-{file_no:03d}-{job_no:04d}:\n"
        f"    description: generated job {n} variant {variant}\n"
        f"    schedule:\n      {schedule}\n"
        f"    run:\n      type: command\n"
        f'      command: ["echo", "job {n}"]\n'
        f"    timeout: 5m\n"
        f"    retries: {{attempts: 2, backoff: 30s}}\n"
        f"    labels: {{team: t{n % 7}}}\n"
    )


def write_jobs(root: Path, jobs: int, files: int, variant: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    per_file = jobs // files
    for f in range(files):
        body = "".join(job_text(f, j, variant) for j in range(per_file))
        (root / f"jobs-{f:03d}.yaml").write_text("jobs:\n" + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    write_jobs(args.root, args.jobs, args.files)


if __name__ == "__main__":
    main()
