"""Issue 2 target: validating 10,000 jobs in 100 files costs well under a second of CPU
beyond YAML parsing itself. Measures, in one run: libyaml parsing alone (the floor), and
`scheduler.loader.load_paths` (parse with positions + validate + fingerprint).

    python bench/bench_validate.py [--jobs 10000 --files 100 --repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from jobgen import write_jobs

from scheduler.loader import load_paths


def cpu(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_jobs(root, args.jobs, args.files)
        files = sorted(root.glob("*.yaml"))

        def parse_only() -> None:
            for f in files:
                yaml.load(f.read_text(), Loader=yaml.CSafeLoader)

        def ours() -> None:
            state = load_paths([root])
            assert len(state.jobs) == args.jobs

        floor = cpu(parse_only, args.repeat)
        full = cpu(ours, args.repeat)
    print(f"{args.jobs} jobs in {args.files} files (best of {args.repeat}, CPU seconds)")
    print(f"  libyaml parse only (CSafeLoader):        {floor:.3f} s")
    print(f"  scheduler load_paths (parse+validate):   {full:.3f} s")
    print(f"  beyond YAML parsing:                     {full - floor:.3f} s")


if __name__ == "__main__":
    main()
